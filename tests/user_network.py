"""A user's networks living outside cgzoo, enabled as a plugin in the tests: the example of docs/extending.md and a broken one."""

from __future__ import annotations

import math
from typing import Any

import torch

from cgzoo.models import Network
from cgzoo.neighbors import CGGraph


class GaussianPairNet(Network):
    """E = Σ_pairs f(r) Σ_k w[tᵢ, tⱼ, k] exp(−(r − μₖ)²/2s²): a learned pair potential, f a cosine cutoff (f = f′ = 0 at rc)."""

    def __init__(self, type_names: list[str], cutoff: float, n_gaussians: int = 8) -> None:
        super().__init__(type_names, cutoff)
        self.n_gaussians = n_gaussians
        n = len(type_names)
        self.weights = torch.nn.Parameter(0.1 * torch.randn(n, n, n_gaussians))
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n_gaussians))

    def forward(self, graph: CGGraph) -> torch.Tensor:
        i, j = graph.edge_index
        r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
        weights = (self.weights + self.weights.transpose(0, 1))[graph.bead_type[i], graph.bead_type[j]]  # symmetric in types
        width = self.cutoff / self.n_gaussians
        basis = torch.exp(-0.5 * ((r[:, None] - self.centres) / width) ** 2)
        envelope = torch.where(r < self.cutoff, 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0), 0.0)
        pair = envelope * (weights * basis).sum(-1)
        return graph.pos.new_zeros(graph.n_structures).index_add(0, graph.batch[i], pair)

    def config(self) -> dict[str, Any]:
        return {"type_names": self.type_names, "cutoff": self.cutoff, "n_gaussians": self.n_gaussians}


class AbsolutePositionNet(GaussianPairNet):
    """A broken network: its energy also depends on where the beads are in space, so it is not translation invariant."""

    def forward(self, graph: CGGraph) -> torch.Tensor:
        offset = torch.sin(graph.pos).sum(-1) * self.weights.sum()
        return super().forward(graph) + graph.pos.new_zeros(graph.n_structures).index_add(0, graph.batch, offset)


class PairCountNet(GaussianPairNet):
    """A network no trace can compile: it scales its energy by the pair count read as a Python number, which a trace fixes."""

    def forward(self, graph: CGGraph) -> torch.Tensor:
        return super().forward(graph) * (100.0 / max(int(graph.edge_index.shape[1]), 1))
