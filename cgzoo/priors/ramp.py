"""The pressure ramp: a linear pair potential A·(1 − r/r_c) that shifts a prior's pressure and barely its structure.

Its force A/r_c is the same at every distance below the cutoff, so it adds a virial
A·Σ r/r_c proportional to A while leaving the shape of short-range forces alone; negative A
(attraction) lowers the pressure. This is the correction VOTCA's iterative methods and
pressure-corrected IBI add (Reith, Pütz & Müller-Plathe, J. Comput. Chem. 2003, 24, 1624).
:mod:`cgzoo.fitting.pressure` and :mod:`cgzoo.refine.pressure` choose A; the energy is zero at
the cutoff by construction, so the default smoothing is ``none`` (the force steps to zero there).
"""

from __future__ import annotations

import torch

from cgzoo.priors.terms import PairPrior


class PressureRamp(PairPrior):
    """U(r) = A·(1 − r/r_c) for r < r_c (``amplitude`` A in kcal/mol, r_c the ``cutoff``)."""

    fields = ("amplitude",)

    def __init__(self, type_names: list[str], params: dict[str, dict[str, float]], cutoff: float = 10.0,
                 default: dict[str, float] | None = None, smoothing: str = "none", **kwargs) -> None:
        super().__init__(type_names, params, cutoff=cutoff, default=default, smoothing=smoothing, **kwargs)

    def pair_energy(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return p[:, 0] * (1.0 - r / self.cutoff)
