"""Synthetic periodic CG systems (bead types A and B) that the shared suites evaluate models and priors on.

A *system* is a dict of numpy arrays: ``positions`` (F,N,3), ``boxes`` (F,3,3), ``bead_types``,
``molecule_ids``, ``bonds``, ``angles`` and ``dihedrals``; :func:`graph_of` turns frames of it into
a :class:`~cgzoo.neighbors.CGGraph`.
"""

from __future__ import annotations

import numpy as np
import torch

from cgzoo.neighbors import CGGraph, TopologyCache, batch_graph

#: bead type names of every synthetic system (type 0 = A, type 1 = B)
TYPES = ["A", "B"]
#: a zig-zag A-B-B-A chain (bonds ~3.8 Å)
CHAIN = np.array([[0.0, 0.0, 0.0], [3.8, 0.0, 0.0], [4.9, 3.6, 0.3], [8.6, 3.9, 1.4]])


def chain_system(n_mol: int = 6, box: float = 14.0, n_frames: int = 2, seed: int = 0, triclinic: bool = False) -> dict:
    """``n_mol`` A-B-B-A chains scattered in a periodic box, ``n_frames`` frames: bonds, angles and dihedrals to test."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        beads = []
        for m in range(n_mol):
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            centre = np.array([(m % 2) * 7.0, ((m // 2) % 3) * 4.7, (m // 2) * 4.2]) + rng.normal(0, 0.2, 3)
            beads.append((CHAIN - CHAIN.mean(0)) @ q.T + centre + rng.normal(0, 0.15, (4, 3)))
        frames.append(np.concatenate(beads))
    cell = np.eye(3) * box
    if triclinic:
        cell[1, 0], cell[2, 0], cell[2, 1] = 2.5, -1.5, 1.0
    boxes = np.tile(cell, (n_frames, 1, 1))
    bead_types = np.tile([0, 1, 1, 0], n_mol)
    bonds = np.array([[4 * m + k, 4 * m + k + 1] for m in range(n_mol) for k in range(3)])
    angles = np.array([[4 * m + k, 4 * m + k + 1, 4 * m + k + 2] for m in range(n_mol) for k in range(2)])
    dihedrals = np.array([[4 * m, 4 * m + 1, 4 * m + 2, 4 * m + 3] for m in range(n_mol)])
    molecule_ids = np.repeat(np.arange(n_mol), 4)
    return {"positions": np.stack(frames), "boxes": boxes, "bead_types": bead_types, "bonds": bonds, "angles": angles,
                "dihedrals": dihedrals, "molecule_ids": molecule_ids}


def separated_chains(n_frames: int, min_dist: float = 3.2, seed: int = 0) -> dict:
    """Eight chains on a 2×2×2 grid (10 Å apart, 20 Å box), re-drawn until no two molecules come closer than ``min_dist``.

    Networks see no repulsive core, so the model suite keeps molecules apart to stay in a sane energy range.
    """
    rng = np.random.default_rng(seed)
    template = CHAIN - CHAIN.mean(0)
    centres = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float) * 10.0 + 5.0
    molecule_ids = np.repeat(np.arange(8), 4)
    frames = []
    while len(frames) < n_frames:
        beads = []
        for c in centres:
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            beads.append(template @ q.T + c + rng.normal(0, 0.12, (4, 3)))
        x = np.concatenate(beads)
        d = (x[:, None] - x[None] + 10.0) % 20.0 - 10.0
        dist = np.linalg.norm(d, axis=-1)
        if dist[molecule_ids[:, None] != molecule_ids[None]].min() > min_dist:
            frames.append(x)
    system = chain_system(n_mol=8, n_frames=1)
    system.update(positions=np.stack(frames), boxes=np.tile(np.eye(3) * 20.0, (n_frames, 1, 1)))
    return system


def two_beads(distances: list[float], box: float) -> dict:
    """An A and a B bead (separate molecules) at each of ``distances`` along x, one frame per distance, in a cubic box."""
    positions = np.array([[[0.0, 0.0, 0.0], [r, 0.0, 0.0]] for r in distances])
    return {"positions": positions, "boxes": np.tile(np.eye(3) * box, (len(distances), 1, 1)),
            "bead_types": np.array([0, 1]), "bonds": np.zeros((0, 2), int), "angles": np.zeros((0, 3), int),
            "dihedrals": np.zeros((0, 4), int), "molecule_ids": np.array([0, 1])}


def graph_of(system: dict, cutoff: float, frames: slice = slice(None), positions: np.ndarray | None = None,
             boxes: np.ndarray | None = None, requires_grad: bool = True, dtype: torch.dtype = torch.float64) -> CGGraph:
    """CGGraph of the selected frames of ``system`` (optionally at other positions or boxes), gradients on by default."""
    pos = system["positions"][frames] if positions is None else positions
    box = system["boxes"][frames] if boxes is None else boxes
    cache = TopologyCache(len(system["bead_types"]), system["bonds"], system["molecule_ids"])
    return batch_graph(pos, box, system["bead_types"], cache, cutoff, system["bonds"], system["angles"],
                       system["dihedrals"], dtype=dtype, requires_grad=requires_grad)
