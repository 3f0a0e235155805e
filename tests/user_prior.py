"""User-defined priors living outside cgzoo, loaded by import path in the tests (as a user's would be); Yukawa is docs/extending.md's example."""

from __future__ import annotations

import torch

from cgzoo.neighbors import CGGraph
from cgzoo.priors import Prior
from cgzoo.priors.base import scatter_energy
from cgzoo.priors.terms import PairPrior


class GaussianPairBump(Prior):
    """A soft Gaussian repulsion h·exp(−r²/2w²) between all non-bonded-excluded pairs within ``cutoff``."""

    def __init__(self, type_names: list[str], height: float = 1.0, width: float = 1.5, cutoff: float = 6.0) -> None:
        super().__init__(type_names)
        self.height, self.width, self.cutoff = float(height), float(width), float(cutoff)

    def forward(self, graph: CGGraph) -> torch.Tensor:
        r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
        mask = (r < self.cutoff) & (graph.edge_sep == 0)
        e = self.height * (torch.exp(-r[mask] ** 2 / (2 * self.width**2)) - torch.exp(torch.tensor(-self.cutoff**2 / (2 * self.width**2))))
        return scatter_energy(e, graph.batch[graph.edge_index[0, mask]], graph.n_structures)

    def config(self) -> dict:
        return {"type_names": self.type_names, "height": self.height, "width": self.width, "cutoff": self.cutoff}


class Yukawa(PairPrior):
    """Screened electrostatics U(r) = A·exp(−κr)/r per type pair, with PairPrior's cutoff smoothing and exclusions."""

    fields = ("A", "kappa")

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        amplitude, kappa = p.unbind(1)
        return amplitude * torch.exp(-kappa * r) / r
