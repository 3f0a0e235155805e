"""Mean-squared displacement and the diffusion coefficient fitted to it (:mod:`cgzoo.observables.dynamics`)."""

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
    """Lag times (fs), MSD (Å²) and the line fitted to it."""

    lag_fs: np.ndarray
    msd_a2: np.ndarray
    fit: dynamics.MSDFit


class MSD(Observable[MSDResult]):
    """Each trajectory's own long-time D (MSD fitted over 20–80 % of its longest lag), scored by relative error."""

    name = "msd"
    columns = (Column("D_msd_1e-5_cm2_s", "D (10⁻⁵ cm²/s)"), Column("diffusion_rel_error", "ΔD/D"))
    section = "Dynamics"
    study_columns = ("D_1e-5_cm2_s", "D_ref_1e-5_cm2_s", "diffusion_rel_error", "diffusion_abs_rel_error")
    study_metrics = (StudyMetric("diffusion_abs_rel_error", "D error (abs., rel.)", "nvt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> MSDResult:
        lag, msd = dynamics.msd(traj)
        return MSDResult(lag, msd, dynamics.fit_msd(lag, msd))

    def values(self, result: MSDResult) -> dict[str, Any]:
        d = result.fit.d_a2_fs
        finite = bool(np.isfinite(d))
        return {"D_msd_A2_fs": d if finite else None, "D_msd_1e-5_cm2_s": d * dynamics.A2_FS_TO_1E5_CM2_S if finite else None,
                "msd_fit_window_fs": result.fit.window_fs}

    def compare(self, reference: MSDResult, run: MSDResult) -> dict[str, Any]:
        return {"diffusion_rel_error": relative_error(run.fit.d_a2_fs, reference.fit.d_a2_fs)}

    def definition(self, reference: MSDResult) -> dict[str, Any]:
        return {"msd_fit_window_fraction": dynamics.FIT_WINDOW}

    def describe(self, settings: dict[str, Any]) -> str:
        lo, hi = settings["msd_fit_window_fraction"]
        return f"D is fitted to MSD = 6Dt + b over {lo * 100:g}–{hi * 100:g} % of each trajectory's longest lag"

    def plot(self, results: dict[str, MSDResult], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        """MSD against lag time on log–log axes, each fitted line 6Dt + b as a pale band over its window, D in the legend."""
        colour = colours(metrics)
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for label, (t, m, fit) in results.items():
            if not len(t):
                continue
            style = REFERENCE_STYLE if label == REFERENCE else {"color": colour[label], "lw": RUN_LW}
            ax.loglog(t * FS_TO_PS, m, **style,
                      label=f"{label}: D = {format_number(fit.d_a2_fs * dynamics.A2_FS_TO_1E5_CM2_S)} ×10⁻⁵ cm²/s")
            if np.isfinite(fit.d_a2_fs):
                window = np.linspace(*fit.window_fs, 20)
                ax.loglog(window * FS_TO_PS, 6 * fit.d_a2_fs * window + fit.intercept_a2, color=style["color"], lw=6,
                          alpha=0.25)
        ax.plot([], [], color="grey", lw=6, alpha=0.25, label="fitted 6Dt + b (20–80 % of each longest lag)")
        finish(ax, "Mean-squared displacement (centre-of-mass drift removed)", "lag time t (ps)", "MSD (Å²)")
        return [save(fig, plot_dir / "msd.png")]

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        if "nvt" not in evaluations:
            return {}
        ref, run = evaluations["nvt"]
        error = run.get("diffusion_rel_error")
        return {"D_1e-5_cm2_s": run.get("D_msd_1e-5_cm2_s"), "D_ref_1e-5_cm2_s": ref.get("D_msd_1e-5_cm2_s"),
                "diffusion_rel_error": error, "diffusion_abs_rel_error": None if error is None else abs(error)}
