"""Shared fixtures: a small synthetic CG dataset with bonded topology and a triclinic-capable box."""

from __future__ import annotations

import numpy as np
import pytest

from cgzoo.data.dataset import CGDataset, CGTopology


def make_dataset(n_frames: int = 12, n_mol: int = 4, seed: int = 0) -> CGDataset:
    """``n_mol`` 3-bead chains (types E-M-E) in a 12 Å cubic box with random positions and forces."""
    rng = np.random.default_rng(seed)
    n = 3 * n_mol
    topology = CGTopology(
        bead_types=np.tile([0, 1, 0], n_mol),
        type_names=["E", "M"],
        bead_names=np.tile(["A", "B", "C"], n_mol),
        masses=np.tile([29.06, 28.05, 29.06], n_mol),
        molecule_ids=np.repeat(np.arange(n_mol), 3),
        bonds=np.array([[3 * m + i, 3 * m + i + 1] for m in range(n_mol) for i in range(2)]),
        angles=np.array([[3 * m, 3 * m + 1, 3 * m + 2] for m in range(n_mol)]),
    )
    box = np.tile(np.eye(3) * 12.0, (n_frames, 1, 1))
    return CGDataset(
        positions=rng.uniform(0, 12, (n_frames, n, 3)).astype(np.float32),
        forces=rng.normal(0, 3, (n_frames, n, 3)).astype(np.float32),
        boxes=box,
        times=np.arange(n_frames) * 500.0,
        topology=topology,
        temperature=298.15,
        provenance={"mapping": {"name": "test", "sha256": "0" * 64}, "command": "pytest"},
    )


@pytest.fixture
def cg_dataset() -> CGDataset:
    return make_dataset()
