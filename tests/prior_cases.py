"""Example configurations of every registered prior, and a synthetic periodic system to test them on."""

from __future__ import annotations

import numpy as np

from cgzoo.neighbors import TopologyCache, batch_graph

TYPES = ["A", "B"]


def chain_system(n_mol: int = 6, box: float = 14.0, n_frames: int = 2, seed: int = 0, triclinic: bool = False):
    """``n_mol`` zig-zag 4-bead chains A-B-B-A (bonds ~3.8 Å) scattered in a periodic box, ``n_frames`` frames."""
    rng = np.random.default_rng(seed)
    template = np.array([[0.0, 0.0, 0.0], [3.8, 0.0, 0.0], [4.9, 3.6, 0.3], [8.6, 3.9, 1.4]])
    frames = []
    for _ in range(n_frames):
        beads = []
        for m in range(n_mol):
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            centre = np.array([(m % 2) * 7.0, ((m // 2) % 3) * 4.7, (m // 2) * 4.2]) + rng.normal(0, 0.2, 3)
            beads.append((template - template.mean(0)) @ q.T + centre + rng.normal(0, 0.15, (4, 3)))
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
    return dict(positions=np.stack(frames), boxes=boxes, bead_types=bead_types, bonds=bonds, angles=angles,
                dihedrals=dihedrals, molecule_ids=molecule_ids)


def graph_of(system: dict, cutoff: float, frames=slice(None), positions=None, boxes=None, requires_grad=True, dtype=None):
    """CGGraph of the selected frames of ``system`` (optionally overriding positions/boxes)."""
    import torch

    pos = system["positions"][frames] if positions is None else positions
    box = system["boxes"][frames] if boxes is None else boxes
    cache = TopologyCache(len(system["bead_types"]), system["bonds"], system["molecule_ids"])
    return batch_graph(pos, box, system["bead_types"], cache, cutoff, system["bonds"], system["angles"],
                       system["dihedrals"], dtype=dtype or torch.float64, requires_grad=requires_grad)


def _table(kind: str) -> dict:
    if kind == "pair":
        x = np.linspace(2.5, 6.0, 36)
        g = 2.0 * np.exp(-(x - 2.5)) * np.cos(1.3 * x)
        dg = -g - 2.6 * np.exp(-(x - 2.5)) * np.sin(1.3 * x)
        u = g * (6.0 - x) ** 2  # value and slope vanish at the table's end, as a fitted table's do
        du = dg * (6.0 - x) ** 2 - 2.0 * g * (6.0 - x)
        return {"x": x.tolist(), "u": u.tolist(), "du": du.tolist()}
    if kind == "bond":
        x = np.linspace(3.0, 4.6, 33)
        return {"x": x.tolist(), "u": (3.0 * (x - 3.8) ** 2 + 0.2 * (x - 3.8) ** 3).tolist()}
    if kind == "angle":
        x = np.linspace(0.0, np.pi, 61)
        return {"x": x.tolist(), "u": (1.5 * (np.cos(x) + 0.3) ** 2).tolist()}
    x = np.linspace(-np.pi, np.pi, 73)
    return {"x": x.tolist(), "u": (0.8 * (1 + np.cos(x)) + 0.3 * (1 - np.cos(2 * x))).tolist()}


def prior_cases() -> dict[str, dict]:
    """One spec per registered prior name (``class_path`` + ``init_args``) for the shared suite."""
    lj = {"A-A": {"sigma": 3.4, "epsilon": 0.2}, "A-B": {"sigma": 3.6, "epsilon": 0.15}, "B-B": {"sigma": 3.8, "epsilon": 0.1}}
    pair = dict(type_names=TYPES, cutoff=6.0, exclude=3)
    return {
        "none": {"class_path": "none"},
        "lennard_jones": {"class_path": "lennard_jones", "init_args": {**pair, "params": lj}},
        "mie": {"class_path": "mie", "init_args": {**pair, "smoothing": "force_shift",
                                                   "params": {k: {**v, "n": 10.0, "m": 6.0} for k, v in lj.items()}}},
        "soft_repulsion": {"class_path": "soft_repulsion", "init_args": {**pair, "smoothing": "shift",
                                                                         "default": {"sigma": 3.5, "epsilon": 0.5, "n": 9.0}, "params": {}}},
        "wca": {"class_path": "wca", "init_args": {"type_names": TYPES, "params": lj, "exclude": 1}},
        "morse": {"class_path": "morse", "init_args": {**pair, "default": {"D": 0.3, "alpha": 1.2, "r0": 4.0}, "params": {}}},
        "harmonic_bond": {"class_path": "harmonic_bond", "init_args": {"type_names": TYPES,
                                                                       "params": {"A-B": {"k": 20.0, "r0": 3.8}, "B-B": {"k": 30.0, "r0": 3.7}}}},
        "harmonic_angle": {"class_path": "harmonic_angle", "init_args": {"type_names": TYPES,
                                                                         "params": {"A-B-B": {"k": 8.0, "theta0": 110.0}}}},
        "cosine_angle": {"class_path": "cosine_angle", "init_args": {"type_names": TYPES,
                                                                     "params": {"A-B-B": {"k": 12.0, "theta0": 120.0}}}},
        "fourier_dihedral": {"class_path": "fourier_dihedral", "init_args": {"type_names": TYPES,
                                                                             "params": {"A-B-B-A": {"k": [0.7, -0.2, 0.4], "phase": [0.0, 180.0, 0.0]}}}},
        "tabulated": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "pair",
                                                               "tables": {k: _table("pair") for k in ("A-A", "A-B", "B-B")}}},
        "tabulated_bond": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "bond",
                                                                    "tables": {k: _table("bond") for k in ("A-B", "B-B")}}},
        "tabulated_angle": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "angle",
                                                                     "tables": {"A-B-B": _table("angle")}}},
        "tabulated_dihedral": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "dihedral",
                                                                        "tables": {"A-B-B-A": _table("dihedral")}}},
        "sum": {"class_path": "sum", "init_args": {"priors": [
            {"class_path": "lennard_jones", "init_args": {**pair, "params": lj}},
            {"class_path": "harmonic_bond", "init_args": {"type_names": TYPES, "params": {"A-B": {"k": 20.0, "r0": 3.8},
                                                                                        "B-B": {"k": 30.0, "r0": 3.7}}}}]}},
    }
