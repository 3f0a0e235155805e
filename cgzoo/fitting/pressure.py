"""Pressure-consistent priors: the virial pressure of a prior on fixed frames, the virial constraint of force matching, and
the first-order amplitude of a pressure ramp.

Force-matched pair potentials reproduce the mean forces but not the pressure: the atomistic virial
has intramolecular and many-body parts a pair potential of bead centres cannot carry, so an MS-CG
prior of a liquid sits thousands of bar off at the reference density. Two remedies, chosen in the
fit-prior spec's ``pressure`` block (:mod:`cgzoo.fitting.spec`):

* ``virial`` (Das & Andersen, J. Chem. Phys. 2010, 132, 164106): the mean CG virial over the
  training frames is an exact linear equality constraint on the force-matching coefficients,
  ⟨W(c)⟩/3V = P_target − N·k_BT/V − P_fixed (P_fixed: terms fitted before), solved with a
  Lagrange multiplier on the normal equations (:class:`VirialConstraint`).
* ``ramp`` (the pressure correction of VOTCA's iterative methods): a pair term A·(1 − r/r_c)
  (:class:`~cgzoo.priors.ramp.PressureRamp`) added after the fit, its amplitude A chosen so the
  prior's virial pressure on the reference frames hits the target (:func:`ramp_amplitude`); the
  amplitude that makes the model's own NVT pressure hit it needs MD, in :mod:`cgzoo.refine.pressure`.

Pressures are in bar at the boundary and kcal/(mol·Å³) inside (:data:`~cgzoo.units.BAR_TO_KCAL_MOL_A3`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from cgzoo.forces import energy_derivatives
from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import Prior
from cgzoo.units import BAR_TO_KCAL_MOL_A3, KCAL_MOL_A3_TO_BAR, kT


def volumes(graph: CGGraph) -> torch.Tensor:
    """Cell volume (Å³) of each structure of ``graph``."""
    return torch.abs(torch.linalg.det(graph.cell))


def kinetic_pressure_tensor(graph: CGGraph, temperature: float) -> torch.Tensor:
    """Ideal-gas pressure N·k_BT/V (kcal/(mol·Å³)) of each structure, N its bead count."""
    counts = torch.bincount(graph.batch, minlength=graph.n_structures).to(graph.cell.dtype)
    return counts * kT(temperature) / volumes(graph)


def stress_pressure(stress: torch.Tensor) -> torch.Tensor:
    """Virial pressure −tr(σ)/3 (kcal/(mol·Å³)) of each structure's (B, 3, 3) stress σ, differentiable."""
    return -torch.diagonal(stress, dim1=-2, dim2=-1).sum(-1) / 3.0


def kinetic_pressure(graph: CGGraph, temperature: float) -> np.ndarray:
    """:func:`kinetic_pressure_tensor` as numpy."""
    return kinetic_pressure_tensor(graph, temperature).detach().cpu().numpy()


def virial_pressure(prior: Prior, graph: CGGraph) -> np.ndarray:
    """Virial part W/3V = −tr(σ)/3 (kcal/(mol·Å³)) of ``prior``'s pressure in each structure, σ its stress by autograd."""
    return stress_pressure(energy_derivatives(prior, graph, forces=False, stress=True)["stress"]).detach().cpu().numpy()


def frame_pressures_bar(prior: Prior, graphs: Iterable[CGGraph], temperature: float | None) -> np.ndarray:
    """Pressure (bar) of ``prior`` in each frame: virial part plus N·k_BT/V, or the virial part alone if ``temperature`` is None."""
    values = []
    for graph in graphs:
        p = virial_pressure(prior, graph)
        values.append(p if temperature is None else p + kinetic_pressure(graph, temperature))
    return np.concatenate(values) * KCAL_MOL_A3_TO_BAR if values else np.zeros(0)


@dataclass
class VirialConstraint:
    """The Das–Andersen constraint of one force-matching fit: its terms' mean virial pressure must supply what the target leaves.

    ``fixed``: the terms fitted before (their virial counts towards the target); ``temperature`` in K
    gives the kinetic part N·k_BT/V with N the CG bead count.
    """

    target_bar: float
    temperature: float
    fixed: Prior | None = None

    def required(self, graph: CGGraph) -> float:
        """The virial pressure (kcal/(mol·Å³)) the fitted terms must give in this frame for its pressure to be the target."""
        rest = kinetic_pressure(graph, self.temperature)
        if self.fixed is not None:
            rest = rest + virial_pressure(self.fixed, graph)
        return float(self.target_bar * BAR_TO_KCAL_MOL_A3 - rest.sum())


def solve_constrained(a: np.ndarray, b: np.ndarray, g: np.ndarray, h: float) -> np.ndarray:
    """argmin ½cᵀac − bᵀc subject to g·c = h: the KKT system [[a, g], [gᵀ, 0]] [c, λ] = [b, h] (g rescaled to a's size)."""
    scale = float(np.sqrt(np.mean(np.diag(a)))) / float(np.linalg.norm(g))
    n = len(b)
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = a
    kkt[:n, n] = kkt[n, :n] = g * scale
    rhs = np.append(b, h * scale)
    return np.linalg.solve(kkt, rhs)[:n]


def ramp_amplitude(prior: Prior, unit_ramp: Prior, graphs: Callable[[], Iterable[CGGraph]], target_bar: float,
                   temperature: float) -> float:
    """Amplitude A (kcal/mol) of a ramp term whose virial brings ``prior``'s mean pressure on the frames ``graphs()`` to ``target_bar``.

    The ramp's virial is linear in A, so A = (P_target − ⟨P_prior⟩) / ⟨P_ramp(A = 1)⟩ exactly on these frames.
    """
    now = float(frame_pressures_bar(prior, graphs(), temperature).mean())
    per_unit = float(frame_pressures_bar(unit_ramp, graphs(), None).mean())
    if per_unit == 0.0:
        raise ValueError("the pressure ramp has no pairs within its cutoff in the frames")
    return (target_bar - now) / per_unit
