"""Shared prior suite: every registered prior gets the same physics checks (forces, invariances, batching)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cgzoo.priors import PRIORS, build_prior, prior_spec
from prior_cases import TYPES, chain_system, graph_of, prior_cases

CASES = prior_cases()
CUTOFF = 6.5


def energy_and_forces(prior, system, **kw):
    graph = graph_of(system, CUTOFF, **kw)
    energy = prior(graph)
    (grad,) = torch.autograd.grad(energy.sum(), graph.pos, allow_unused=True)
    forces = torch.zeros_like(graph.pos) if grad is None else -grad
    return energy.detach(), forces


def test_every_registered_prior_is_in_the_suite():
    covered = {case["class_path"] for case in CASES.values()}
    assert set(PRIORS) <= covered, f"add a case to tests/prior_cases.py for {set(PRIORS) - covered}"


@pytest.fixture(params=sorted(CASES), scope="module")
def prior(request):
    return build_prior(CASES[request.param]).double()


@pytest.fixture(scope="module")
def system():
    return chain_system()


def test_energy_finite_and_batched(prior, system):
    both, _ = energy_and_forces(prior, system)
    assert both.shape == (2,) and torch.isfinite(both).all()
    for f in range(2):
        single, _ = energy_and_forces(prior, system, frames=slice(f, f + 1))
        torch.testing.assert_close(single[0], both[f], rtol=1e-10, atol=1e-10)


def test_forces_are_minus_gradient_finite_difference(prior, system):
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
            fd = -(shifted[0] - shifted[1]) / (2 * h)
            assert fd == pytest.approx(float(forces[bead, dim]), rel=1e-5, abs=1e-6)


def test_periodic_image_translation_and_rotation_invariance(prior, system):
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


def test_triclinic_cell_and_float32(prior):
    tri = chain_system(triclinic=True)
    e64, f64 = energy_and_forces(prior, tri)
    p32 = build_prior(prior_spec(prior)).float()
    e32, f32 = energy_and_forces(p32, tri, dtype=torch.float32)
    assert e32.dtype == torch.float32
    torch.testing.assert_close(e32.double(), e64, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(f32.double(), f64, rtol=1e-3, atol=1e-3)


def test_config_round_trip(prior, system):
    rebuilt = build_prior(prior_spec(prior)).double()
    a, _ = energy_and_forces(prior, system)
    b, _ = energy_and_forces(rebuilt, system)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["lennard_jones", "mie", "morse", "tabulated"])
def test_pair_energy_and_force_continuous_at_cutoff(name):
    spec = CASES[name]
    if name == "lennard_jones":
        spec = {**spec, "init_args": {**spec["init_args"], "smoothing": "switch", "r_switch": 5.0}}
    prior = build_prior(spec).double()
    rc = prior.cutoff
    system = {"positions": np.array([[[0, 0, 0], [rc - 1e-6, 0, 0]], [[0, 0, 0], [rc + 1e-6, 0, 0]]], dtype=float),
              "boxes": np.tile(np.eye(3) * 20.0, (2, 1, 1)), "bead_types": np.array([0, 1]),
              "bonds": np.zeros((0, 2), int), "angles": np.zeros((0, 3), int), "dihedrals": np.zeros((0, 4), int),
              "molecule_ids": np.array([0, 1])}
    graph = graph_of(system, rc + 0.5)
    energy = prior(graph)
    (grad,) = torch.autograd.grad(energy.sum(), graph.pos)
    energy = energy.detach()
    assert abs(float(energy[0] - energy[1])) < 1e-5
    assert abs(float(grad[:2].norm() - grad[2:].norm())) < 1e-4


def test_exclusions_skip_bonded_neighbours():
    lj = build_prior(CASES["lennard_jones"]).double()
    one = chain_system(n_mol=1, box=30.0, n_frames=1)
    assert float(lj(graph_of(one, CUTOFF))[0].detach()) == 0.0  # 4-bead chain: every pair within 1-4
    spec = CASES["lennard_jones"]
    keep = build_prior({**spec, "init_args": {**spec["init_args"], "exclude": 1}}).double()
    assert float(keep(graph_of(one, CUTOFF))[0].detach()) != 0.0


def test_tabulated_pair_extrapolation_is_repulsive_and_finite():
    prior = build_prior(CASES["tabulated"]).double()
    r = np.array([1e-4, 0.5, 1.5, 2.49, 2.5, 4.0, 5.999, 6.0, 9.0])
    energy, force = prior.evaluate("A-B", r)
    assert np.isfinite(energy).all() and np.isfinite(force).all()
    assert np.all(force[1:4] > 0) and np.all(np.diff(energy[:4]) < 0)
    assert energy[-1] == 0.0 and energy[-2] == 0.0 and force[-1] == 0.0


def test_dihedral_sign_matches_mdanalysis():
    from MDAnalysis.lib.distances import calc_dihedrals

    from cgzoo.priors.base import dihedral_angles

    system = chain_system(n_mol=6, n_frames=1)
    graph = graph_of(system, CUTOFF, requires_grad=False)
    ours = dihedral_angles(graph, graph.dihedral_index).numpy()
    p = system["positions"][0]
    d = system["dihedrals"]
    theirs = calc_dihedrals(p[d[:, 0]], p[d[:, 1]], p[d[:, 2]], p[d[:, 3]], box=None)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_missing_parameters_named():
    spec = CASES["harmonic_bond"]
    prior = build_prior({**spec, "init_args": {**spec["init_args"], "params": {"A-B": {"k": 1.0, "r0": 3.8}}}})
    with pytest.raises(ValueError, match="no parameters for type tuple B-B"):
        prior.double()(graph_of(chain_system(), CUTOFF))


def test_user_prior_by_import_path_alone_and_in_a_sum(system, monkeypatch):
    monkeypatch.setenv("CGZOO_PLUGINS", "user_prior")  # a user's prior module loads only when enabled
    spec = {"class_path": "user_prior.GaussianPairBump", "init_args": {"height": 2.0}}
    user = build_prior(spec, type_names=TYPES).double()
    assert user.type_names == TYPES
    e_user, f_user = energy_and_forces(user, system)
    assert torch.all(e_user > 0) and torch.isfinite(f_user).all()
    total = build_prior([spec, CASES["harmonic_bond"]], type_names=TYPES).double()
    e_sum, _ = energy_and_forces(total, system)
    e_bond, _ = energy_and_forces(build_prior(CASES["harmonic_bond"]).double(), system)
    torch.testing.assert_close(e_sum, e_user + e_bond)
    rebuilt = build_prior(prior_spec(total)).double()
    torch.testing.assert_close(energy_and_forces(rebuilt, system)[0], e_sum)
    with pytest.raises(ValueError, match="cannot import"):
        build_prior({"class_path": "user_prior.Nope"})
    with pytest.raises(ValueError, match="not a subclass"):
        build_prior({"class_path": "user_prior.scatter_energy"})
    assert math.isfinite(float(e_user[0]))
