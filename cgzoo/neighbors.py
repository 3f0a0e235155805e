"""Periodic neighbour lists from vesin, and the graph of a batch of CG structures that priors and models read.

vesin computes pairs and integer cell shifts on detached coordinates; the pair vectors are then
rebuilt in torch as ``pos[j] - pos[i] + shift @ cell`` so that gradients reach both the positions
(forces) and the cell (stress). Lists are built per structure, cost linear in the number of beads.

Every edge also carries its *bond separation* ``edge_sep``: 0 for beads of different molecules,
1/2/3 for 1-2/1-3/1-4 neighbours along the CG bond graph, and :data:`FAR` for two beads of the
same molecule further apart. Non-bonded terms use it for LAMMPS ``special_bonds``-style exclusions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from cgzoo.errors import CGZooError
from cgzoo.geometry import half_width, minimum_image

#: ``edge_sep`` of two beads in one molecule that are more than three bonds apart (or unbonded).
FAR = 99
#: Largest bond separation tracked explicitly (1-4).
MAX_SEPARATION = 3


@dataclass
class CGGraph:
    """A batch of periodic CG structures with a half (i<j, each pair once) neighbour list.

    ``pos`` (N,3) Å; ``cell`` (B,3,3) Å rows = lattice vectors; ``batch`` (N,) structure index;
    ``edge_index`` (2,E), ``edge_shift`` (E,3) integer image shifts (as floats), ``edge_sep`` (E,);
    bonded index lists ``bond_index`` (2,Nb), ``angle_index`` (3,Na), ``dihedral_index`` (4,Nd).
    """

    pos: torch.Tensor
    bead_type: torch.Tensor
    cell: torch.Tensor
    batch: torch.Tensor
    edge_index: torch.Tensor
    edge_shift: torch.Tensor
    edge_sep: torch.Tensor
    cutoff: float
    bond_index: torch.Tensor = field(default_factory=lambda: torch.zeros(2, 0, dtype=torch.long))
    angle_index: torch.Tensor = field(default_factory=lambda: torch.zeros(3, 0, dtype=torch.long))
    dihedral_index: torch.Tensor = field(default_factory=lambda: torch.zeros(4, 0, dtype=torch.long))

    @property
    def n_structures(self) -> int:
        return int(self.cell.shape[0])

    def edge_vectors(self) -> torch.Tensor:
        """Pair vectors r_j − r_i + shift·cell (E,3), differentiable in ``pos`` and ``cell``."""
        i, j = self.edge_index
        if self.n_structures == 1:
            offsets = self.edge_shift @ self.cell[0]
        else:
            offsets = torch.bmm(self.edge_shift.unsqueeze(1), self.cell[self.batch[i]]).squeeze(1)
        return self.pos[j] - self.pos[i] + offsets

    def minimum_image(self, vectors: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """Difference vectors (M,3) of structures ``owner`` (M,) wrapped to their nearest image (bonded terms)."""
        return minimum_image(vectors.unsqueeze(1), self.cell[owner]).squeeze(1)

    def bonded_vectors(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Minimum-image vectors between consecutive beads of each bonded term: r[k+1] − r[k]."""
        owner = self.batch[index[0]]
        return [self.minimum_image(self.pos[index[k + 1]] - self.pos[index[k]], owner) for k in range(index.shape[0] - 1)]


def separation_table(n_beads: int, bonds: np.ndarray, molecule_ids: np.ndarray) -> dict[tuple[int, int], int]:
    """Bond separation (1..3) of every intramolecular pair i<j within three CG bonds of each other."""
    adjacency: list[set[int]] = [set() for _ in range(n_beads)]
    for a, b in np.asarray(bonds, dtype=np.int64).reshape(-1, 2):
        adjacency[a].add(int(b))
        adjacency[b].add(int(a))
    table: dict[tuple[int, int], int] = {}
    for start in range(n_beads):
        if not adjacency[start]:
            continue
        frontier, seen = {start}, {start}
        for depth in range(1, MAX_SEPARATION + 1):
            frontier = {n for f in frontier for n in adjacency[f]} - seen
            seen |= frontier
            for other in frontier:
                if other > start:
                    table[(start, other)] = min(depth, table.get((start, other), depth))
    return table


class TopologyCache:
    """Per-topology lookups reused for every frame: molecule ids and bond separations as sorted keys."""

    def __init__(self, n_beads: int, bonds: np.ndarray, molecule_ids: np.ndarray) -> None:
        self.n_beads = n_beads
        self.molecule_ids = torch.as_tensor(np.asarray(molecule_ids), dtype=torch.long)
        table = separation_table(n_beads, bonds, molecule_ids)
        keys = np.array([i * n_beads + j for i, j in table], dtype=np.int64)
        order = np.argsort(keys)
        self.keys = torch.as_tensor(keys[order])
        self.seps = torch.as_tensor(np.array(list(table.values()), dtype=np.int64)[order])

    def edge_separation(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """``edge_sep`` for local pairs (i, j) of one structure (see module docstring)."""
        if self.molecule_ids.device != i.device:  # follow the pairs to the GPU once
            self.molecule_ids, self.keys, self.seps = (t.to(i.device) for t in (self.molecule_ids, self.keys, self.seps))
        same = self.molecule_ids[i] == self.molecule_ids[j]
        sep = torch.where(same, torch.full_like(i, FAR), torch.zeros_like(i))
        if self.keys.numel():
            lo, hi = torch.minimum(i, j), torch.maximum(i, j)
            keys = lo * self.n_beads + hi
            pos = torch.searchsorted(self.keys, keys).clamp(max=self.keys.numel() - 1)
            found = self.keys[pos] == keys
            sep = torch.where(found & same, self.seps[pos], sep)
        return sep


def structure_pairs(pos: torch.Tensor, cell: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Half neighbour list of one periodic structure: pairs (2,E) and integer shifts (E,3) as floats."""
    from vesin_torch import NeighborList

    if cutoff <= 0:
        return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 3, dtype=pos.dtype)
    _check_cutoff(cell, cutoff)
    calc = NeighborList(cutoff=float(cutoff), full_list=False)
    i, j, shifts = calc.compute(pos.detach().to(torch.float64), cell.detach().to(torch.float64), True, "ijS")
    return torch.stack([i.long(), j.long()]), shifts.to(pos.dtype)


class CellTooSmall(CGZooError, ValueError):
    """A cell narrower than twice the cutoff in some direction: an edge would meet its own image."""


def _check_cutoff(cell: torch.Tensor, cutoff: float) -> None:
    """Refuse cells smaller than twice the cutoff in some direction (an edge would meet its own image)."""
    limit = float(half_width(cell.detach().double()))
    if limit < cutoff:
        raise CellTooSmall(f"cutoff {cutoff:.3f} Å exceeds half the smallest cell width ({limit:.3f} Å)")


def build_graph(
    pos: torch.Tensor,
    bead_type: torch.Tensor,
    cell: torch.Tensor,
    batch: torch.Tensor,
    cutoff: float,
    topologies: Sequence[TopologyCache],
    bond_index: torch.Tensor | None = None,
    angle_index: torch.Tensor | None = None,
    dihedral_index: torch.Tensor | None = None,
) -> CGGraph:
    """Neighbour graph of a batch: one vesin call per structure, global bead indices, bond separations.

    ``topologies[b]`` describes structure ``b`` (its beads are contiguous in ``pos``, in order).
    """
    cell = cell.reshape(-1, 3, 3)
    counts = torch.bincount(batch, minlength=cell.shape[0]).tolist()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
    edges, shifts, seps = [], [], []
    for b, (start, count) in enumerate(zip(starts, counts)):
        local, shift = structure_pairs(pos[start:start + count], cell[b], cutoff)
        edges.append(local + start)
        shifts.append(shift)
        seps.append(topologies[b].edge_separation(local[0], local[1]))
    empty = torch.zeros(0, dtype=torch.long, device=pos.device)
    return CGGraph(
        pos=pos,
        bead_type=bead_type,
        cell=cell,
        batch=batch,
        edge_index=torch.cat(edges, dim=1) if edges else empty.reshape(2, 0),
        edge_shift=torch.cat(shifts) if shifts else torch.zeros(0, 3, dtype=pos.dtype),
        edge_sep=torch.cat(seps) if seps else empty,
        cutoff=float(cutoff),
        bond_index=empty.reshape(2, 0) if bond_index is None else bond_index,
        angle_index=empty.reshape(3, 0) if angle_index is None else angle_index,
        dihedral_index=empty.reshape(4, 0) if dihedral_index is None else dihedral_index,
    )


def batch_graph(
    positions: np.ndarray | torch.Tensor,
    boxes: np.ndarray | torch.Tensor,
    bead_types: np.ndarray,
    topology: TopologyCache,
    cutoff: float,
    bonds: np.ndarray | None = None,
    angles: np.ndarray | None = None,
    dihedrals: np.ndarray | None = None,
    dtype: torch.dtype = torch.float64,
    requires_grad: bool = False,
) -> CGGraph:
    """Graph of B frames (B,N,3) of one topology, with bonded lists repeated per frame."""
    pos = torch.as_tensor(np.asarray(positions), dtype=dtype).reshape(-1, topology.n_beads, 3)
    n_frames, n = pos.shape[0], topology.n_beads
    cell = torch.as_tensor(np.asarray(boxes), dtype=dtype).reshape(n_frames, 3, 3)
    flat = pos.reshape(-1, 3).clone().requires_grad_(requires_grad)
    batch = torch.arange(n_frames).repeat_interleave(n)
    types = torch.as_tensor(np.asarray(bead_types), dtype=torch.long).repeat(n_frames)
    offsets = (torch.arange(n_frames) * n).reshape(1, -1, 1)

    def repeat(arr: np.ndarray | None, order: int) -> torch.Tensor:
        base = torch.as_tensor(np.asarray(arr if arr is not None else np.zeros((0, order)), dtype=np.int64)).reshape(-1, order)
        return (base.T.unsqueeze(1) + offsets).reshape(order, -1)

    return build_graph(flat, types, cell, batch, cutoff, [topology] * n_frames,
                       repeat(bonds, 2), repeat(angles, 3), repeat(dihedrals, 4))


class VerletList:
    """Neighbour lists reused across MD steps: built with ``cutoff + skin``, rebuilt once a bead moved ``skin/2``.

    Pair shifts stay valid between rebuilds because beads are not re-wrapped in between; a
    re-wrapped bead jumps by a cell vector, which exceeds ``skin/2`` and so forces a rebuild.
    A changed cell (NPT) also triggers a rebuild. Consumers mask pairs by their own cutoff.
    """

    def __init__(self, cutoff: float, skin: float, topology: TopologyCache) -> None:
        if skin < 0:
            raise ValueError(f"skin must be ≥ 0, got {skin}")
        self.cutoff, self.skin, self.topology = float(cutoff), float(skin), topology
        self._ref_pos: torch.Tensor | None = None
        self._ref_cell: torch.Tensor | None = None
        self._lists: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._skin_used = float(skin)
        self.n_builds = 0

    def needs_rebuild(self, pos: torch.Tensor, cell: torch.Tensor) -> bool:
        """Whether the stored list may miss a pair within ``cutoff`` at these positions and cell."""
        if self._lists is None or self._ref_pos.shape != pos.shape:
            return True
        if not torch.equal(self._ref_cell, cell.detach()):
            return True
        moved = torch.linalg.norm(pos.detach() - self._ref_pos, dim=-1).max()
        return bool(moved > 0.5 * self._skin_used)

    def graph(self, pos: torch.Tensor, bead_type: torch.Tensor, cell: torch.Tensor, bond_index: torch.Tensor | None = None,
              angle_index: torch.Tensor | None = None, dihedral_index: torch.Tensor | None = None) -> CGGraph:
        """The graph of one structure at ``pos`` (N,3) in ``cell`` (3,3), reusing the pair list when allowed."""
        cell = cell.reshape(3, 3)
        if self.needs_rebuild(pos, cell):
            # a cell too small for cutoff + skin gets a thinner skin (more rebuilds), not an error
            self._skin_used = max(0.0, min(self.skin, float(half_width(cell.detach().double())) - self.cutoff - 1e-6))
            pairs, shifts = structure_pairs(pos, cell, self.cutoff + self._skin_used)
            self._lists = (pairs, shifts, self.topology.edge_separation(pairs[0], pairs[1]))
            self._ref_pos, self._ref_cell = pos.detach().clone(), cell.detach().clone()
            self.n_builds += 1
        pairs, shifts, seps = self._lists
        empty = torch.zeros(0, dtype=torch.long, device=pos.device)
        return CGGraph(pos=pos, bead_type=bead_type, cell=cell.reshape(1, 3, 3),
                       batch=torch.zeros(len(pos), dtype=torch.long, device=pos.device),
                       edge_index=pairs, edge_shift=shifts.to(pos.dtype), edge_sep=seps, cutoff=self.cutoff + self._skin_used,
                       bond_index=empty.reshape(2, 0) if bond_index is None else bond_index,
                       angle_index=empty.reshape(3, 0) if angle_index is None else angle_index,
                       dihedral_index=empty.reshape(4, 0) if dihedral_index is None else dihedral_index)
