"""Periodic (Fourier) dihedral prior: U(φ) = Σₙ kₙ[1 + cos(nφ − δₙ)], n = 1…N.

Parameters per dihedral type: ``k`` (list of kₙ, kcal/mol) and optional ``phase`` (list of δₙ,
degrees, default 0). φ follows the IUPAC convention (0 = cis, ±180° = trans).
"""

from __future__ import annotations

from typing import Any

import torch

from cgzoo.priors.terms import BondedPrior


class FourierDihedral(BondedPrior):
    """Sum of cosine harmonics of the dihedral angle, as CHARMM/GROMACS ``periodic`` dihedrals."""

    order = 4

    def __init__(self, type_names: list[str], params: dict[str, dict[str, Any]], multiplicity: int | None = None) -> None:
        n = multiplicity or max(len(v["k"]) for v in params.values())
        self.multiplicity = int(n)
        self.fields = tuple(f"k{i}" for i in range(1, n + 1)) + tuple(f"phase{i}" for i in range(1, n + 1))
        flat = {}
        for key, v in params.items():
            ks = list(v["k"]) + [0.0] * (n - len(v["k"]))
            phases = list(v.get("phase", [])) + [0.0] * (n - len(v.get("phase", [])))
            if len(ks) != n or len(phases) != n:
                raise ValueError(f"FourierDihedral: {key} has more than {n} terms")
            flat[key] = dict(zip(self.fields, ks + phases))
        super().__init__(type_names, flat)

    def term_energy(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        n = self.multiplicity
        mult = torch.arange(1, n + 1, dtype=q.dtype, device=q.device)
        k, phase = p[:, :n], torch.deg2rad(p[:, n:])
        return (k * (1.0 + torch.cos(q[:, None] * mult - phase))).sum(-1)

    def config(self) -> dict[str, Any]:
        n = self.multiplicity
        params = {key: {"k": [row[f"k{i}"] for i in range(1, n + 1)], "phase": [row[f"phase{i}"] for i in range(1, n + 1)]}
                  for key, row in self.table.as_dict().items()}
        return {"type_names": self.type_names, "params": params, "multiplicity": n}
