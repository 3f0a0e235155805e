"""Single-bead dynamics: mean-squared displacement, self-diffusion coefficient, velocity autocorrelation.

MSD(t) = ⟨|r(t₀+t) − r(t₀)|²⟩ averages over beads and every time origin t₀, using unwrapped
positions after removing the mass-weighted centre-of-mass displacement of the whole system (a
thermostat can let it drift). Lags run up to half the trajectory. A lag pair counts only if the
two frames really are that far apart in time, so frame selections with gaps (a split made of
several blocks) are handled. D comes from a least-squares line MSD = 6 D t + b over a lag
window, by default 20–80 % of the trajectory's longest lag (past the ballistic start, before the
poorly averaged tail), so each trajectory gives the longest-time D it supports; b absorbs the
ballistic offset. D is in Å²/fs; :data:`A2_FS_TO_1E5_CM2_S` converts to the customary 10⁻⁵ cm²/s.

The VACF needs velocities (runs only) saved much more often than its decay time; the
Green–Kubo D = ⅓ ∫ ⟨v(0)·v(t)⟩ dt integrates it up to half the trajectory.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.integrate import trapezoid

from cgzoo.errors import InputError
from cgzoo.observables.trajectory import CGTrajectory

#: D in Å²/fs → D in 10⁻⁵ cm²/s (1 Å²/fs = 0.1 cm²/s).
A2_FS_TO_1E5_CM2_S = 1e4
#: Default MSD fit window as fractions of the longest lag.
FIT_WINDOW = (0.2, 0.8)


def frame_interval(traj: CGTrajectory) -> float:
    """Typical time between saved frames (fs): the median spacing."""
    return float(np.median(np.diff(traj.times))) if traj.n_frames > 1 else float("nan")


def msd(traj: CGTrajectory, max_lag_fraction: float = 0.5, max_lags: int = 200,
        remove_com: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Lag times (fs) and MSD (Å²) averaged over beads and time origins, at ≤ ``max_lags`` evenly spread lags."""
    if not traj.unwrapped:
        raise InputError(traj.source, "MSD needs unwrapped positions")
    n_lag = int(max_lag_fraction * (traj.n_frames - 1))
    if n_lag < 1:
        return np.zeros(0), np.zeros(0)
    pos = traj.positions
    if remove_com:
        com = np.einsum("fnk,n->fk", pos, traj.masses) / traj.masses.sum()
        pos = pos - com[:, None, :]
    dt = frame_interval(traj)
    lags = np.unique(np.linspace(1, n_lag, min(n_lag, max_lags)).round().astype(int))
    times, values = [], []
    for k in lags:
        span = traj.times[k:] - traj.times[:-k]
        valid = np.abs(span - k * dt) < 1e-3 * dt
        if valid.any():
            d = pos[k:][valid] - pos[:-k][valid]
            times.append(k * dt)
            values.append(float(np.einsum("fnk,fnk->", d, d) / (d.shape[0] * d.shape[1])))
    return np.array(times), np.array(values)


class MSDFit(NamedTuple):
    """A line MSD = 6 D t + b: D in Å²/fs (NaN without enough points), b in Å², the lag window in fs."""

    d_a2_fs: float
    intercept_a2: float
    window_fs: tuple[float, float] | None


def fit_msd(lag_fs: np.ndarray, msd_a2: np.ndarray, window_fs: tuple[float, float] | None = None) -> MSDFit:
    """Least-squares MSD = 6 D t + b over ``window_fs`` (default: :data:`FIT_WINDOW` of the longest lag)."""
    if len(lag_fs) == 0:
        return MSDFit(float("nan"), float("nan"), None)
    lo, hi = window_fs if window_fs is not None else (FIT_WINDOW[0] * lag_fs[-1], FIT_WINDOW[1] * lag_fs[-1])
    sel = (lag_fs >= lo) & (lag_fs <= hi)
    if sel.sum() < 2:
        return MSDFit(float("nan"), float("nan"), (float(lo), float(hi)))
    slope, intercept = np.polyfit(lag_fs[sel], msd_a2[sel], 1)
    return MSDFit(float(slope / 6.0), float(intercept), (float(lo), float(hi)))


def vacf(traj: CGTrajectory, max_lag_fraction: float = 0.5, normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Lag times (fs) and ⟨v(0)·v(t)⟩ over beads and origins: normalised to 1 at t = 0, or in Å²/fs².

    Needs velocities and evenly spaced frames; computed by FFT (Wiener–Khinchin) with zero padding.
    """
    if traj.velocities is None:
        raise InputError(traj.source, "VACF needs velocities, which this trajectory does not have")
    dt = frame_interval(traj)
    if traj.n_frames < 2 or not np.allclose(np.diff(traj.times), dt, rtol=1e-6, atol=1e-6 * dt):
        raise InputError(traj.source, "VACF needs at least two evenly spaced frames")
    n = traj.n_frames
    spectrum = np.fft.rfft(traj.velocities, n=2 * n, axis=0)
    corr = np.fft.irfft(spectrum * np.conj(spectrum), n=2 * n, axis=0)[:n].sum(axis=(1, 2))
    corr = corr / ((n - np.arange(n)) * traj.n_beads)
    n_lag = max(1, int(max_lag_fraction * (n - 1))) + 1
    corr = corr[:n_lag]
    if normalise:
        corr = corr / corr[0] if corr[0] > 0 else np.full_like(corr, np.nan)
    return np.arange(n_lag) * dt, corr


def diffusion_green_kubo(traj: CGTrajectory, max_lag_fraction: float = 0.5) -> float:
    """Self-diffusion coefficient D (Å²/fs) = ⅓ ∫₀^t_max ⟨v(0)·v(t)⟩ dt (trapezoid rule)."""
    t, c = vacf(traj, max_lag_fraction, normalise=False)
    return float(trapezoid(c, t) / 3.0) if len(t) > 1 else float("nan")
