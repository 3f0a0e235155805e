"""Morse pair prior: U(r) = D[(1 − e^(−α(r−r₀)))² − 1], parameters ``D`` (kcal/mol), ``alpha`` (1/Å), ``r0`` (Å)."""

from __future__ import annotations

import torch

from cgzoo.priors.terms import PairPrior


class Morse(PairPrior):
    """Morse well of depth D at r₀ with width 1/α; zero at large r before smoothing."""

    fields = ("D", "alpha", "r0")

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        depth, alpha, r0 = p.unbind(1)
        return depth * ((1.0 - torch.exp(-alpha * (r - r0))) ** 2 - 1.0)
