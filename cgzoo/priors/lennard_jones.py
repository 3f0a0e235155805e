"""Power-law pair priors: Lennard-Jones 12-6, Mie n-m, soft repulsion (σ/r)^n and WCA.

Parameters per type pair: ``sigma`` (Å), ``epsilon`` (kcal/mol), and for Mie the exponents
``n`` > ``m``, for soft repulsion ``n``. All share :class:`~cgzoo.priors.terms.PairPrior`'s
cutoff smoothing and exclusions.
"""

from __future__ import annotations

import torch

from cgzoo.priors.terms import PairPrior


class LennardJones(PairPrior):
    """U(r) = 4ε[(σ/r)¹² − (σ/r)⁶]."""

    fields = ("sigma", "epsilon")

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        s6 = (p[:, 0] / r) ** 6
        return 4.0 * p[:, 1] * (s6 * s6 - s6)


class Mie(PairPrior):
    """U(r) = C ε[(σ/r)ⁿ − (σ/r)ᵐ] with C = n/(n−m)·(n/m)^(m/(n−m)) so the well depth is ε."""

    fields = ("sigma", "epsilon", "n", "m")

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        sigma, eps, n, m = p.unbind(1)
        c = n / (n - m) * (n / m) ** (m / (n - m))
        x = sigma / r
        return c * eps * (x**n - x**m)


class SoftRepulsion(PairPrior):
    """U(r) = ε (σ/r)ⁿ: a purely repulsive core, the usual minimal prior under a network."""

    fields = ("sigma", "epsilon", "n")

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return p[:, 1] * (p[:, 0] / r) ** p[:, 2]


class WCA(PairPrior):
    """Weeks–Chandler–Andersen: LJ cut at its minimum 2^(1/6)σ and shifted up by ε (smooth there by construction).

    Its ``cutoff`` only bounds the neighbour list; each pair's own range is 2^(1/6)σ, so the
    default ``smoothing`` is ``none``.
    """

    fields = ("sigma", "epsilon")

    def __init__(self, type_names: list[str], params: dict[str, dict[str, float]], cutoff: float | None = None,
                 default: dict[str, float] | None = None, smoothing: str = "none", **kwargs) -> None:
        sigmas = [float(v["sigma"]) for v in params.values()] + ([float(default["sigma"])] if default else [])
        reach = 2.0 ** (1.0 / 6.0) * max(sigmas)
        super().__init__(type_names, params, cutoff=reach if cutoff is None else cutoff, default=default,
                         smoothing=smoothing, **kwargs)

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        sigma, eps = p.unbind(1)
        s6 = (sigma / r) ** 6
        inside = r < 2.0 ** (1.0 / 6.0) * sigma
        return torch.where(inside, 4.0 * eps * (s6 * s6 - s6) + eps, torch.zeros_like(r))
