"""Mean mass density from every frame's cell (:func:`cgzoo.observables.thermo.mean_density`), scored by relative error."""

from __future__ import annotations

from typing import Any

from cgzoo.observables import thermo
from cgzoo.observables.base import Column, Evaluation, Observable, Settings, StudyMetric
from cgzoo.observables.compare import relative_error
from cgzoo.observables.trajectory import CGTrajectory


class Density(Observable[float]):
    """Time-averaged density (g/cm³); informative in NPT, so the study judges it on the NPT run."""

    name = "density"
    columns = (Column("density_g_cm3", "ρ (g/cm³)"), Column("density_rel_error", "Δρ/ρ"))
    study_columns = ("density_npt_g_cm3", "density_ref_g_cm3", "density_rel_error", "density_abs_rel_error")
    study_metrics = (StudyMetric("density_abs_rel_error", "NPT density error (abs., rel.)", "npt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> float:
        return thermo.mean_density(traj)

    def values(self, result: float) -> dict[str, Any]:
        return {"density_g_cm3": result}

    def compare(self, reference: float, run: float) -> dict[str, Any]:
        return {"density_rel_error": relative_error(run, reference)}

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        if "npt" not in evaluations:
            return {}
        ref, run = evaluations["npt"]
        error = run.get("density_rel_error")
        return {"density_npt_g_cm3": run.get("density_g_cm3"), "density_ref_g_cm3": ref.get("density_g_cm3"),
                "density_rel_error": error, "density_abs_rel_error": None if error is None else abs(error)}
