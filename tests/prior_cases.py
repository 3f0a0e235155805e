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


def _lammps_angle_file():
    """A LAMMPS angle table written once per test session (the ``table_file`` prior reads it)."""
    import tempfile
    from pathlib import Path

    from cgzoo.priors import build_prior
    from cgzoo.tables import write_lammps

    path = Path(tempfile.mkdtemp(prefix="cgzoo-tables-")) / "angle.table"
    write_lammps(build_prior({"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "angle",
                                                                        "tables": {"A-B-B": _table("angle")}}}), path)
    return path


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
        "table_file": {"class_path": "table_file", "init_args": {"type_names": TYPES, "kind": "angle", "fmt": "lammps",
                                                                 "path": str(_lammps_angle_file())}},
        "sum": {"class_path": "sum", "init_args": {"priors": [
            {"class_path": "lennard_jones", "init_args": {**pair, "params": lj}},
            {"class_path": "harmonic_bond", "init_args": {"type_names": TYPES, "params": {"A-B": {"k": 20.0, "r0": 3.8},
                                                                                        "B-B": {"k": 30.0, "r0": 3.7}}}}]}},
    }


def random_fluid(n: int, box: float, n_frames: int, min_dist: float = 2.7, seed: int = 0) -> np.ndarray:
    """Random sequential addition of ``n`` points with a minimum periodic separation, ``n_frames`` times."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        pts = np.empty((0, 3))
        while len(pts) < n:
            p = rng.uniform(0, box, 3)
            d = (pts - p + box / 2) % box - box / 2
            if not len(pts) or np.min(np.linalg.norm(d, axis=1)) > min_dist:
                pts = np.vstack([pts, p])
        frames.append(pts)
    return np.stack(frames)


def forces_of(prior, system: dict, cutoff: float) -> np.ndarray:
    """Forces (F,N,3) of ``prior`` on every frame of ``system``."""
    import torch

    out = []
    for f in range(len(system["positions"])):
        graph = graph_of(system, cutoff, frames=slice(f, f + 1))
        (grad,) = torch.autograd.grad(prior(graph).sum(), graph.pos)
        out.append(-grad.numpy())
    return np.stack(out)


def lj_fluid_system(n_frames: int = 12, seed: int = 0) -> dict:
    """A two-type LJ fluid (64 beads, 16 Å box) as a ``system`` dict, no bonds."""
    n = 64
    return dict(positions=random_fluid(n, 16.0, n_frames, seed=seed), boxes=np.tile(np.eye(3) * 16.0, (n_frames, 1, 1)),
                bead_types=np.array([0, 1] * (n // 2)), bonds=np.zeros((0, 2), int), angles=np.zeros((0, 3), int),
                dihedrals=np.zeros((0, 4), int), molecule_ids=np.arange(n))


LJ_TRUE = {"A-A": {"sigma": 3.2, "epsilon": 0.3}, "A-B": {"sigma": 3.4, "epsilon": 0.2}, "B-B": {"sigma": 3.6, "epsilon": 0.25}}


def separated_chains(n_frames: int, min_dist: float = 3.2, seed: int = 0) -> dict:
    """Eight 4-bead chains on a 2×2×2 grid (10 Å apart, 20 Å box), re-drawn until no two molecules come closer than ``min_dist``."""
    rng = np.random.default_rng(seed)
    template = np.array([[0.0, 0.0, 0.0], [3.8, 0.0, 0.0], [4.9, 3.6, 0.3], [8.6, 3.9, 1.4]])
    template = template - template.mean(0)
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


def build_prior_for_tests(params: dict, cutoff: float):
    """A force-shifted LJ prior over TYPES with ``params`` (float64), used to make synthetic forces."""
    from cgzoo.priors import build_prior

    return build_prior({"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": cutoff,
                                                                     "smoothing": "force_shift", "params": params}}).double()
