"""A model's CG forces at stored bead configurations: a fitted prior (``prior.json`` or its directory) or a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cgzoo.errors import InputError
from cgzoo.md.calculator import load_any_model
from cgzoo.neighbors import TopologyCache, batch_graph


def model_forces(model_path: str | Path, positions: np.ndarray, boxes: np.ndarray, type_names: list[str],
                 bead_types: np.ndarray, molecule_ids: np.ndarray, bonds: np.ndarray, angles: np.ndarray,
                 dihedrals: np.ndarray) -> np.ndarray:
    """Forces (M, B, 3) kcal/(mol·Å) of the model at M configurations (positions (M, B, 3), boxes (M, 3, 3) Å).

    Bead types are matched to the model's by name; a type the model does not know is an :class:`InputError`.
    """
    model = load_any_model(model_path)
    missing = [name for name in type_names if name not in model.type_names]
    if missing:
        raise InputError(model_path, f"model has no bead type {', '.join(missing)} (it knows {', '.join(model.type_names)})")
    types = np.array([model.type_names.index(name) for name in type_names], dtype=np.int64)[bead_types]
    cache = TopologyCache(len(types), bonds, molecule_ids)
    dtype = model.energy_scale.dtype
    out = np.empty(positions.shape, dtype=np.float64)
    for m in range(len(positions)):
        graph = batch_graph(positions[m][None], boxes[m][None], types, cache, model.cutoff, bonds, angles, dihedrals,
                            dtype=dtype)
        out[m] = model(graph, forces=True)["forces"].detach().to(torch.float64).cpu().numpy()
    return out
