"""PNG figures of ``cgzoo evaluate``: every registered observable draws its own, with the shared style helpers here.

Every plot draws the reference in thick black and each run in its own colour, with units on the
axes and the run's error metric in the legend, so a figure can be read without the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from cgzoo.observables.base import Observable
    from cgzoo.observables.trajectory import CGTrajectory

#: Label of the reference in plots and tables.
REFERENCE = "reference"
#: Line style of the reference and of a run.
REFERENCE_STYLE = {"color": "k", "lw": 2.2}
RUN_LW = 1.3


def plot_all(observables: Sequence[Observable], results: dict[str, dict[str, Any]], runs: dict[str, CGTrajectory],
             metrics: dict[str, Any], plot_dir: Path) -> dict[str, list[Path]]:
    """Every observable's figures in ``plot_dir`` (``results``: label → observable name → result); files per report section."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    sections: dict[str, list[Path]] = {}
    for obs in observables:
        files = obs.plot({label: r[obs.name] for label, r in results.items()}, metrics, runs, plot_dir)
        if files:
            sections.setdefault(obs.section, []).extend(files)
    return sections


def colours(metrics: dict[str, Any]) -> dict[str, str]:
    """A colour per run label, the same in every figure."""
    return {label: f"C{k % 10}" for k, label in enumerate(metrics["runs"])}


def runs_of(results: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, result) of every run, reference excluded."""
    return [(label, r) for label, r in results.items() if label != REFERENCE]


def support(x: np.ndarray, densities: list[np.ndarray]) -> tuple[float, float]:
    """x range where any density exceeds 0.1 % of its peak, padded by three bins (to zoom on narrow peaks)."""
    inside = np.flatnonzero(np.any([d > 1e-3 * d.max() for d in densities if d.max() > 0], axis=0))
    if not len(inside):
        return float(x[0]), float(x[-1])
    lo, hi = max(inside[0] - 3, 0), min(inside[-1] + 3, len(x) - 1)
    return float(x[lo]), float(x[hi])


def finish(ax, title: str | None, xlabel: str | None, ylabel: str) -> None:
    """Title, axis labels, and a legend if anything is labelled."""
    if title:
        ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def save(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_number(value: float | None) -> str:
    """Compact number, or – when missing."""
    return "–" if value is None or not np.isfinite(value) else f"{value:.3g}"
