"""The observable protocol: what ``cgzoo evaluate`` and the study need from one observable, so one file adds one.

An :class:`Observable` measures one trajectory (:meth:`~Observable.measure`), reports the
trajectory's own scalars (:meth:`~Observable.values`) and a run's errors against the reference
(:meth:`~Observable.compare`) under the metrics.json keys its :attr:`~Observable.columns` name
for ``metrics.csv`` and ``report.md``, and may draw figures and fill study columns. The reference
is measured first, observable by observable in registry order, and each result is kept in
:attr:`Settings.reference`, so runs are measured on the reference's grids and an observable may
use the reference results of those registered before it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from cgzoo.observables.trajectory import CGTrajectory

R = TypeVar("R")
#: One evaluation of the study as an observable sees it: (metrics.json ``reference``, metrics.json ``runs[label]``).
Evaluation = tuple[dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class Column:
    """A scalar metric of a run: its metrics.json/metrics.csv key and its report.md table header (None: CSV only)."""

    key: str
    header: str | None = None


@dataclass(frozen=True)
class StudyMetric:
    """A results.csv column the study's summary table, findings and figures show, with the ensemble of the run it judges."""

    column: str
    label: str
    #: "nvt" or "npt"; None for a metric of the model itself, judged on no run
    ensemble: str | None


@dataclass
class Settings:
    """What every trajectory of one evaluation is measured with: the shared options and the reference's results."""

    r_max: float
    bins: int
    reference_pressure_bar: float | None = None
    #: the MSD lag window (fs) D is fitted over for the reference and every run; None: chosen from the reference
    msd_window_fs: tuple[float, float] | None = None
    #: observable name → the reference's result, filled in registry order before any run is measured
    reference: dict[str, Any] = field(default_factory=dict)


class Observable(ABC, Generic[R]):
    """One observable family: measured alike on the reference and every run, compared, tabulated and plotted."""

    #: registry name, also the key of its results
    name: ClassVar[str]
    #: run metrics in metrics.csv and the report's table, in order (keys of :meth:`values` or :meth:`compare`)
    columns: ClassVar[tuple[Column, ...]] = ()
    #: report.md section its figures go under
    section: ClassVar[str] = ""
    #: results.csv columns it fills in a study (:meth:`study_cells`), in order
    study_columns: ClassVar[tuple[str, ...]] = ()
    #: the study columns the summary table, findings and figures show
    study_metrics: ClassVar[tuple[StudyMetric, ...]] = ()

    @abstractmethod
    def measure(self, traj: CGTrajectory, settings: Settings) -> R:
        """The observable of one trajectory; runs on the grids of ``settings.reference[self.name]``."""

    def values(self, result: R) -> dict[str, Any]:
        """Scalars of one trajectory (reference or run) by metrics.json key, so the reference row shows them too."""
        return {}

    @abstractmethod
    def compare(self, reference: R, run: R) -> dict[str, Any]:
        """A run's errors against the reference by metrics.json key (scalars, or per-key dicts for detail)."""

    def definition(self, reference: R) -> dict[str, Any]:
        """What the reference fixed for every run (grids, radii), recorded under metrics.json ``settings``."""
        return {}

    def describe(self, settings: dict[str, Any]) -> str:
        """A report.md clause on how it was measured and how to read its columns (``settings``: metrics.json's)."""
        return ""

    def plot(self, results: dict[str, R], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        """Figures of the reference and every measured run (``results`` by label) written into ``plot_dir``."""
        return []

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        """Its :attr:`study_columns` for one model, from the evaluations of its runs by ensemble (absent: not evaluated)."""
        return {}
