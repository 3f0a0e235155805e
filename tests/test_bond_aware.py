"""``bond_aware`` networks: the topology changes energies, old checkpoints do not, and ML-only pair_mlp can learn a bond.

The shared suite runs every bond-aware network through every check (tests/test_models.py,
``TestBondAwareNetworks``); these are the checks that only make sense for the argument itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from cgzoo.engines.system import BeadSystem
from cgzoo.engines.tables import graph_network, split_model
from cgzoo.models import CGModel, build_network
from cgzoo.models.checkpoint import load_model
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.priors import build_prior
from cgzoo.testing.cases import BOND_AWARE_CASES, NETWORK_CASES
from cgzoo.testing.networks import evaluate, model_system
from cgzoo.testing.systems import TYPES

OLD = Path(__file__).parent / "data" / "old_checkpoints"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run single-threaded: tiny graphs, a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def two_beads(r: float, bonded: bool) -> dict:
    """An A and a B bead ``r`` Å apart: one bonded molecule, or two molecules."""
    return {"positions": np.array([[[5.0, 5.0, 5.0], [5.0 + r, 5.0, 5.0]]]), "boxes": np.eye(3)[None] * 30.0,
            "bead_types": np.array([0, 1]), "bonds": np.array([[0, 1]]) if bonded else np.zeros((0, 2), int),
            "angles": np.zeros((0, 3), int), "dihedrals": np.zeros((0, 4), int),
            "molecule_ids": np.array([0, 0]) if bonded else np.array([0, 1])}


@pytest.mark.parametrize("name", sorted(NETWORK_CASES))
def test_a_bond_and_an_intermolecular_pair_at_one_distance_differ_only_when_bond_aware(name):
    for bond_aware in (False, True):
        torch.manual_seed(0)
        net = build_network(name, TYPES, **{**NETWORK_CASES[name], "bond_aware": bond_aware})
        model = CGModel(None, net, mode="ml_only").double().eval()
        bond, contact = (float(evaluate(model, two_beads(3.4, bonded))["energy"][0]) for bonded in (True, False))
        assert (abs(bond - contact) > 1e-4) == bond_aware, (bond_aware, bond, contact)


@pytest.mark.parametrize("name", sorted(NETWORK_CASES))
def test_a_checkpoint_from_before_the_argument_loads_as_not_bond_aware_with_identical_outputs(name):
    """Checkpoints written by cgzoo 3a60ce0 (no ``bond_aware`` in the spec; make.py in the folder) give their saved outputs."""
    model = load_model(OLD / f"{name}.ckpt")
    assert model.net.bond_aware is False
    expected = json.loads((OLD / "expected.json").read_text())[name]
    out = evaluate(model, model_system())
    torch.testing.assert_close(out["energy"], torch.tensor(expected["energy"], dtype=torch.float64), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out["forces"], torch.tensor(expected["forces"], dtype=torch.float64), rtol=1e-10, atol=1e-12)


def test_bond_aware_pair_energy_is_the_energy_of_a_bonded_or_intermolecular_pair():
    torch.manual_seed(0)
    net = build_network("pair_mlp", TYPES, **BOND_AWARE_CASES["pair_mlp"]).double()
    model = CGModel(None, net, mode="ml_only").double().eval()
    for bonded, sep in ((True, 1), (False, 0)):
        energy = evaluate(model, two_beads(3.4, bonded))["energy"][0]
        torch.testing.assert_close(energy, net.pair_energy(torch.tensor(3.4, dtype=torch.float64), 0, 1, sep).detach(),
                                   rtol=1e-12, atol=1e-12)


def bead_system(bonded: bool) -> BeadSystem:
    """The engine view of :func:`two_beads` (what ``split_model`` asks for a system's exclusions)."""
    system = two_beads(3.4, bonded)
    atoms = Atoms(numbers=[0, 0], positions=system["positions"][0], cell=system["boxes"][0], pbc=True)
    atoms.new_array("molecule_id", system["molecule_ids"])
    return BeadSystem.from_atoms(atoms, TYPES, system["bead_types"], system)


PAIR_KEYS = {"pair": ["A-A", "A-B", "B-B"]}


def test_a_bond_aware_pair_mlp_is_a_pair_table_only_where_it_sees_no_intramolecular_pair():
    """``to_prior`` refuses it; engines keep it as a torch network in a system with intramolecular pairs it sees (or
    an unknown system), and tabulate its intermolecular function where it sees none (a plain pair_mlp: always)."""
    torch.manual_seed(0)
    aware = build_network("pair_mlp", TYPES, **BOND_AWARE_CASES["pair_mlp"])
    with pytest.raises(ValueError, match="one pair function per bond-separation class"):
        aware.to_prior()
    plain = CGModel(None, build_network("pair_mlp", TYPES, **NETWORK_CASES["pair_mlp"]), mode="ml_only")
    model = CGModel(None, aware, mode="ml_only")
    assert graph_network(model, True) is aware and graph_network(model, False) is None
    assert graph_network(plain, True) is None
    for excluded in (None, bead_system(bonded=True).excluded_pairs):
        kept = split_model(model, PAIR_KEYS, excluded)
        assert kept.network is not None and not kept.pairs
    tabulated = split_model(model, PAIR_KEYS, bead_system(bonded=False).excluded_pairs)
    assert tabulated.network is None and len(tabulated.pairs) == 1
    plain_split = split_model(plain, PAIR_KEYS)
    assert plain_split.network is None and len(plain_split.pairs) == 1


@pytest.mark.parametrize("rule", [{"exclude": 1}, {"intramolecular": False}])
def test_a_bond_aware_pair_mlp_excluding_every_intramolecular_pair_of_the_system_is_a_pair_table(rule):
    """A dimer whose network skips its 1-2 pair, or every intramolecular one: the network sees intermolecular pairs only."""
    torch.manual_seed(0)
    net = build_network("pair_mlp", TYPES, **{**BOND_AWARE_CASES["pair_mlp"], **rule})
    split = split_model(CGModel(None, net, mode="ml_only"), PAIR_KEYS, bead_system(bonded=True).excluded_pairs)
    assert split.network is None and [(t.exclude, t.intramolecular) for t in split.pairs] == [(net.exclude,
                                                                                               net.intramolecular)]


N_MOL, BOX, CUT = 16, 12.0, 5.0


def dimer_liquid(n_frames: int, seed: int) -> np.ndarray:
    """Frames of ``N_MOL`` dimers (bonds ~ N(3.0, 0.15) Å) placed one by one, no two molecules closer than 2.9 Å."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        x = np.zeros((0, 3))
        while len(x) < 2 * N_MOL:
            centre, axis = rng.uniform(0, BOX, 3), rng.normal(size=3)
            axis *= 0.5 * rng.normal(3.0, 0.15) / np.linalg.norm(axis)
            dimer = np.stack([centre - axis, centre + axis])
            d = dimer[:, None] - x[None]
            d -= BOX * np.round(d / BOX)
            if not len(x) or np.linalg.norm(d, axis=-1).min() > 2.9:
                x = np.concatenate([x, dimer])
        frames.append(x)
    return np.stack(frames)


def test_bond_aware_ml_only_pair_mlp_fits_a_bonded_dimer_liquid_far_better():
    """Harmonic bonds (r₀ 3 Å, the distance where the intermolecular LJ core repels) plus LJ between molecules:
    one pair function cannot be both, one per separation class can (the same training, ~20 s each)."""
    bonds, molecules, types = np.arange(2 * N_MOL).reshape(-1, 2), np.repeat(np.arange(N_MOL), 2), np.zeros(2 * N_MOL, int)
    cache = TopologyCache(2 * N_MOL, bonds, molecules)
    truth = CGModel(build_prior([
        {"class_path": "lennard_jones", "init_args": {"type_names": ["A"], "cutoff": CUT, "exclude": 1,
                                                      "params": {"A-A": {"sigma": 3.2, "epsilon": 0.3}}}},
        {"class_path": "harmonic_bond", "init_args": {"type_names": ["A"], "params": {"A-A": {"k": 40.0, "r0": 3.0}}}},
    ]), None, mode="prior_only").double()
    positions = dimer_liquid(32, seed=0)
    boxes = np.tile(np.eye(3) * BOX, (len(positions), 1, 1))

    def graph(frames: slice, dtype: torch.dtype = torch.float32):
        return batch_graph(positions[frames], boxes[frames], types, cache, CUT, bonds, dtype=dtype, requires_grad=True)

    reference = truth(graph(slice(None), torch.float64))["forces"].detach().float()
    train, test = slice(0, 24), slice(24, 32)
    n = 2 * N_MOL
    errors = {}
    for bond_aware in (False, True):
        torch.manual_seed(0)
        net = build_network("pair_mlp", ["A"], cutoff=CUT, n_rbf=16, hidden=[32, 32], embedding_dim=2, bond_aware=bond_aware)
        model = CGModel(None, net, mode="ml_only")
        optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
        g = graph(train)
        for _ in range(200):
            optimiser.zero_grad()
            loss = (model(g)["forces"] - reference[train.start * n:train.stop * n]).pow(2).mean()
            loss.backward()
            optimiser.step()
        model.eval()
        diff = model(graph(test))["forces"].detach() - reference[test.start * n:test.stop * n]
        errors[bond_aware] = float(diff.pow(2).mean().sqrt())
    rms = float(reference.pow(2).mean().sqrt())
    assert errors[True] < 0.1 * errors[False] and errors[True] < 0.1 * rms, (errors, rms)
