"""Harmonic bonded priors: bond ½k(r−r₀)², angle ½k(θ−θ₀)² and cosine-harmonic angle ½k(cosθ−cosθ₀)².

Conventions (GROMACS/OpenMM, note the ½ — LAMMPS ``harmonic`` omits it): ``k`` in kcal/mol/Å² for
bonds and kcal/mol/rad² for angles (kcal/mol for the cosine form); ``r0`` in Å, ``theta0`` in
**degrees**. :meth:`HarmonicBond.from_moments` and friends give the Boltzmann-inversion estimate
of a harmonic term from a sampled distribution.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cgzoo.priors.terms import BondedPrior
from cgzoo.units import kT


class HarmonicBond(BondedPrior):
    """U(r) = ½k(r − r₀)² per bond type."""

    fields = ("k", "r0")
    order = 2

    def term_energy(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return 0.5 * p[:, 0] * (q - p[:, 1]) ** 2

    @staticmethod
    def moments_to_params(samples: np.ndarray, temperature: float) -> dict[str, float]:
        """Harmonic Boltzmann inversion of sampled bond lengths: r₀ = mean, k = k_BT / variance."""
        var = float(np.var(samples))
        if not var > 0:
            raise ValueError("bond length distribution has zero width; cannot fit a harmonic bond")
        return {"k": kT(temperature) / var, "r0": float(np.mean(samples))}


class HarmonicAngle(BondedPrior):
    """U(θ) = ½k(θ − θ₀)² per angle type; θ₀ given in degrees."""

    fields = ("k", "theta0")
    order = 3

    def term_energy(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return 0.5 * p[:, 0] * (q - torch.deg2rad(p[:, 1])) ** 2

    @staticmethod
    def moments_to_params(samples: np.ndarray, temperature: float) -> dict[str, float]:
        """Harmonic Boltzmann inversion of sampled angles (radians): θ₀ = mean, k = k_BT / variance."""
        var = float(np.var(samples))
        if not var > 0:
            raise ValueError("angle distribution has zero width; cannot fit a harmonic angle")
        return {"k": kT(temperature) / var, "theta0": math.degrees(float(np.mean(samples)))}


class CosineHarmonicAngle(BondedPrior):
    """U(θ) = ½k(cos θ − cos θ₀)² per angle type (GROMACS angle type 2); θ₀ in degrees."""

    fields = ("k", "theta0")
    order = 3

    def term_energy(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return 0.5 * p[:, 0] * (torch.cos(q) - torch.cos(torch.deg2rad(p[:, 1]))) ** 2
