"""Molecular self-diffusion: D from the centre-of-mass MSD over one lag window shared by the reference and every run.

The window is ``Settings.msd_window_fs`` or, by default, :func:`~cgzoo.observables.dynamics.default_window` of the
reference's lags (20–80 % of the longest), so every D is fitted over the same lags. A D error is given only where the
reference's MSD is diffusive in that window (:func:`~cgzoo.observables.dynamics.is_diffusive`) and the run's longest
lag reaches its end; otherwise ``diffusion_note`` says why not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from cgzoo.observables import dynamics
from cgzoo.observables.base import Column, Evaluation, Observable, Settings, StudyMetric
from cgzoo.observables.compare import relative_error
from cgzoo.observables.plots import REFERENCE, REFERENCE_STYLE, RUN_LW, colours, finish, format_number, save
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.units import FS_TO_PS


class MSDResult(NamedTuple):
    """Lag times (fs) and molecular MSD (Å²), the line fitted over the common window, the MSD's log–log slope there, and
    why its D cannot be compared (None: it can)."""

    lag_fs: np.ndarray
    msd_a2: np.ndarray
    fit: dynamics.MSDFit
    loglog_slope: float
    note: str | None


def fit_window(lag_fs: np.ndarray, msd_a2: np.ndarray, window_fs: tuple[float, float] | None) -> MSDResult:
    """D and the log–log slope over ``window_fs``; no D (and the reason) where the longest lag does not reach its end."""
    nan = dynamics.MSDFit(float("nan"), float("nan"), window_fs)
    if window_fs is None:
        return MSDResult(lag_fs, msd_a2, nan, float("nan"), "too few frames for an MSD")
    longest = float(lag_fs[-1]) if len(lag_fs) else 0.0
    if longest < window_fs[1] * (1 - 1e-9):
        return MSDResult(lag_fs, msd_a2, nan, float("nan"),
                         f"its longest lag, {longest * FS_TO_PS:g} ps, does not reach the window's end "
                         f"({window_fs[1] * FS_TO_PS:g} ps)")
    fit = dynamics.fit_msd(lag_fs, msd_a2, window_fs)
    note = None if np.isfinite(fit.d_a2_fs) else "fewer than two lags in the window"
    return MSDResult(lag_fs, msd_a2, fit, dynamics.loglog_slope(lag_fs, msd_a2, window_fs), note)


class MSD(Observable[MSDResult]):
    """Molecular D over the reference's lag window (module docstring), scored by relative error."""

    name = "msd"
    columns = (Column("D_msd_1e-5_cm2_s", "D (10⁻⁵ cm²/s)"), Column("diffusion_rel_error", "ΔD/D"))
    section = "Dynamics"
    study_columns = ("D_1e-5_cm2_s", "D_ref_1e-5_cm2_s", "diffusion_rel_error", "diffusion_abs_rel_error",
                     "D_window_from_ps", "D_window_to_ps", "D_ref_loglog_slope", "diffusion_note")
    study_metrics = (StudyMetric("diffusion_abs_rel_error", "D error (abs., rel.)", "nvt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> MSDResult:
        lag, msd = dynamics.msd(dynamics.molecule_centres(traj))
        reference = settings.reference.get(self.name)
        if reference is not None:
            return fit_window(lag, msd, reference.fit.window_fs)
        result = fit_window(lag, msd, settings.msd_window_fs or dynamics.default_window(lag))
        if result.note is None and not dynamics.is_diffusive(result.loglog_slope):
            note = (f"the reference MSD is not diffusive in the window (log–log slope {result.loglog_slope:.2f}, "
                    f"needs 1 ± {dynamics.SLOPE_TOLERANCE})")
            return result._replace(note=note)
        return result

    def values(self, result: MSDResult) -> dict[str, Any]:
        d = result.fit.d_a2_fs
        finite = bool(np.isfinite(d))
        return {"D_msd_A2_fs": d if finite else None, "D_msd_1e-5_cm2_s": d * dynamics.A2_FS_TO_1E5_CM2_S if finite else None,
                "msd_fit_window_fs": result.fit.window_fs, "msd_loglog_slope": result.loglog_slope,
                "diffusion_note": result.note}

    def compare(self, reference: MSDResult, run: MSDResult) -> dict[str, Any]:
        note = (f"reference: {reference.note}" if reference.note is not None
                else None if run.note is None else f"run: {run.note}")
        error = None if note is not None else relative_error(run.fit.d_a2_fs, reference.fit.d_a2_fs)
        return {"diffusion_rel_error": error, "diffusion_note": note}

    def definition(self, reference: MSDResult) -> dict[str, Any]:
        return {"msd_window_fs": reference.fit.window_fs, "msd_reference_loglog_slope": reference.loglog_slope,
                "msd_reference_note": reference.note}

    def describe(self, settings: dict[str, Any]) -> str:
        window = settings.get("msd_window_fs")
        if window is None:
            return "D: the reference has too few frames for an MSD, so no D is compared"
        lo, hi = (t * FS_TO_PS for t in window)
        text = (f"D is fitted to the molecular centre-of-mass MSD = 6Dt + b over one lag window for the reference and "
                f"every run, {lo:g}–{hi:g} ps (`--msd-window`, else 20–80 % of the reference's longest lag), where the "
                f"reference's log–log slope is {format_number(settings.get('msd_reference_loglog_slope'))}")
        if settings.get("msd_reference_note"):
            return text + f"; no run has ΔD/D: {settings['msd_reference_note']}"
        return text + "; a run whose longest lag falls short of the window has no ΔD/D (metrics.json: diffusion_note)"

    def plot(self, results: dict[str, MSDResult], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        """Molecular MSD against lag time on log–log axes, the common fit window shaded, each fitted line 6Dt + b over
        it as a pale band, D in the legend."""
        colour = colours(metrics)
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for label, result in results.items():
            if not len(result.lag_fs):
                continue
            style = REFERENCE_STYLE if label == REFERENCE else {"color": colour[label], "lw": RUN_LW}
            d = result.fit.d_a2_fs
            ax.loglog(result.lag_fs * FS_TO_PS, result.msd_a2, **style,
                      label=f"{label}: D = {format_number(d * dynamics.A2_FS_TO_1E5_CM2_S)} ×10⁻⁵ cm²/s")
            if np.isfinite(d):
                t = np.linspace(*result.fit.window_fs, 20)
                ax.loglog(t * FS_TO_PS, 6 * d * t + result.fit.intercept_a2, color=style["color"], lw=6, alpha=0.25)
        window = metrics["settings"].get("msd_window_fs")
        if window is not None:
            ax.axvspan(window[0] * FS_TO_PS, window[1] * FS_TO_PS, color="grey", alpha=0.12,
                       label="common fit window (pale bands: fitted 6Dt + b)")
        finish(ax, "Molecular centre-of-mass MSD (system drift removed)", "lag time t (ps)", "MSD (Å²)")
        return [save(fig, plot_dir / "msd.png")]

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        if "nvt" not in evaluations:
            return {}
        ref, run = evaluations["nvt"]
        error, window = run.get("diffusion_rel_error"), ref.get("msd_fit_window_fs")
        return {"D_1e-5_cm2_s": run.get("D_msd_1e-5_cm2_s"), "D_ref_1e-5_cm2_s": ref.get("D_msd_1e-5_cm2_s"),
                "diffusion_rel_error": error, "diffusion_abs_rel_error": None if error is None else abs(error),
                "D_window_from_ps": None if window is None else window[0] * FS_TO_PS,
                "D_window_to_ps": None if window is None else window[1] * FS_TO_PS,
                "D_ref_loglog_slope": ref.get("msd_loglog_slope"), "diffusion_note": run.get("diffusion_note")}
