"""Shared model suite: every registered network, in every mode, passes the same physics checks.

Forces equal −∇E (finite differences, float64); energy is invariant to translation, rotation,
permutation of identical beads and choice of periodic image; forces rotate with the structure;
a batch equals its structures one by one; stress equals the finite-difference strain derivative;
energy is continuous when a pair crosses the cutoff.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgzoo.models import MODES, NETWORKS
from model_cases import CUTOFF, NETWORK_CASES, make_model
from prior_cases import graph_of, separated_chains

GRAPH_CUTOFF = CUTOFF + 0.5


def test_every_registered_network_has_a_case():
    assert set(NETWORKS) <= set(NETWORK_CASES), f"add {set(NETWORKS) - set(NETWORK_CASES)} to tests/model_cases.py"


CASES = [(name, mode) for name in sorted(NETWORK_CASES) for mode in MODES if not (mode == "prior_only" and name != "pair_mlp")]


@pytest.fixture(params=CASES, ids=[f"{n}-{m}" for n, m in CASES], scope="module")
def model(request):
    return make_model(*request.param).eval()


@pytest.fixture(scope="module")
def system():
    return separated_chains(n_frames=2, seed=5)


def evaluate(model, system, stress=False, **kw):
    graph = graph_of(system, GRAPH_CUTOFF, **kw)
    out = model(graph, forces=True, stress=stress)
    return {k: v.detach() for k, v in out.items()}


def test_forces_are_minus_gradient(model, system):
    out = evaluate(model, system, frames=slice(0, 1))
    rng = np.random.default_rng(0)
    h = 1e-5
    for bead in rng.choice(system["positions"].shape[1], 3, replace=False):
        for dim in range(3):
            e = []
            for sign in (1, -1):
                pos = system["positions"][:1].copy()
                pos[0, bead, dim] += sign * h
                e.append(float(evaluate(model, system, frames=slice(0, 1), positions=pos)["energy"][0]))
            assert -(e[0] - e[1]) / (2 * h) == pytest.approx(float(out["forces"][bead, dim]), rel=1e-5, abs=1e-6)


def test_translation_rotation_and_periodic_images(model, system):
    ref = evaluate(model, system, frames=slice(0, 1))
    moved = evaluate(model, system, frames=slice(0, 1), positions=system["positions"][:1] + [3.1, -7.7, 12.5])
    torch.testing.assert_close(moved["energy"], ref["energy"], rtol=1e-9, atol=1e-9)
    pos = system["positions"][:1].copy()
    pos[0, 1::3] += system["boxes"][0, 0] - system["boxes"][0, 2]
    imaged = evaluate(model, system, frames=slice(0, 1), positions=pos)
    torch.testing.assert_close(imaged["energy"], ref["energy"], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(imaged["forces"], ref["forces"], rtol=1e-7, atol=1e-7)
    rot, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rotated = evaluate(model, system, frames=slice(0, 1), positions=system["positions"][:1] @ rot.T,
                       boxes=system["boxes"][:1] @ rot.T)
    torch.testing.assert_close(rotated["energy"], ref["energy"], rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(rotated["forces"], ref["forces"] @ torch.as_tensor(rot.T), rtol=1e-6, atol=1e-6)


def test_permutation_of_identical_beads(model, system):
    ref = evaluate(model, system, frames=slice(0, 1))
    n = len(system["bead_types"])
    perm = np.random.default_rng(2).permutation(n)
    inverse = np.argsort(perm)
    permuted = dict(system, positions=system["positions"][:, perm], bead_types=system["bead_types"][perm],
                    molecule_ids=system["molecule_ids"][perm], bonds=inverse[system["bonds"]],
                    angles=inverse[system["angles"]], dihedrals=inverse[system["dihedrals"]])
    out = evaluate(model, permuted, frames=slice(0, 1))
    torch.testing.assert_close(out["energy"], ref["energy"], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["forces"], ref["forces"][perm], rtol=1e-7, atol=1e-7)


def test_batch_equals_single_structures(model, system):
    both = evaluate(model, system)
    for f in range(2):
        one = evaluate(model, system, frames=slice(f, f + 1))
        torch.testing.assert_close(one["energy"][0], both["energy"][f], rtol=1e-10, atol=1e-10)
        n = len(system["bead_types"])
        torch.testing.assert_close(one["forces"], both["forces"][f * n:(f + 1) * n], rtol=1e-8, atol=1e-8)


def test_stress_is_strain_derivative(model, system):
    out = evaluate(model, system, stress=True, frames=slice(0, 1))
    volume = abs(np.linalg.det(system["boxes"][0]))
    h = 1e-5
    for a, b in ((0, 0), (1, 2), (2, 1)):
        e = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h
            e.append(float(evaluate(model, system, frames=slice(0, 1), positions=system["positions"][:1] @ strain,
                                    boxes=system["boxes"][:1] @ strain)["energy"][0]))
        assert (e[0] - e[1]) / (2 * h) / volume == pytest.approx(float(out["stress"][0, a, b]), rel=1e-4, abs=1e-8)


def test_energy_continuous_across_cutoff(model):
    def two_beads(r):
        return {"positions": np.array([[[0.0, 0.0, 0.0], [r, 0.0, 0.0]]]), "boxes": np.eye(3)[None] * 30.0,
                "bead_types": np.array([0, 1]), "bonds": np.zeros((0, 2), int), "angles": np.zeros((0, 3), int),
                "dihedrals": np.zeros((0, 4), int), "molecule_ids": np.array([0, 1])}

    inside = evaluate(model, two_beads(CUTOFF - 1e-6))
    outside = evaluate(model, two_beads(CUTOFF + 1e-6))
    assert abs(float(inside["energy"][0] - outside["energy"][0])) < 1e-6
    assert float(inside["forces"].abs().max()) < 1e-4


@pytest.mark.parametrize("name", sorted(NETWORK_CASES))
def test_delta_model_on_force_matched_water(name, tmp_path):
    """A Δ model from a force-matched prior evaluates energy, forces and stress on the periodic CG water box."""
    from pathlib import Path

    from cgzoo.data.dataset import CGDataset
    from cgzoo.fitting.spec import fit_prior
    from cgzoo.models import CGModel, build_network
    from cgzoo.neighbors import TopologyCache, batch_graph

    data = Path(__file__).parents[1] / "datasets" / "default" / "spce-water_1bead_com.h5"
    prior, report = fit_prior(data, {"max_frames": 10, "terms": [{"fit": "force_matching", "cutoff": CUTOFF,
                                                                  "pair_spacing": 0.25}]}, progress=lambda m: None)
    assert report["errors"]["test"]["force_rmse"] < report["errors"]["test"]["reference_force_rms"]
    ds = CGDataset.load(data)
    top = ds.topology
    model = CGModel(prior, build_network(name, top.type_names, **NETWORK_CASES[name]), mode="delta").double()
    graph = batch_graph(ds.positions[:1], ds.box[:1], top.bead_types, TopologyCache(top.n_beads, top.bonds, top.molecule_ids),
                        model.cutoff)
    out = model(graph, forces=True, stress=True)
    assert out["energy"].shape == (1,) and out["forces"].shape == (top.n_beads, 3) and out["stress"].shape == (1, 3, 3)
    assert torch.isfinite(out["energy"]).all() and torch.isfinite(out["forces"]).all() and torch.isfinite(out["stress"]).all()
    torch.testing.assert_close(out["forces"].sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(out["stress"][0], out["stress"][0].T, atol=1e-8, rtol=1e-6)  # no torque: symmetric
