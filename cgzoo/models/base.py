"""The Δ-model: ``CGModel(prior, net, mode)`` with E = E_prior + E_net, forces −∇E and stress by strain derivative.

A *network* is any :class:`Network`: a torch module mapping a :class:`~cgzoo.neighbors.CGGraph`
(half neighbour list within its cutoff, bead types, cells) to one energy per structure, in
units of the model's energy scale. ``CGModel`` adds the per-type energy shift and the scale,
so networks see O(1) numbers and configs need no unit fiddling; it never knows how it is
trained or driven (no Lightning, no ASE here).

Modes: ``delta`` (prior + network), ``ml_only`` (network alone), ``prior_only`` (prior alone).
Outputs are kcal/mol (energy), kcal/mol/Å (forces) and kcal/mol/Å³ (stress, the ASE sign
convention: σ = (1/V) ∂E/∂ε, positive under tension).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from cgzoo.forces import energy_derivatives
from cgzoo.neighbors import MAX_SEPARATION, CGGraph
from cgzoo.priors.base import NoPrior, Prior

MODES = ("delta", "ml_only", "prior_only")


class Network(torch.nn.Module):
    """Base of every architecture: ``forward(graph) -> (n_structures,)`` dimensionless energies.

    Subclasses take ``type_names`` and ``cutoff`` plus their own hyper-parameters and return all
    of them from :meth:`config` so a checkpoint can rebuild them. Every built-in network also takes
    ``bond_aware``: when True each pair's bond separation (:func:`separation_one_hot`) is part of
    its edge features, so an ML-only model can tell a bond from a non-bonded contact; it defaults
    to False, which is what a checkpoint saved before the argument existed means.
    """

    def __init__(self, type_names: list[str], cutoff: float) -> None:
        super().__init__()
        if not (math.isfinite(cutoff) and cutoff > 0):  # a network that sees no neighbours learns nothing
            raise ValueError(f"cutoff must be a positive number of Å, got {cutoff}")
        self.type_names = list(type_names)
        self.cutoff = float(cutoff)

    def forward(self, graph: CGGraph) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


#: the edge classes a bond-aware network tells apart, in one-hot order: ``edge_sep`` 0, 1, 2, 3 and FAR
SEPARATION_CLASSES = ("intermolecular", "1-2", "1-3", "1-4", "further intramolecular")


def separation_one_hot(edge_sep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(E,) bond separations (``CGGraph.edge_sep``) → (E, 5) one-hot over :data:`SEPARATION_CLASSES`.

    A separation is a fixed label of each pair, not a function of positions, so energies built on
    it stay as smooth in the positions as the distance features they are combined with.
    """
    return torch.nn.functional.one_hot(edge_sep.clamp(max=MAX_SEPARATION + 1), len(SEPARATION_CLASSES)).to(dtype)


class Edges(NamedTuple):
    """Directed edges of a graph within a cutoff: (2,E) index, (E,3) vectors r_j − r_i, (E,) lengths, (E,) ``edge_sep``."""

    index: torch.Tensor
    vectors: torch.Tensor
    lengths: torch.Tensor
    sep: torch.Tensor


def full_edges(graph: CGGraph, cutoff: float) -> Edges:
    """Directed edges (both i→j and j→i) within ``cutoff``, each with its pair's bond separation.

    Message-passing networks aggregate over incoming edges; the graph stores each pair once.
    """
    vec = graph.edge_vectors()
    length = torch.linalg.norm(vec, dim=-1)
    keep = length < cutoff
    i, j = graph.edge_index[:, keep]
    vec, length, sep = vec[keep], length[keep], graph.edge_sep[keep]
    index = torch.cat([torch.stack([i, j]), torch.stack([j, i])], dim=1)
    return Edges(index, torch.cat([vec, -vec]), torch.cat([length, length]), torch.cat([sep, sep]))


class CGModel(torch.nn.Module):
    """E = E_prior + scale · (E_net + Σ_beads shift[type]) in ``delta`` mode; see module docstring."""

    def __init__(
        self,
        prior: Prior | None,
        net: Network | None,
        mode: str = "delta",
        energy_scale: float = 1.0,
        type_shift: list[float] | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != "prior_only" and net is None:
            raise ValueError(f"mode {mode!r} needs a network")
        self.mode = mode
        self.prior = prior if (prior is not None and mode != "ml_only") else NoPrior()
        self.net = net if mode != "prior_only" else None
        types = (net.type_names if net is not None else None) or self.prior.type_names
        self.type_names = list(types)
        self.register_buffer("energy_scale", torch.tensor(float(energy_scale), dtype=torch.float64))
        shift = torch.zeros(len(self.type_names), dtype=torch.float64) if type_shift is None else torch.tensor(type_shift)
        self.register_buffer("type_shift", shift.to(torch.float64))

    @property
    def cutoff(self) -> float:
        """Neighbour-list cutoff the model needs (the larger of prior and network)."""
        return max(self.prior.cutoff, self.net.cutoff if self.net is not None else 0.0)

    def energy(self, graph: CGGraph) -> torch.Tensor:
        """Total energy per structure (kcal/mol)."""
        energy = self.prior(graph)
        if self.net is not None:
            scale = self.energy_scale.to(graph.pos.dtype)
            shift = self.type_shift.to(graph.pos.dtype)[graph.bead_type]
            per_structure_shift = torch.zeros_like(energy).index_add(0, graph.batch, shift)
            energy = energy + scale * (self.net(graph) + per_structure_shift)
        return energy

    def forward(self, graph: CGGraph, forces: bool = True, stress: bool = False) -> dict[str, torch.Tensor]:
        """Energy, and optionally forces (−∇E) and stress (strain derivative / volume), differentiable for training."""
        return energy_derivatives(self.energy, graph, forces, stress, create_graph=self.training)
