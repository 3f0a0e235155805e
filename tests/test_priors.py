"""The shared prior suite (:mod:`cgzoo.testing`) on every registered prior, and checks of particular families."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cgzoo.priors import PRIORS, build_prior, prior_spec
from cgzoo.testing import check_prior
from cgzoo.testing.cases import prior_cases, smooth_prior_cases
from cgzoo.testing.priors import energy_and_forces
from cgzoo.testing.suite import PriorSuite
from cgzoo.testing.systems import TYPES, chain_system, graph_of

CASES = prior_cases()
CUTOFF = 6.5


class TestRegisteredPriors(PriorSuite):
    cases = CASES
    smooth_cases = smooth_prior_cases()
    required = PRIORS
    cases_home = "prior_cases() in cgzoo/testing/cases.py"


@pytest.fixture(scope="module")
def system():
    return chain_system()


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


def test_check_prior_on_a_user_plugin_prior(monkeypatch):
    """Plain-Python use of the shared suite on a user's prior class, enabled as a plugin."""
    monkeypatch.setenv("CGZOO_PLUGINS", "user_prior")
    check_prior({"class_path": "user_prior.GaussianPairBump", "init_args": {"type_names": TYPES, "height": 2.0}})
    yukawa = {"type_names": TYPES, "cutoff": 6.0, "smoothing": "force_shift", "default": {"A": 20.0, "kappa": 0.5},
              "params": {"A-B": {"A": -10.0, "kappa": 0.5}}}
    check_prior({"class_path": "user_prior.Yukawa", "init_args": yukawa}, smooth_at_cutoff=True)


def test_a_required_prior_without_a_case_fails_the_suite():
    class Incomplete(PriorSuite):
        cases = CASES
        required = (*PRIORS, "new_prior")
        cases_home = "prior_cases() in cgzoo/testing/cases.py"

    with pytest.raises(AssertionError, match=r"'new_prior'\]: add .* to prior_cases\(\) in cgzoo/testing/cases.py"):
        Incomplete().test_every_required_prior_has_a_case()
