"""Shared machinery of non-bonded pair priors and bonded (bond/angle/dihedral) priors.

A concrete prior only writes its energy formula: :class:`PairPrior` subclasses implement
``pair_energy(r, params)``, bonded ones ``term_energy(q, params)`` of their internal coordinate.
Cutoff smoothing, intramolecular exclusions, type lookup and batching live here once.
"""

from __future__ import annotations

from typing import Any

import torch

from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import Prior, TypeTable, bond_angles, bond_lengths, dihedral_angles, scatter_energy, switching

#: How a pair energy is brought to zero at the cutoff.
SMOOTHING = ("none", "shift", "force_shift", "switch")


def pair_mask(graph: CGGraph, r: torch.Tensor, cutoff: float, exclude: int, intramolecular: bool) -> torch.Tensor:
    """Edges within ``cutoff`` that are not excluded by bond separation (see :class:`PairPrior`)."""
    sep = graph.edge_sep
    allowed = ((sep == 0) | (sep > exclude)) if intramolecular else (sep == 0)
    return allowed & (r < cutoff)


def internal_coordinate(graph: CGGraph, index: torch.Tensor) -> torch.Tensor:
    """Bond length (Å), angle or dihedral (radians) of each term in ``index`` (2, 3 or 4 rows)."""
    return {2: bond_lengths, 3: bond_angles, 4: dihedral_angles}[len(index)](graph, index)


def term_index(graph: CGGraph, order: int) -> torch.Tensor:
    """The graph's index list of bonded terms with ``order`` beads."""
    return {2: graph.bond_index, 3: graph.angle_index, 4: graph.dihedral_index}[order]


class PairPrior(Prior):
    """A non-bonded pair potential per bead-type pair, with cutoff smoothing and exclusions.

    ``smoothing``: ``none`` (truncated), ``shift`` (energy shifted to 0 at the cutoff; force
    jumps), ``force_shift`` (energy and force both 0 at the cutoff) or ``switch`` (C² quintic
    switch from ``r_switch`` to the cutoff; default ``r_switch`` = cutoff − 1 Å).
    ``exclude``: intramolecular pairs up to this CG bond separation are skipped (0 none, 1 1-2,
    2 up to 1-3, 3 up to 1-4, as LAMMPS ``special_bonds lj 0 0 0``); ``intramolecular=False``
    skips every pair inside a molecule.
    """

    fields: tuple[str, ...] = ()

    def __init__(
        self,
        type_names: list[str],
        params: dict[str, dict[str, float]],
        cutoff: float = 10.0,
        default: dict[str, float] | None = None,
        smoothing: str = "switch",
        r_switch: float | None = None,
        exclude: int = 3,
        intramolecular: bool = True,
    ) -> None:
        super().__init__(type_names)
        if smoothing not in SMOOTHING:
            raise ValueError(f"{type(self).__name__}: smoothing must be one of {SMOOTHING}, got {smoothing!r}")
        self.table = TypeTable(type_names, 2, self.fields, params, default, owner=type(self).__name__)
        self.cutoff = float(cutoff)
        self.smoothing = smoothing
        self.r_switch = float(max(0.0, self.cutoff - 1.0) if r_switch is None else r_switch)
        if not self.cutoff > 0:
            raise ValueError(f"{type(self).__name__}: cutoff must be positive, got {cutoff}")
        if smoothing == "switch" and not 0 <= self.r_switch < self.cutoff:
            raise ValueError(f"{type(self).__name__}: r_switch must lie in [0, cutoff = {self.cutoff}), got {self.r_switch}")
        self.exclude = int(exclude)
        self.intramolecular = bool(intramolecular)

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Energy (kcal/mol) of pairs at distances ``r`` (E,) with parameters ``p`` (E, n_fields)."""
        raise NotImplementedError

    def pair_mask(self, graph: CGGraph, r: torch.Tensor) -> torch.Tensor:
        """Edges this prior acts on: within the cutoff and not excluded."""
        return pair_mask(graph, r, self.cutoff, self.exclude, self.intramolecular)

    def smoothed_energy(self, r: torch.Tensor, type_i: torch.Tensor, type_j: torch.Tensor) -> torch.Tensor:
        """``pair_energy`` of pairs at distances ``r`` with bead types ``type_i``, ``type_j`` (E,), smoothed as configured."""
        energy = self.pair_energy(r, self.table([type_i, type_j]).to(r.dtype))
        if self.smoothing == "switch":
            return energy * switching(r, self.r_switch, self.cutoff)
        if self.smoothing == "none":
            return energy
        e_rc, de_rc = (values[type_i, type_j] for values in self.cutoff_values(r.dtype))
        if self.smoothing == "shift":
            return energy - e_rc
        return energy - e_rc - (r - self.cutoff) * de_rc

    def cutoff_values(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """U(r_c) and dU/dr(r_c) per type pair (n_types, n_types); zero for pairs without parameters.

        One derivative per type pair with parameters, not per neighbour pair: cheaper, and an autograd
        call of a fixed size, which a trace (:mod:`cgzoo.models.export`) records for any number of pairs.
        """
        n = len(self.type_names)
        rows = self.table.values.reshape(n * n, -1).to(dtype)
        defined = self.table.defined.reshape(-1).nonzero().squeeze(1)
        with torch.enable_grad():
            rc = torch.full(defined.shape, self.cutoff, dtype=dtype, device=rows.device).requires_grad_(True)
            e_rc = self.pair_energy(rc, rows[defined])
            (de_rc,) = torch.autograd.grad(e_rc.sum(), rc, create_graph=True)
        return tuple(rows.new_zeros(n * n).index_copy(0, defined, v).reshape(n, n) for v in (e_rc, de_rc))

    def forward(self, graph: CGGraph) -> torch.Tensor:
        vectors = graph.edge_vectors()
        r = torch.linalg.norm(vectors, dim=-1)
        mask = self.pair_mask(graph, r)
        i, j = graph.edge_index[:, mask]
        energy = self.smoothed_energy(r[mask], graph.bead_type[i], graph.bead_type[j])
        return scatter_energy(energy, graph.batch[i], graph.n_structures)

    def config(self) -> dict[str, Any]:
        return {
            "type_names": self.type_names,
            "params": self.table.as_dict(),
            "cutoff": self.cutoff,
            "smoothing": self.smoothing,
            "r_switch": self.r_switch,
            "exclude": self.exclude,
            "intramolecular": self.intramolecular,
        }


class BondedPrior(Prior):
    """A potential of one internal coordinate (bond length, angle or dihedral) per bonded type tuple."""

    fields: tuple[str, ...] = ()
    #: number of beads per term: 2 bonds, 3 angles, 4 dihedrals
    order: int = 2

    def __init__(self, type_names: list[str], params: dict[str, dict[str, float]],
                 default: dict[str, float] | None = None) -> None:
        super().__init__(type_names)
        self.table = TypeTable(type_names, self.order, self.fields, params, default, owner=type(self).__name__)

    def term_energy(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Energy (kcal/mol) of terms at coordinates ``q`` (M,) with parameters ``p`` (M, n_fields)."""
        raise NotImplementedError

    def forward(self, graph: CGGraph) -> torch.Tensor:
        index = term_index(graph, self.order)
        if index.shape[1] == 0:
            return graph.pos.new_zeros(graph.n_structures) + 0.0 * graph.pos.sum()
        q = internal_coordinate(graph, index)
        p = self.table([graph.bead_type[k] for k in index]).to(q.dtype)
        return scatter_energy(self.term_energy(q, p), graph.batch[index[0]], graph.n_structures)

    def config(self) -> dict[str, Any]:
        return {"type_names": self.type_names, "params": self.table.as_dict()}
