"""Checks specific to PairMLP and SchNet (the shared suite, cgzoo.testing, runs on every network in tests/test_models.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgzoo.models import build_network
from cgzoo.models.pair_mlp import PairMLP
from cgzoo.models.schnet import SchNet
from cgzoo.neighbors import TopologyCache, batch_graph

TYPES = ["A", "B"]
CUTOFF = 5.0
SMALL = {
    "pair_mlp": {"cutoff": CUTOFF, "n_rbf": 8, "hidden": [16, 16], "embedding_dim": 4},
    "schnet": {"cutoff": CUTOFF, "hidden_channels": 16, "num_filters": 16, "num_interactions": 2, "num_gaussians": 8},
}


def small(name: str, seed: int = 0) -> PairMLP | SchNet:
    """A small float64 network ``name``."""
    torch.manual_seed(seed)
    return build_network(name, TYPES, **SMALL[name]).double()


def graph(positions, types, molecule_ids=None, box: float = 30.0, bonds=None, dtype=torch.float64):
    """Graph of one frame ``positions`` (N,3) in a cubic ``box``; beads in separate molecules unless told."""
    positions = np.asarray(positions, dtype=float)
    n = len(positions)
    molecule_ids = np.arange(n) if molecule_ids is None else np.asarray(molecule_ids)
    bonds = np.zeros((0, 2), int) if bonds is None else np.asarray(bonds)
    cache = TopologyCache(n, bonds, molecule_ids)
    return batch_graph(positions[None], np.eye(3)[None] * box, np.asarray(types), cache, CUTOFF + 0.5, bonds=bonds,
                       dtype=dtype, requires_grad=True)


def test_pair_mlp_is_symmetric_in_types():
    net = small("pair_mlp")
    r = torch.linspace(1.0, CUTOFF, 50, dtype=torch.float64)
    torch.testing.assert_close(net.pair_energy(r, 0, 1), net.pair_energy(r, 1, 0), rtol=0, atol=0)
    two = [[0.0, 0.0, 0.0], [3.3, 0.4, -0.2]]
    torch.testing.assert_close(net(graph(two, [0, 1])), net(graph(two, [1, 0])), rtol=1e-12, atol=1e-12)


def test_pair_mlp_energy_and_force_vanish_at_cutoff():
    net = small("pair_mlp")
    r = torch.tensor([CUTOFF - 1e-3, CUTOFF, CUTOFF + 0.3], dtype=torch.float64, requires_grad=True)
    for ti, tj in ((0, 0), (0, 1), (1, 1)):
        energy = net.pair_energy(r, ti, tj)
        (force,) = torch.autograd.grad(energy.sum(), r)
        energy = energy.detach()
        assert float(energy[0].abs()) < 1e-7 and float(force[0].abs()) < 1e-4
        assert float(energy[1:].abs().max()) < 1e-14 and float(force[1:].abs().max()) < 1e-14


def test_pair_energy_matches_two_bead_structure():
    net = small("pair_mlp")
    for r in (2.0, 3.7, CUTOFF - 0.2):
        direction = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
        e = net(graph([[10.0, 10.0, 10.0], 10.0 + r * direction], [0, 1]))
        torch.testing.assert_close(e[0], net.pair_energy(torch.tensor(r, dtype=torch.float64), 0, 1), rtol=1e-12, atol=1e-12)


def test_pair_mlp_exclusions():
    two = [[0.0, 0.0, 0.0], [3.8, 0.0, 0.0]]
    bonded = {"molecule_ids": [0, 0], "bonds": [[0, 1]]}
    torch.manual_seed(0)
    for options, zero in (({"exclude": 0}, False), ({"exclude": 1}, True), ({"intramolecular": False}, True)):
        net = PairMLP(TYPES, **SMALL["pair_mlp"], **options).double()
        assert (float(net(graph(two, [0, 1], **bonded)).detach()[0]) == 0.0) == zero
        assert float(net(graph(two, [0, 1])).detach()[0]) != 0.0


def test_schnet_is_local():
    net = small("schnet")
    cluster = [[10.0, 10.0, 10.0], [13.5, 10.2, 9.8], [11.2, 13.1, 10.5]]
    far = [net(graph([*cluster, lone], [0, 1, 1, 0])) for lone in ([20.0, 20.0, 20.0], [24.0, 18.5, 22.0])]
    torch.testing.assert_close(far[0], far[1], rtol=1e-12, atol=1e-12)
    edge = [net(graph([*cluster, [13.5 + CUTOFF + s, 10.2, 9.8]], [0, 1, 1, 0])).detach() for s in (-1e-6, 1e-6)]
    assert float((edge[0] - edge[1]).abs()) < 1e-6


def test_pair_mlp_exports_a_table_matching_the_network():
    """The learned pair potential becomes a Tabulated prior whose energies match the network's."""
    torch.manual_seed(3)
    net = build_network("pair_mlp", ["A", "B"], cutoff=6.0, n_rbf=8, hidden=[16, 16], embedding_dim=4).double()
    table = net.to_prior(energy_scale=2.5, r_min=2.0, spacing=0.005)
    r = np.linspace(2.1, 5.9, 50)
    energy, _ = table.evaluate("A-B", r)
    expected = 2.5 * net.pair_energy(torch.as_tensor(r), 0, 1).detach().numpy()
    np.testing.assert_allclose(energy, expected, rtol=1e-6, atol=1e-8)
    assert table.cutoff == pytest.approx(6.0)
