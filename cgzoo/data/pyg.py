"""Turn CG dataset frames into torch-geometric ``Data`` objects carrying the periodic cell.

Bonded index lists are stored as ``bond_index`` (2,B), ``angle_index`` (3,A) and
``dihedral_index`` (4,D): PyG offsets any attribute whose name contains ``index`` by the node
count when batching, so bonded terms stay correct in a batch. ``cell`` is (1,3,3) so that a
batch concatenates cells to (n_graphs,3,3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from cgzoo.data.dataset import CGDataset


def frame_to_data(dataset: "CGDataset", index: int, dtype: torch.dtype = torch.float32) -> "Data":
    """Frame ``index`` as a PyG ``Data``: pos, forces, cell, bead_type, mass, molecule_id, bonded indices."""
    from torch_geometric.data import Data

    top = dataset.topology
    return Data(
        pos=torch.as_tensor(dataset.positions[index], dtype=dtype),
        forces=torch.as_tensor(dataset.forces[index], dtype=dtype),
        cell=torch.as_tensor(dataset.box[index], dtype=dtype).reshape(1, 3, 3),
        bead_type=torch.as_tensor(top.bead_types, dtype=torch.long),
        mass=torch.as_tensor(top.masses, dtype=dtype),
        molecule_id=torch.as_tensor(top.molecule_ids, dtype=torch.long),
        bond_index=torch.as_tensor(np.asarray(top.bonds).T.reshape(2, -1), dtype=torch.long),
        angle_index=torch.as_tensor(np.asarray(top.angles).T.reshape(3, -1), dtype=torch.long),
        dihedral_index=torch.as_tensor(np.asarray(top.dihedrals).T.reshape(4, -1), dtype=torch.long),
        num_nodes=top.n_beads,
    )


def to_pyg_list(dataset: "CGDataset", frames: np.ndarray | None = None, dtype: torch.dtype = torch.float32) -> list["Data"]:
    """PyG ``Data`` objects for ``frames`` (all frames when ``None``)."""
    indices = range(dataset.n_frames) if frames is None else frames
    return [frame_to_data(dataset, int(i), dtype) for i in indices]
