"""The shared prior suite as plain functions: run it on any prior spec with :func:`check_prior`.

:data:`PRIOR_CHECKS` take a float64 prior (and the chain system of :func:`prior_system`): finite
batched energies, forces equal −∇E (finite differences), invariance to periodic images,
translation and rotation (forces rotate), a triclinic cell in float32 against float64, and a
config round trip. :func:`check_continuous_at_cutoff` is for priors meant to go smoothly to zero
at their cutoff. Every check raises ``AssertionError`` on failure and needs no pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cgzoo.priors import Prior, build_prior, prior_spec
from cgzoo.testing.assertions import assert_approx, run_named
from cgzoo.testing.systems import chain_system, graph_of, two_beads


def prior_system() -> dict:
    """Two frames of six A-B-B-A chains in a 14 Å box: the system every prior check runs on."""
    return chain_system()


def energy_and_forces(prior: Prior, system: dict, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Detached energies and forces (zeros where the energy ignores positions) of ``prior`` on frames of ``system``."""
    graph = graph_of(system, prior.cutoff + 0.5, **kw)
    energy = prior(graph)
    (grad,) = torch.autograd.grad(energy.sum(), graph.pos, allow_unused=True)
    forces = torch.zeros_like(graph.pos) if grad is None else -grad
    return energy.detach(), forces



def check_energy_finite_and_batched(prior: Prior, system: dict) -> None:
    """One finite energy per frame, and a batch gives each frame's energy as evaluated alone."""
    both, _ = energy_and_forces(prior, system)
    assert both.shape == (2,) and torch.isfinite(both).all(), f"energies {both}: expected two finite values"
    for f in range(2):
        single, _ = energy_and_forces(prior, system, frames=slice(f, f + 1))
        torch.testing.assert_close(single[0], both[f], rtol=1e-10, atol=1e-10)


def check_forces_are_minus_gradient(prior: Prior, system: dict) -> None:
    """Forces equal the central finite difference (h = 1e-5 Å, float64) of the energy for 4 beads × 3 directions."""
    _, forces = energy_and_forces(prior, system, frames=slice(0, 1))
    rng = np.random.default_rng(1)
    h = 1e-5
    for bead in rng.choice(system["positions"].shape[1], 4, replace=False):
        for dim in range(3):
            shifted = []
            for sign in (1, -1):
                pos = system["positions"][:1].copy()
                pos[0, bead, dim] += sign * h
                e, _ = energy_and_forces(prior, system, frames=slice(0, 1), positions=pos)
                shifted.append(float(e[0]))
            assert_approx(-(shifted[0] - shifted[1]) / (2 * h), float(forces[bead, dim]), 1e-5, 1e-6,
                   f"force on bead {bead}, axis {dim}")


def check_periodic_image_translation_and_rotation(prior: Prior, system: dict) -> None:
    """Energy and forces are unchanged by moving beads to other periodic images and by a translation; both rotate."""
    ref, ref_f = energy_and_forces(prior, system, frames=slice(0, 1))
    pos = system["positions"][:1].copy()
    box = system["boxes"][0]
    pos[0, ::3] += box[0] - 2 * box[2]  # move some beads to other periodic images
    moved, moved_f = energy_and_forces(prior, system, frames=slice(0, 1), positions=pos)
    torch.testing.assert_close(moved, ref, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(moved_f, ref_f, rtol=1e-8, atol=1e-8)
    shifted, _ = energy_and_forces(prior, system, frames=slice(0, 1), positions=system["positions"][:1] + [1.3, -7.1, 0.4])
    torch.testing.assert_close(shifted, ref, rtol=1e-10, atol=1e-9)
    rot, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))
    rotated, rot_f = energy_and_forces(prior, system, frames=slice(0, 1), positions=system["positions"][:1] @ rot.T,
                                       boxes=system["boxes"][:1] @ rot.T)
    torch.testing.assert_close(rotated, ref, rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(rot_f, ref_f @ torch.as_tensor(rot.T), rtol=1e-7, atol=1e-7)


def check_triclinic_cell_and_float32(prior: Prior, system: dict) -> None:
    """In a triclinic cell, the prior rebuilt in float32 follows the float64 energies and forces."""
    tri = chain_system(triclinic=True)
    e64, f64 = energy_and_forces(prior, tri)
    p32 = build_prior(prior_spec(prior)).float()
    e32, f32 = energy_and_forces(p32, tri, dtype=torch.float32)
    assert e32.dtype == torch.float32, f"float32 input gave {e32.dtype} energies"
    torch.testing.assert_close(e32.double(), e64, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(f32.double(), f64, rtol=1e-3, atol=1e-3)


def check_config_round_trip(prior: Prior, system: dict) -> None:
    """The prior rebuilt from its spec gives the same energies."""
    rebuilt = build_prior(prior_spec(prior)).double()
    a, _ = energy_and_forces(prior, system)
    b, _ = energy_and_forces(rebuilt, system)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


#: checks of a float64 prior on :func:`prior_system`, by name
PRIOR_CHECKS: dict[str, Callable[[Prior, dict], None]] = {
    "energy_finite_and_batched": check_energy_finite_and_batched,
    "forces_are_minus_gradient": check_forces_are_minus_gradient,
    "periodic_image_translation_and_rotation": check_periodic_image_translation_and_rotation,
    "triclinic_cell_and_float32": check_triclinic_cell_and_float32,
    "config_round_trip": check_config_round_trip,
}


def check_continuous_at_cutoff(prior: Prior) -> None:
    """An A-B pair 1e-6 Å inside and outside the cutoff: the same energy (1e-5) and force magnitude (1e-4)."""
    rc = prior.cutoff
    assert rc > 0, "the prior has no cutoff"
    graph = graph_of(two_beads([rc - 1e-6, rc + 1e-6], box=20.0), rc + 0.5)
    energy = prior(graph)
    (grad,) = torch.autograd.grad(energy.sum(), graph.pos)
    energy = energy.detach()
    assert abs(float(energy[0] - energy[1])) < 1e-5, f"energy jumps by {float(energy[0] - energy[1])} at the cutoff {rc} Å"
    assert abs(float(grad[:2].norm() - grad[2:].norm())) < 1e-4, f"force jumps at the cutoff {rc} Å"


def check_prior(spec: dict[str, Any] | Prior, smooth_at_cutoff: bool = False) -> None:
    """Every prior check on ``spec`` (a spec for bead types A and B, or a prior), plus continuity if ``smooth_at_cutoff``."""
    prior = build_prior(spec).double()
    system = prior_system()
    for name, check in PRIOR_CHECKS.items():
        run_named(name, check, prior, system)
    if smooth_at_cutoff:
        check_continuous_at_cutoff(prior)
