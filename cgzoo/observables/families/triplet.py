"""Angles j–i–k between first-shell neighbours (:func:`cgzoo.observables.structure.triplet_angles`), scored by JS divergence."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from cgzoo.observables.base import Column, Evaluation, Observable, Settings, StudyMetric
from cgzoo.observables.compare import js_divergence
from cgzoo.observables.plots import (
    REFERENCE,
    REFERENCE_STYLE,
    RUN_LW,
    colours,
    finish,
    format_number,
    runs_of,
    save,
)
from cgzoo.observables.structure import ALL_PAIRS, first_minimum, triplet_angles
from cgzoo.observables.trajectory import CGTrajectory


class TripletResult(NamedTuple):
    """Angle bin centres (rad), probability density (1/rad) and the first-shell radius per type pair (Å)."""

    theta: np.ndarray
    density: np.ndarray
    shell_radii: dict[str, float]


class TripletAngles(Observable[TripletResult]):
    """The triplet-angle distribution, neighbours within the first minimum of the reference's intermolecular g(r).

    The radii come from the reference's result of the ``rdf`` observable, registered before this one.
    """

    name = "triplet"
    columns = (Column("triplet_js", "triplet JS"),)
    section = "Triplet angles"
    study_columns = ("triplet_js",)
    study_metrics = (StudyMetric("triplet_js", "triplet-angle JS (bits)", "nvt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> TripletResult:
        ref = settings.reference.get(self.name)
        radii = ref.shell_radii if ref is not None else {
            k: first_minimum(r, g) for k, (r, g) in settings.reference["rdf"].items() if k != ALL_PAIRS}
        return TripletResult(*triplet_angles(traj, radii), radii)

    def compare(self, reference: TripletResult, run: TripletResult) -> dict[str, Any]:
        return {"triplet_js": js_divergence(reference.density, run.density)}

    def definition(self, reference: TripletResult) -> dict[str, Any]:
        return {"shell_radii_A": reference.shell_radii}

    def describe(self, settings: dict[str, Any]) -> str:
        shells = ", ".join(f"{k}: {v:.2f} Å" for k, v in settings["shell_radii_A"].items())
        return f"triplet neighbours lie within the reference's first shell ({shells})"

    def plot(self, results: dict[str, TripletResult], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        colour = colours(metrics)
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ref = results[REFERENCE]
        ax.plot(np.degrees(ref.theta), np.radians(ref.density), **REFERENCE_STYLE, label=REFERENCE)
        for label, result in runs_of(results):
            ax.plot(np.degrees(result.theta), np.radians(result.density), color=colour[label], lw=RUN_LW,
                    label=f"{label} (JS {format_number(metrics['runs'][label]['triplet_js'])})")
        shells = ", ".join(f"{k} < {v:.2f} Å" for k, v in ref.shell_radii.items())
        finish(ax, f"Triplet angles j–i–k of first-shell neighbours ({shells})", "θ (deg)", "P(θ) (1/deg)")
        ax.set_xlim(0, 180)
        return [save(fig, plot_dir / "triplet_angles.png")]

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        return {"triplet_js": evaluations["nvt"][1].get("triplet_js")} if "nvt" in evaluations else {}
