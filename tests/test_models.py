"""The shared network suite (:mod:`cgzoo.testing`) on every registered network, and Δ models on real CG water."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cgzoo.data.dataset import CGDataset
from cgzoo.models import NETWORKS, CGModel, build_network
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.priors import Prior
from cgzoo.fitting.spec import fit_prior
from cgzoo.testing import check_network
from cgzoo.testing.cases import BOND_AWARE_CASES, CUTOFF, NETWORK_CASES
from cgzoo.testing.suite import NetworkSuite

WATER = Path(__file__).parents[1] / "datasets" / "default" / "spce-water_1bead_com.h5"


class TestRegisteredNetworks(NetworkSuite):
    cases = NETWORK_CASES
    required = NETWORKS
    cases_home = "NETWORK_CASES in cgzoo/testing/cases.py"

    @pytest.fixture(scope="class")
    def water_prior(self) -> Prior:
        """A pair prior force-matched on 10 frames of the default CG water, better than no prior on the test frames."""
        prior, report = fit_prior(WATER, {"max_frames": 10, "terms": [{"fit": "force_matching", "cutoff": CUTOFF,
                                                                       "pair_spacing": 0.25}]}, progress=lambda m: None)
        assert report["errors"]["test"]["force_rmse"] < report["errors"]["test"]["reference_force_rms"]
        return prior

    def test_delta_model_on_force_matched_water(self, network_name: str, water_prior: Prior) -> None:
        """A Δ model from a force-matched prior evaluates energy, forces and stress on the periodic CG water box."""
        ds = CGDataset.load(WATER)
        top = ds.topology
        net = build_network(network_name, top.type_names, **NETWORK_CASES[network_name])
        model = CGModel(water_prior, net, mode="delta").double()
        graph = batch_graph(ds.positions[:1], ds.boxes[:1], top.bead_types,
                            TopologyCache(top.n_beads, top.bonds, top.molecule_ids), model.cutoff)
        out = model(graph, forces=True, stress=True)
        assert out["energy"].shape == (1,) and out["forces"].shape == (top.n_beads, 3) and out["stress"].shape == (1, 3, 3)
        assert all(torch.isfinite(out[k]).all() for k in ("energy", "forces", "stress"))
        torch.testing.assert_close(out["forces"].sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-8, rtol=0)
        torch.testing.assert_close(out["stress"][0], out["stress"][0].T, atol=1e-8, rtol=1e-6)  # no torque: symmetric


class TestBondAwareNetworks(NetworkSuite):
    """Every registered network with ``bond_aware=True``: separation classes in the edge features keep every check."""

    cases = BOND_AWARE_CASES
    required = NETWORKS
    cases_home = "BOND_AWARE_CASES in cgzoo/testing/cases.py"


class TestUserNetworkPlugin(NetworkSuite):
    """The suite as a user runs it on their own network: a class from an enabled plugin module, named by its path."""

    cases = {"user_network.GaussianPairNet": {"cutoff": 6.0, "n_gaussians": 8}}

    @pytest.fixture(scope="class", autouse=True)
    def plugin_enabled(self) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CGZOO_PLUGINS", "user_network")
            yield


def test_check_network_names_the_failing_check(monkeypatch):
    """Plain-Python use: a network whose energy depends on absolute positions fails the invariance check, by name."""
    from user_network import AbsolutePositionNet

    monkeypatch.setenv("CGZOO_PLUGINS", "user_network")
    with pytest.raises(AssertionError, match="^translation_rotation_and_periodic_images: "):
        check_network(AbsolutePositionNet, {"cutoff": 6.0, "n_gaussians": 4}, modes=("ml_only",))


def test_a_required_network_without_a_case_fails_the_suite():
    class Incomplete(NetworkSuite):
        cases = NETWORK_CASES
        required = (*NETWORKS, "new_net")
        cases_home = "NETWORK_CASES in cgzoo/testing/cases.py"

    with pytest.raises(AssertionError, match=r"'new_net'\]: add .* to NETWORK_CASES in cgzoo/testing/cases.py"):
        Incomplete().test_every_required_network_has_a_case()
