"""Single-bead dynamics: mean-squared displacement, self-diffusion coefficient, velocity autocorrelation.

MSD(t) = ⟨|r(t₀+t) − r(t₀)|²⟩ averages over beads and every time origin t₀, using unwrapped
positions after removing the mass-weighted centre-of-mass displacement of the whole system (a
thermostat can let it drift). Lags run up to half the trajectory. A lag pair counts only if the
two frames really are that far apart in time, so frame selections with gaps (a split made of
several blocks) are handled. D comes from a least-squares line MSD = 6 D t + b over a lag
window (b absorbs the ballistic offset); trajectories are compared over one window, which counts as
diffusive where the MSD's log–log slope there is within :data:`SLOPE_TOLERANCE` of 1
(:func:`loglog_slope`, :func:`is_diffusive`). D is in Å²/fs; :data:`A2_FS_TO_1E5_CM2_S` converts to
the customary 10⁻⁵ cm²/s.

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
#: Default MSD fit window as fractions of the longest lag (past the ballistic start, before the poorly averaged tail).
FIT_WINDOW = (0.2, 0.8)
#: how far from 1 an MSD's log–log slope over a window may be for the window to count as diffusive
SLOPE_TOLERANCE = 0.15


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


def default_window(lag_fs: np.ndarray) -> tuple[float, float] | None:
    """:data:`FIT_WINDOW` of the longest of ``lag_fs`` (fs; None without lags)."""
    if not len(lag_fs):
        return None
    return float(FIT_WINDOW[0] * lag_fs[-1]), float(FIT_WINDOW[1] * lag_fs[-1])


def fit_msd(lag_fs: np.ndarray, msd_a2: np.ndarray, window_fs: tuple[float, float] | None = None) -> MSDFit:
    """Least-squares MSD = 6 D t + b over ``window_fs`` (default: :func:`default_window`)."""
    if len(lag_fs) == 0:
        return MSDFit(float("nan"), float("nan"), window_fs)
    lo, hi = window_fs if window_fs is not None else default_window(lag_fs)
    sel = (lag_fs >= lo) & (lag_fs <= hi)
    if sel.sum() < 2:
        return MSDFit(float("nan"), float("nan"), (float(lo), float(hi)))
    slope, intercept = np.polyfit(lag_fs[sel], msd_a2[sel], 1)
    return MSDFit(float(slope / 6.0), float(intercept), (float(lo), float(hi)))


def loglog_slope(lag_fs: np.ndarray, msd_a2: np.ndarray, window_fs: tuple[float, float]) -> float:
    """The least-squares slope of log MSD against log t over ``window_fs``: 1 where diffusive, 2 ballistic, below 1 in
    a cage (NaN with fewer than two positive points there)."""
    sel = (lag_fs >= window_fs[0]) & (lag_fs <= window_fs[1]) & (lag_fs > 0) & (msd_a2 > 0)
    if sel.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(lag_fs[sel]), np.log(msd_a2[sel]), 1)[0])


def is_diffusive(slope: float) -> bool:
    """Whether an MSD log–log ``slope`` is within :data:`SLOPE_TOLERANCE` of 1 (NaN: no)."""
    return bool(abs(slope - 1.0) <= SLOPE_TOLERANCE)


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


def molecule_centres(traj: CGTrajectory) -> CGTrajectory:
    """The trajectory of the molecules' centres of mass (one bead per molecule, of the molecule's mass and the type of its
    first bead; velocities the momentum-weighted ones), so :func:`msd`, :func:`vacf` and the D fits measure molecular
    self-diffusion alike for any mapping of the same molecules."""
    ids, index = np.unique(traj.molecule_ids, return_inverse=True)
    weights = np.zeros((len(ids), traj.n_beads))
    weights[index, np.arange(traj.n_beads)] = traj.masses
    masses = weights.sum(axis=1)
    weights /= masses[:, None]
    first = np.array([np.flatnonzero(index == k)[0] for k in range(len(ids))])
    velocities = None if traj.velocities is None else np.einsum("mn,fnk->fmk", weights, traj.velocities)
    empty = np.zeros((0, 2), dtype=np.int64)
    return CGTrajectory(positions=np.einsum("mn,fnk->fmk", weights, traj.positions), boxes=traj.boxes, times=traj.times,
                        bead_types=traj.bead_types[first], type_names=traj.type_names, masses=masses,
                        molecule_ids=np.arange(len(ids)), bonds=empty, angles=np.zeros((0, 3), dtype=np.int64),
                        dihedrals=np.zeros((0, 4), dtype=np.int64), velocities=velocities, unwrapped=traj.unwrapped,
                        log=traj.log, temperature_K=traj.temperature_K, status=traj.status, source=traj.source)


class DiffusionEstimate(NamedTuple):
    """D (Å²/fs) from MSD = 6Dt + b over a lag window, its standard error over bead groups, and the MSD's log–log slope
    there (≈ 1 when the window is diffusive; below 1 in the cage or ballistic-to-diffusive crossover)."""

    d_a2_fs: float
    error_a2_fs: float
    loglog_slope: float


def diffusion_estimate(traj: CGTrajectory, window_fs: tuple[float, float], groups: int = 5) -> DiffusionEstimate:
    """D over ``window_fs`` (lags up to half the trajectory), with the standard error of D measured on ``groups``
    disjoint bead groups (beads diffuse nearly independently; frames of one bead do not)."""
    lag, values = msd(traj)
    sel = (lag >= window_fs[0]) & (lag <= window_fs[1])
    if sel.sum() < 3:
        raise InputError(traj.source, f"the MSD window {window_fs[0]:g}–{window_fs[1]:g} fs needs a trajectory over twice "
                                      f"as long (it spans {traj.times[-1] - traj.times[0]:g} fs)")
    slope = loglog_slope(lag, values, window_fs)
    d = fit_msd(lag, values, window_fs).d_a2_fs
    parts = np.array_split(np.random.default_rng(0).permutation(traj.n_beads), min(groups, traj.n_beads))
    group_d = [fit_msd(*msd(_beads(traj, part), remove_com=False), window_fs).d_a2_fs for part in parts]
    error = float(np.std(group_d, ddof=1) / np.sqrt(len(group_d))) if len(group_d) > 1 else float("nan")
    return DiffusionEstimate(d, error, slope)


def _beads(traj: CGTrajectory, beads: np.ndarray) -> CGTrajectory:
    """``traj`` restricted to ``beads``, less the whole system's centre-of-mass drift (a group's own drift is signal)."""
    com = np.einsum("fnk,n->fk", traj.positions, traj.masses) / traj.masses.sum()
    return CGTrajectory(positions=traj.positions[:, beads] - com[:, None, :], boxes=traj.boxes, times=traj.times,
                        bead_types=traj.bead_types[beads], type_names=traj.type_names, masses=traj.masses[beads],
                        molecule_ids=np.arange(len(beads)), bonds=traj.bonds[:0], angles=traj.angles[:0],
                        dihedrals=traj.dihedrals[:0], unwrapped=traj.unwrapped, source=traj.source)
