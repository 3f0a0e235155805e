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
from cgzoo.engines.tables import graph_network, network_classes, split_model
from cgzoo.errors import InputError
from cgzoo.models import CGModel, build_network
from cgzoo.models.checkpoint import load_model
from cgzoo.neighbors import FAR, TopologyCache, batch_graph
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


def linear_molecule(n: int) -> BeadSystem:
    """One linear molecule of ``n`` A beads 3 Å apart and a lone B bead, in a 30 Å box (what ``split_model`` asks of a
    system: its exclusions)."""
    positions = [[2.0 + 3.0 * k, 5.0, 5.0] for k in range(n)] + [[5.0, 15.0, 15.0]]
    atoms = Atoms(numbers=[1] * (n + 1), positions=positions, cell=np.eye(3) * 30.0, pbc=True)
    atoms.new_array("molecule_id", np.array([0] * n + [1]))
    topology = {"bonds": np.array([[k, k + 1] for k in range(n - 1)], dtype=int).reshape(-1, 2),
                "angles": np.zeros((0, 3), int), "dihedrals": np.zeros((0, 4), int)}
    return BeadSystem.from_atoms(atoms, TYPES, np.array([0] * n + [1]), topology)


PAIR_KEYS = {"pair": ["A-A", "A-B", "B-B"]}


def aware_model(**rule) -> CGModel:
    torch.manual_seed(0)
    return CGModel(None, build_network("pair_mlp", TYPES, **{**BOND_AWARE_CASES["pair_mlp"], **rule}), mode="ml_only")


def test_a_bond_aware_pair_mlp_is_pair_tables_only_where_it_sees_no_pair_further_than_1_4():
    """``to_prior`` refuses it; engines keep it as a torch network in a system with intramolecular pairs further apart
    than 1-4 that it sees (or an unknown system), and tabulate it elsewhere (a plain pair_mlp: always one table)."""
    model = aware_model()
    with pytest.raises(ValueError, match="one pair function per bond-separation class"):
        model.net.to_prior()
    plain = CGModel(None, build_network("pair_mlp", TYPES, **NETWORK_CASES["pair_mlp"]), mode="ml_only")
    assert graph_network(model, None) is model.net and graph_network(model, {1, FAR}) is model.net
    assert graph_network(model, set()) is None and graph_network(model, {1, 2, 3}) is None
    assert graph_network(plain, None) is None
    for excluded in (None, linear_molecule(5).excluded_pairs):
        kept = split_model(model, PAIR_KEYS, excluded)
        assert kept.network is not None and not kept.pairs
    for n, rules in ((1, [0]), (2, [0, 1]), (3, [0, 1, 2]), (4, [0, 1, 2, 3])):
        tabulated = split_model(model, PAIR_KEYS, linear_molecule(n).excluded_pairs)
        assert tabulated.network is None and [t.exclude for t in tabulated.pairs] == rules, n
    plain_split = split_model(plain, PAIR_KEYS)
    assert plain_split.network is None and len(plain_split.pairs) == 1


@pytest.mark.parametrize("n, rule, classes", [(1, {}, set()), (2, {}, {1}), (3, {}, {1, 2}), (4, {}, {1, 2, 3}),
                                              (5, {}, {1, 2, 3, FAR}), (6, {"exclude": 2}, {3, FAR}),
                                              (4, {"exclude": 1}, {2, 3}), (5, {"intramolecular": False}, set())])
def test_network_classes_are_the_separations_of_the_intramolecular_pairs_it_sees(n, rule, classes):
    assert network_classes(aware_model(**rule).net, linear_molecule(n).excluded_pairs) == classes


@pytest.mark.parametrize("rule", [{"exclude": 1}, {"intramolecular": False}])
def test_a_bond_aware_pair_mlp_excluding_every_intramolecular_pair_of_the_system_is_one_table(rule):
    """A dimer whose network skips its 1-2 pair, or every intramolecular one: it sees intermolecular pairs only."""
    model = aware_model(**rule)
    split = split_model(model, PAIR_KEYS, linear_molecule(2).excluded_pairs)
    assert split.network is None and [(t.exclude, t.intramolecular) for t in split.pairs] == [(model.net.exclude,
                                                                                               model.net.intramolecular)]


def test_pairs_further_than_1_4_keep_it_out_of_lammps_with_the_reason(tmp_path):
    """LAMMPS refuses the split (one line, why), ``--engine lammps`` is refused before the run, auto picks ASE."""
    from cgzoo.engines.lammps import Runner
    from cgzoo.engines.tables import NotRepresentable
    from cgzoo.md import SimulationSettings
    from cgzoo.md.integrators import choose_engine

    system = linear_molecule(5)
    split = split_model(aware_model(), PAIR_KEYS, system.excluded_pairs)
    reason = "pair tables tell intramolecular pairs apart only up to 1-4"
    with pytest.raises(NotRepresentable, match=reason):
        Runner(split, system, SimulationSettings(steps=10), tmp_path)
    with pytest.raises(InputError, match="engine lammps cannot run this model: .*" + reason):
        choose_engine(SimulationSettings(engine="lammps"), split)
    assert choose_engine(SimulationSettings(), split) == "ase"


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
