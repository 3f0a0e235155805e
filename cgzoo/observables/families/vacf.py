"""Velocity autocorrelation and the Green–Kubo diffusion coefficient of runs that saved velocities (:mod:`cgzoo.observables.dynamics`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from cgzoo.observables import dynamics
from cgzoo.observables.base import Column, Observable, Settings
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
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.units import FS_TO_PS


class VACFResult(NamedTuple):
    """Lag times (fs), normalised VACF and the Green–Kubo D (Å²/fs)."""

    lag_fs: np.ndarray
    vacf: np.ndarray
    d_gk_a2_fs: float


class VACF(Observable["VACFResult | None"]):
    """The VACF of a trajectory with velocities (None without: a reference dataset has none, so nothing is compared)."""

    name = "vacf"
    columns = (Column("D_gk_1e-5_cm2_s"),)
    section = "Dynamics"

    def measure(self, traj: CGTrajectory, settings: Settings) -> VACFResult | None:
        if traj.velocities is None:
            return None
        return VACFResult(*dynamics.vacf(traj), dynamics.diffusion_green_kubo(traj))

    def values(self, result: VACFResult | None) -> dict[str, Any]:
        d = None if result is None or not np.isfinite(result.d_gk_a2_fs) else result.d_gk_a2_fs
        return {"D_gk_A2_fs": d, "D_gk_1e-5_cm2_s": None if d is None else d * dynamics.A2_FS_TO_1E5_CM2_S}

    def compare(self, reference: VACFResult | None, run: VACFResult | None) -> dict[str, Any]:
        return {}

    def plot(self, results: dict[str, VACFResult | None], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        """Normalised VACF of the runs that saved velocities, Green–Kubo D in the legend, against the reference's when
        it has velocities (the legend says so when it has none)."""
        measured = [(label, r) for label, r in runs_of(results) if r is not None]
        if not measured:
            return []
        colour = colours(metrics)
        fig, ax = plt.subplots(figsize=(6.5, 4))
        reference = results.get(REFERENCE)
        if reference is not None:
            ax.plot(reference.lag_fs * FS_TO_PS, reference.vacf, **REFERENCE_STYLE,
                    label=f"{REFERENCE}: D_GK = {format_number(reference.d_gk_a2_fs * dynamics.A2_FS_TO_1E5_CM2_S)} "
                          "×10⁻⁵ cm²/s")
        else:
            ax.plot([], [], " ", label=f"{REFERENCE}: none (its frames hold no velocities)")
        for label, (t, c, d) in measured:
            ax.plot(t * FS_TO_PS, c, color=colour[label], lw=RUN_LW,
                    label=f"{label}: D_GK = {format_number(d * dynamics.A2_FS_TO_1E5_CM2_S)} ×10⁻⁵ cm²/s")
        ax.axhline(0.0, color="grey", lw=0.6)
        finish(ax, "Velocity autocorrelation (sampled at the saved-frame interval)", "lag time t (ps)",
               "⟨v(0)·v(t)⟩ / ⟨v²⟩")
        return [save(fig, plot_dir / "vacf.png")]
