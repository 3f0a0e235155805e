"""Synthetic LJ fluids and their prior forces, for the fitting, training and MD tests."""

from __future__ import annotations

import numpy as np
import torch

from cgzoo.priors import Prior, build_prior
from cgzoo.testing.systems import TYPES, graph_of


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


def forces_of(prior: Prior, system: dict, cutoff: float) -> np.ndarray:
    """Forces (F,N,3) of ``prior`` on every frame of ``system``."""
    out = []
    for f in range(len(system["positions"])):
        graph = graph_of(system, cutoff, frames=slice(f, f + 1))
        (grad,) = torch.autograd.grad(prior(graph).sum(), graph.pos)
        out.append(-grad.numpy())
    return np.stack(out)


def lj_fluid_system(n_frames: int = 12, seed: int = 0) -> dict:
    """A two-type LJ fluid (64 beads, 16 Å box) as a ``system`` dict, no bonds."""
    n = 64
    return {"positions": random_fluid(n, 16.0, n_frames, seed=seed), "boxes": np.tile(np.eye(3) * 16.0, (n_frames, 1, 1)),
                "bead_types": np.array([0, 1] * (n // 2)), "bonds": np.zeros((0, 2), int), "angles": np.zeros((0, 3), int),
                "dihedrals": np.zeros((0, 4), int), "molecule_ids": np.arange(n)}


def build_prior_for_tests(params: dict, cutoff: float) -> Prior:
    """A force-shifted LJ prior over TYPES with ``params`` (float64), used to make synthetic forces."""
    return build_prior({"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": cutoff,
                                                                     "smoothing": "force_shift", "params": params}}).double()
