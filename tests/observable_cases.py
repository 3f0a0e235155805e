"""Synthetic trajectories for the shared observable suite: one case per registered observable name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache

import numpy as np

from cgzoo.data.run_record import LOG_FIELDS
from cgzoo.observables.trajectory import CGTrajectory


@cache
def chain_liquid(n_mol: int = 20, frames: int = 24, box: float = 15.0, dt: float = 20.0, seed: int = 0) -> CGTrajectory:
    """A finished run of ``n_mol`` A-B-B-A zig-zag chains diffusing as rigid bodies: topology, velocities and a log."""
    rng = np.random.default_rng(seed)
    template = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [2.0, 1.4, 0.0], [3.5, 1.4, 0.6]])
    shapes = np.stack([(template - template.mean(0)) @ np.linalg.qr(rng.normal(size=(3, 3)))[0].T for _ in range(n_mol)])
    centres = rng.uniform(0, box, (n_mol, 3)) + np.cumsum(rng.normal(0, 0.2, (frames, n_mol, 3)), axis=0)
    positions = (centres[:, :, None, :] + shapes + rng.normal(0, 0.05, (frames, n_mol, 4, 3))).reshape(frames, -1, 3)
    n = 4 * n_mol
    times = np.arange(frames) * dt
    log = {name: rng.normal(300.0 if name == "temperature_K" else 1.0, 1.0, frames) for name in LOG_FIELDS}
    log.update(step=np.arange(frames) * 10.0, time_fs=times)
    return CGTrajectory(
        positions=positions, boxes=np.tile(np.eye(3) * box, (frames, 1, 1)), times=times,
        bead_types=np.tile([0, 1, 1, 0], n_mol), type_names=["A", "B"], masses=np.full(n, 15.0),
        molecule_ids=np.repeat(np.arange(n_mol), 4),
        bonds=np.array([[4 * m + k, 4 * m + k + 1] for m in range(n_mol) for k in range(3)]),
        angles=np.array([[4 * m + k, 4 * m + k + 1, 4 * m + k + 2] for m in range(n_mol) for k in range(2)]),
        dihedrals=np.array([[4 * m, 4 * m + 1, 4 * m + 2, 4 * m + 3] for m in range(n_mol)]),
        velocities=rng.normal(0, 0.005, (frames, n, 3)), unwrapped=True, log=log, temperature_K=300.0,
        status="complete", source="synthetic chain liquid")


@cache
def breathing_liquid() -> CGTrajectory:
    """:func:`chain_liquid` in a cell that changes every frame, as in NPT (an NVT cell's density error is none: it
    is set, not measured)."""
    traj = chain_liquid()
    scale = 1.0 + 0.01 * np.sin(np.arange(traj.n_frames))
    return dataclasses.replace(traj, boxes=traj.boxes * scale[:, None, None])


#: registered observable name → the trajectory it is checked on (compared with itself)
OBSERVABLE_CASES: dict[str, Callable[[], CGTrajectory]] = {
    "rdf": chain_liquid,
    "bonded": chain_liquid,
    "triplet": chain_liquid,
    "density": breathing_liquid,
    "thermo": chain_liquid,
    "msd": chain_liquid,
    "vacf": chain_liquid,
}
