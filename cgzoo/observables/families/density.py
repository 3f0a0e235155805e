"""Mean mass density from every frame's cell (:func:`cgzoo.observables.thermo.mean_density`), scored by relative error.

A run whose cell never changes (NVT) at the reference's density has no density error to report: it is zero by
construction, so it is None ("–") rather than a rounding residue such as 1e-16.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cgzoo.observables import thermo
from cgzoo.observables.base import Column, Evaluation, Observable, Settings, StudyMetric
from cgzoo.observables.compare import relative_error
from cgzoo.observables.trajectory import CGTrajectory

#: relative difference below which a fixed cell's density counts as the reference's own (floating-point residue)
SAME_DENSITY_RTOL = 1e-9


class DensityResult(NamedTuple):
    """Mean density (g/cm³) and whether every frame has the first frame's cell (NVT: the density was set, not measured)."""

    density_g_cm3: float
    fixed_cell: bool


class Density(Observable[DensityResult]):
    """Time-averaged density (g/cm³); informative in NPT, so the study judges it on the NPT run."""

    name = "density"
    columns = (Column("density_g_cm3", "ρ (g/cm³)"), Column("density_rel_error", "Δρ/ρ"))
    study_columns = ("density_npt_g_cm3", "density_ref_g_cm3", "density_rel_error", "density_abs_rel_error")
    study_metrics = (StudyMetric("density_abs_rel_error", "NPT density error (abs., rel.)", "npt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> DensityResult:
        fixed = bool(np.all(traj.boxes == traj.boxes[:1])) if traj.n_frames else True
        return DensityResult(thermo.mean_density(traj), fixed)

    def values(self, result: DensityResult) -> dict[str, Any]:
        return {"density_g_cm3": result.density_g_cm3}

    def compare(self, reference: DensityResult, run: DensityResult) -> dict[str, Any]:
        error = relative_error(run.density_g_cm3, reference.density_g_cm3)
        if run.fixed_cell and error is not None and abs(error) < SAME_DENSITY_RTOL:
            error = None  # zero by construction: the run kept the reference's cell
        return {"density_rel_error": error}

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        if "npt" not in evaluations:
            return {}
        ref, run = evaluations["npt"]
        error = run.get("density_rel_error")
        return {"density_npt_g_cm3": run.get("density_g_cm3"), "density_ref_g_cm3": ref.get("density_g_cm3"),
                "density_rel_error": error, "density_abs_rel_error": None if error is None else abs(error)}
