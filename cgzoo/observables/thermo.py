"""Thermodynamic observables: density from the cell of every frame, and pressure and temperature from a run's log.

Density uses only masses and cells, so it is computed the same way for the reference and a run.
Pressure is not stored in a CG dataset (mapped forces give no virial of the atomistic system),
so :func:`mean_pressure` returns None for a reference; pass a known reference pressure to the
comparison instead. In NPT the mean pressure equals the barostat target by construction, so it
is informative in NVT (and density in NPT).
"""

from __future__ import annotations

import numpy as np

from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.units import density_g_cm3


def density_series(traj: CGTrajectory) -> tuple[np.ndarray, np.ndarray]:
    """Frame times (fs) and mass densities (g/cm³) from the total bead mass and each frame's cell volume."""
    volumes = np.abs(np.linalg.det(traj.boxes))
    return traj.times, density_g_cm3(float(traj.masses.sum()), volumes)


def mean_density(traj: CGTrajectory) -> float:
    """Time-averaged mass density (g/cm³) over the frames."""
    return float(np.mean(density_series(traj)[1]))


def log_series(traj: CGTrajectory, column: str, start_fs: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Times (fs) and values of a ``log.csv`` column from ``start_fs`` (default: the first frame) on; None without a log."""
    if traj.log is None or column not in traj.log:
        return None
    t = traj.log["time_fs"]
    start = (traj.times[0] if traj.n_frames else -np.inf) if start_fs is None else start_fs
    keep = (t >= start) & np.isfinite(traj.log[column])
    return t[keep], traj.log[column][keep]


def mean_pressure(traj: CGTrajectory) -> float | None:
    """Mean logged pressure (bar) over the analysed frames' time span; None for a reference dataset."""
    series = log_series(traj, "pressure_bar")
    return float(series[1].mean()) if series is not None and len(series[1]) else None


def mean_temperature(traj: CGTrajectory) -> float | None:
    """Mean logged temperature (K) over the analysed frames' time span, or the nominal temperature of a reference."""
    series = log_series(traj, "temperature_K")
    if series is None or not len(series[1]):
        return traj.temperature_K
    return float(series[1].mean())
