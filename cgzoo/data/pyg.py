"""Turn CG dataset frames into torch-geometric ``Data`` objects carrying the periodic cell and their topology, and back.

Bonded index lists are stored as ``bond_index`` (2,B), ``angle_index`` (3,A) and
``dihedral_index`` (4,D): PyG offsets any attribute whose name contains ``index`` by the node
count when batching, so bonded terms stay correct in a batch. ``cell`` is (1,3,3) so that a
batch concatenates cells to (n_graphs,3,3). ``topology`` is the frame's
:class:`~cgzoo.neighbors.TopologyCache` (molecules and bond separations, shared by all frames of
one dataset); a batch holds one per frame, so frames of different systems batch together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cgzoo.neighbors import CGGraph, TopologyCache, build_graph

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from cgzoo.data.dataset import CGDataset, CGTopology


def topology_cache(topology: CGTopology) -> TopologyCache:
    """The bond-separation lookups of a dataset topology, built once and shared by its frames."""
    return TopologyCache(topology.n_beads, topology.bonds, topology.molecule_ids)


def frame_to_data(dataset: CGDataset, index: int, dtype: torch.dtype = torch.float32,
                  topology: TopologyCache | None = None, dataset_id: int = 0) -> Data:
    """Frame ``index`` as a PyG ``Data``: pos, forces, cell, bead_type, mass, molecule_id, bonded indices, topology,
    and where it comes from: ``frame`` (``index``) and ``dataset_id`` (the caller's number for ``dataset``).

    Pass ``topology`` (:func:`topology_cache` of the dataset) when converting many frames, so it is built once.
    """
    from torch_geometric.data import Data

    top = dataset.topology
    return Data(
        pos=torch.as_tensor(dataset.positions[index], dtype=dtype),
        forces=torch.as_tensor(dataset.forces[index], dtype=dtype),
        cell=torch.as_tensor(dataset.boxes[index], dtype=dtype).reshape(1, 3, 3),
        bead_type=torch.as_tensor(top.bead_types, dtype=torch.long),
        mass=torch.as_tensor(top.masses, dtype=dtype),
        molecule_id=torch.as_tensor(top.molecule_ids, dtype=torch.long),
        bond_index=torch.as_tensor(np.asarray(top.bonds).T.reshape(2, -1), dtype=torch.long),
        angle_index=torch.as_tensor(np.asarray(top.angles).T.reshape(3, -1), dtype=torch.long),
        dihedral_index=torch.as_tensor(np.asarray(top.dihedrals).T.reshape(4, -1), dtype=torch.long),
        topology=topology_cache(top) if topology is None else topology,
        frame=torch.tensor([index], dtype=torch.long),  # named without "index": PyG would offset those by the bead count
        dataset_id=torch.tensor([dataset_id], dtype=torch.long),
        num_nodes=top.n_beads,
    )


def to_pyg_list(dataset: CGDataset, frames: np.ndarray | None = None, dtype: torch.dtype = torch.float32) -> list[Data]:
    """PyG ``Data`` objects for ``frames`` (all frames when ``None``)."""
    indices = range(dataset.n_frames) if frames is None else frames
    topology = topology_cache(dataset.topology)
    return [frame_to_data(dataset, int(i), dtype, topology) for i in indices]


def batch_to_graph(batch: Any, cutoff: float, dtype: torch.dtype) -> CGGraph:
    """The :class:`CGGraph` of a PyG batch of frames (any mix of systems), positions and cells in ``dtype``."""
    return build_graph(batch.pos.to(dtype), batch.bead_type, batch.cell.to(dtype).reshape(-1, 3, 3), batch.batch, cutoff,
                       batch.topology, batch.bond_index, batch.angle_index, batch.dihedral_index)
