"""Mean pressure and temperature from a run's log (:mod:`cgzoo.observables.thermo`), pressure scored in bar.

The reference pressure is the one given (``Settings.reference_pressure_bar``; the study passes the atomistic target):
an NVT run at the reference density should reproduce it. The error is a difference in bar, since a relative error
against a reference near 1 bar says nothing; ``pressure_rel_error`` stays in metrics.csv only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from cgzoo.observables import thermo
from cgzoo.observables.base import Column, Evaluation, Observable, Settings, StudyMetric
from cgzoo.observables.compare import relative_error
from cgzoo.observables.plots import REFERENCE, colours, finish, save
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.units import FS_TO_PS

#: log.csv columns drawn against time, with the reference's metrics.json value of the same name as a dashed line
_SERIES = (("density_g_cm3", "density (g/cm³)"), ("temperature_K", "temperature (K)"), ("pressure_bar", "pressure (bar)"))


class ThermoResult(NamedTuple):
    """Mean pressure (bar) and temperature (K); None where not known."""

    pressure_bar: float | None
    temperature_K: float | None


def pressure_error(run_bar: float | None, reference_bar: float | None) -> float | None:
    """The run's mean pressure minus the reference's (bar), None if either is missing or not finite."""
    if run_bar is None or reference_bar is None or not np.isfinite(run_bar) or not np.isfinite(reference_bar):
        return None
    return float(run_bar - reference_bar)


class Thermo(Observable[ThermoResult]):
    """Logged pressure and temperature; a dataset logs neither, so the reference's pressure is the one given, if any."""

    name = "thermo"
    columns = (Column("pressure_bar", "P (bar)"), Column("pressure_error_bar", "ΔP (bar)"), Column("pressure_rel_error"),
               Column("temperature_K", "T (K)"))
    section = "Thermodynamics"
    study_columns = ("P_nvt_bar", "P_ref_bar", "pressure_error_bar", "pressure_abs_error_bar")
    study_metrics = (StudyMetric("pressure_abs_error_bar", "NVT pressure error (abs., bar)", "nvt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> ThermoResult:
        pressure = settings.reference_pressure_bar if traj.status == "reference" else thermo.mean_pressure(traj)
        return ThermoResult(pressure, thermo.mean_temperature(traj))

    def values(self, result: ThermoResult) -> dict[str, Any]:
        return result._asdict()

    def compare(self, reference: ThermoResult, run: ThermoResult) -> dict[str, Any]:
        return {"pressure_error_bar": pressure_error(run.pressure_bar, reference.pressure_bar),
                "pressure_rel_error": relative_error(run.pressure_bar, reference.pressure_bar)}

    def describe(self, settings: dict[str, Any]) -> str:
        return ("ΔP is the run's mean pressure minus the reference pressure in bar, which datasets do not store "
                "(`--reference-pressure`)")

    def plot(self, results: dict[str, ThermoResult], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        """Density, temperature and pressure of every run against time from its log, the reference's means dashed."""
        colour, equil_fs = colours(metrics), metrics["settings"]["equil_fs"]
        fig, axes = plt.subplots(len(_SERIES), 1, figsize=(7, 8), sharex=True)
        for ax, (column, _) in zip(axes, _SERIES):
            value = metrics["reference"].get(column)
            if value is not None:
                ax.axhline(value, color="k", lw=2.0, ls="--",
                           label=f"{REFERENCE} (given)" if column == "pressure_bar" else f"{REFERENCE} (mean)")
            elif column == "pressure_bar":
                ax.plot([], [], " ", label=f"{REFERENCE}: not given (--reference-pressure)")
            for label, traj in runs.items():
                series = thermo.log_series(traj, column, start_fs=-np.inf)
                if series is not None and len(series[0]):
                    ax.plot(series[0] * FS_TO_PS, series[1], color=colour[label], lw=1.0, label=label)
        title = "Runs' log.csv against time"
        if equil_fs > 0:
            title += " (grey: discarded equilibration)"
            for ax in axes:
                ax.axvspan(0.0, equil_fs * FS_TO_PS, color="grey", alpha=0.15)
        for k, (ax, (_, ylabel)) in enumerate(zip(axes, _SERIES)):
            finish(ax, title if k == 0 else None, "simulation time (ps)" if k == len(_SERIES) - 1 else None, ylabel)
        return [save(fig, plot_dir / "thermo.png")]

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        if "nvt" not in evaluations:
            return {}
        ref, run = evaluations["nvt"]
        error = run.get("pressure_error_bar")
        return {"P_nvt_bar": run.get("pressure_bar"), "P_ref_bar": ref.get("pressure_bar"), "pressure_error_bar": error,
                "pressure_abs_error_bar": None if error is None else abs(error)}
