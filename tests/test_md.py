"""MD: the ASE calculator agrees with the model, NVE conserves energy, the guard trips, restarts continue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read, write
from synthetic import lj_fluid_system

from cgzoo.data.start import atoms_from_dataset
from cgzoo.md import CGCalculator, Frame, Hook, RunInfo, SimulationSettings, StepState, UnstableSimulation, UnstableStep, simulate
from cgzoo.models import CGModel, build_network
from cgzoo.neighbors import CellTooSmall, TopologyCache, batch_graph
from cgzoo.priors import build_prior
from cgzoo.testing.cases import LJ_TRUE
from cgzoo.testing.systems import TYPES
from cgzoo.units import EV_TO_KCAL_MOL

CUT = 6.0
DEFAULT = Path(__file__).parents[1] / "datasets" / "default" / "spce-water_1bead_com.h5"


def lj(params=LJ_TRUE):
    return build_prior({"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": CUT, "params": params,
                                                                     "smoothing": "switch", "r_switch": 5.0}})


def delta_model() -> CGModel:
    torch.manual_seed(0)
    net = build_network("pair_mlp", TYPES, cutoff=CUT, n_rbf=8, hidden=[16, 16], embedding_dim=4)
    return CGModel(lj(), net, mode="delta", energy_scale=0.05)


@pytest.fixture
def start(tmp_path):
    """An LJ-fluid frame written as extxyz with the bead-type convention."""
    system = lj_fluid_system(n_frames=1, seed=7)
    atoms = Atoms(numbers=np.zeros(64, int), positions=system["positions"][0], cell=system["boxes"][0], pbc=True)
    atoms.set_masses(np.full(64, 40.0))
    atoms.new_array("bead_type", np.array([TYPES[t] for t in system["bead_types"]]))
    path = tmp_path / "start.extxyz"
    atoms.write(path)
    return path, system


def test_calculator_matches_model_in_ase_units(start):
    path, system = start
    model = delta_model().double()
    atoms = read(path)
    atoms.calc = CGCalculator(model)
    graph = batch_graph(atoms.get_positions()[None], np.asarray(atoms.cell)[None], system["bead_types"],
                        TopologyCache(64, np.zeros((0, 2), int), np.arange(64)), model.cutoff)
    out = model(graph, forces=True, stress=True)
    np.testing.assert_allclose(atoms.get_forces() * EV_TO_KCAL_MOL, out["forces"].detach().numpy(), rtol=1e-8, atol=1e-9)
    assert atoms.get_potential_energy() * EV_TO_KCAL_MOL == pytest.approx(float(out["energy"].detach()[0]), rel=1e-10)
    s = out["stress"].detach().numpy()[0]
    np.testing.assert_allclose(atoms.get_stress() * EV_TO_KCAL_MOL, [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]],
                               rtol=1e-8, atol=1e-12)
    bad = atoms.copy()
    bad.arrays["bead_type"][0] = "Q"
    bad.calc = CGCalculator(model)
    with pytest.raises(ValueError, match=r"bead types \['Q'\] are not in the model's type map"):
        bad.get_forces()


@pytest.fixture(scope="module")
def water_prior():
    """A force-matched pair prior for CG water, fitted on 10 training frames of the default dataset."""
    from cgzoo.fitting.spec import fit_prior

    prior, _ = fit_prior(DEFAULT, {"max_frames": 10, "terms": [{"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]},
                         progress=lambda m: None)
    return prior


@pytest.mark.parametrize("mode", ["prior_only", "delta"])
def test_nve_conserves_energy(water_prior, tmp_path, mode):
    torch.manual_seed(0)
    net = build_network("pair_mlp", ["W"], cutoff=CUT, n_rbf=8, hidden=[16, 16], embedding_dim=4) if mode == "delta" else None
    model = CGModel(water_prior, net, mode=mode, energy_scale=0.5)
    run = simulate(model, f"{DEFAULT}@0", tmp_path / "nve", SimulationSettings(ensemble="nve", timestep_fs=2.0, steps=300,
                                                                                save_every=10), progress=False)
    log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
    etot, ekin = log["etot_kcal_mol"], log["ekin_kcal_mol"]
    # drift bound: total energy wanders by under 2 % of the mean kinetic energy over 0.6 ps
    assert np.ptp(etot) < 0.02 * ekin.mean(), (np.ptp(etot), ekin.mean())
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert len(read(run / "traj.extxyz", index=":")) == 31


def test_guard_stops_an_exploding_model_and_keeps_the_last_good_frame(start, tmp_path):
    path, _ = start
    sticky = {k: {"sigma": v["sigma"], "epsilon": 400.0} for k, v in LJ_TRUE.items()}  # absurdly deep wells
    model = CGModel(lj(sticky), None, mode="prior_only")
    out = tmp_path / "boom"
    with pytest.raises(UnstableSimulation, match="unstable at step .*last good frame"):
        simulate(model, str(path), out, SimulationSettings(ensemble="nve", timestep_fs=4.0, steps=2000, save_every=10,
                                                           temperature_K=300.0, max_force=200.0), progress=False)
    good = read(out / "last_good.extxyz")
    assert np.all(np.isfinite(good.positions)) and len(good) == 64
    assert json.loads((out / "run.json").read_text())["status"] == "unstable"


def test_restart_continues_the_trajectory(water_prior, tmp_path):
    model = CGModel(water_prior, None, mode="prior_only")
    out = tmp_path / "nvt"
    settings = SimulationSettings(ensemble="nvt", timestep_fs=2.0, steps=40, save_every=10)
    simulate(model, f"{DEFAULT}@3", out, settings, progress=False)
    with pytest.raises(Exception, match="already exists"):
        simulate(model, f"{DEFAULT}@3", out, settings, progress=False)
    simulate(model, f"{DEFAULT}@3", out, SimulationSettings(steps=80), restart=True, progress=False)
    frames = read(out / "traj.traj", index=":")
    times = [f.info["time_fs"] for f in frames]
    assert times == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0]
    log = np.genfromtxt(out / "log.csv", delimiter=",", names=True)
    assert list(log["step"]) == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["steps_done"] == 80 and info["ensemble"] == "nvt"
    assert info["bead_types"] == ["W"] * 300
    assert set(read(out / "traj.extxyz", index=-1).arrays["bead_type"]) == {"W"}


class Recording(Hook):
    """A user hook: the steps it was called at, every saved step, and how each run started and ended."""

    def __init__(self) -> None:
        self.checked: list[int] = []
        self.saved: list[int] = []
        self.events: list[tuple] = []

    def on_start(self, run: RunInfo) -> None:
        self.events.append(("start", run.first_step, run.restart))

    def on_step(self, state: StepState) -> None:
        assert state.forces is not None and state.forces.shape == (len(state.atoms), 3)
        self.checked.append(state.step)

    def on_save(self, frame: Frame) -> None:
        assert frame.atoms.info["time_fs"] == frame.time_fs == frame.step * 1.0 and frame.thermo["step"] == frame.step
        self.saved.append(frame.step)

    def on_end(self, status: str) -> None:
        self.events.append(("end", status))


class StopAt(Hook):
    """A user hook that declares the run unstable at one step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, state: StepState) -> None:
        if state.step == self.step:
            raise UnstableStep("told to stop")


@pytest.mark.parametrize("engine", ["ase", "lammps"])
def test_user_hooks_see_every_checked_step_and_saved_frame_and_may_stop_a_run(start, tmp_path, engine):
    """``simulate(hooks=...)`` calls a user's hook at the start, each checked step (every step in ASE, every saved frame
    in an engine), each saved frame (as logged) and the end; its :class:`UnstableStep` stops the run as unstable."""
    if engine != "ase":
        pytest.importorskip(engine)
    path, _ = start
    model = CGModel(lj(), None, mode="prior_only")
    settings = {"ensemble": "nvt", "steps": 30, "save_every": 10, "temperature_K": 300.0, "timestep_fs": 1.0,
                "max_temperature_factor": 100.0, "engine": engine}
    out, first, second = tmp_path / "hooked", Recording(), Recording()
    simulate(model, str(path), out, SimulationSettings(**settings), progress=False, hooks=[first])
    assert first.saved == [0, 10, 20, 30] and first.checked == (list(range(31)) if engine == "ase" else first.saved)
    assert first.events == [("start", 0, False), ("end", "complete")]
    simulate(model, str(path), out, SimulationSettings(steps=50), restart=True, progress=False, hooks=[second])
    assert second.saved == [40, 50] and second.checked == (list(range(30, 51)) if engine == "ase" else second.saved)
    assert second.events == [("start", 30, True), ("end", "complete")]
    log = np.genfromtxt(out / "log.csv", delimiter=",", names=True)
    assert list(log["step"]) == first.saved + second.saved

    stopped, watcher = tmp_path / "stopped", Recording()
    with pytest.raises(UnstableSimulation, match="unstable at step 20: told to stop; last good frame"):
        simulate(model, str(path), stopped, SimulationSettings(**settings), progress=False, hooks=[StopAt(20), watcher])
    info = json.loads((stopped / "run.json").read_text())
    assert info["status"] == "unstable" and info["steps_done"] == 20
    assert watcher.saved == [0, 10] and watcher.events[-1] == ("end", "unstable")
    assert len(read(stopped / "last_good.extxyz")) == 64


def test_restart_of_a_two_type_system_keeps_bead_types(start, tmp_path):
    path, system = start
    model = CGModel(lj(), None, mode="prior_only")
    out = tmp_path / "two"
    simulate(model, str(path), out, SimulationSettings(ensemble="nvt", steps=20, save_every=10, temperature_K=300.0,
                                                       timestep_fs=1.0, max_temperature_factor=100.0), progress=False)
    simulate(model, str(path), out, SimulationSettings(steps=40), restart=True, progress=False)
    last = read(out / "traj.extxyz", index=-1)
    assert list(last.arrays["bead_type"]) == [TYPES[t] for t in system["bead_types"]]


def test_simulate_command_with_a_fitted_prior_file(water_prior, tmp_path):
    """``cgzoo simulate --model prior.json`` runs the prior alone; a bad start file is a one-line error."""
    from cgzoo.cli import main
    from cgzoo.priors import save_prior

    save_prior(water_prior, tmp_path / "prior.json")
    out = tmp_path / "run"
    assert main(["simulate", "--model", str(tmp_path / "prior.json"), "--start", f"{DEFAULT}@5", "--out", str(out),
                 "--steps", "20", "--save-every", "10", "--quiet"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete"
    # the held-out force error recorded for evaluate: the prior's on every test frame of the default split, well below
    # the reference force RMS (~6)
    from cgzoo.data.dataset import CGDataset
    from cgzoo.data.splits import block_split

    test_frames = len(block_split(CGDataset.load(DEFAULT).n_frames)["test"])
    assert 2.0 < info["force_rmse_test"] < 5.5 and info["force_rmse_frames"] == test_frames
    assert main(["simulate", "--model", str(tmp_path / "prior.json"), "--start", str(tmp_path / "nope.xyz"),
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2


@pytest.mark.parametrize("barostat", ["mtk", "berendsen"])
def test_npt_changes_the_box_and_logs_density(water_prior, tmp_path, barostat):
    """NPT runs with either barostat; the force-matched water prior (~7000 bar at this density) expands the box."""
    model = CGModel(water_prior, None, mode="prior_only")
    run = simulate(model, f"{DEFAULT}@1", tmp_path / barostat, SimulationSettings(ensemble="npt", barostat=barostat, steps=60,
                                                                                  save_every=20), progress=False)
    log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
    assert log["pressure_bar"][0] > 1000.0
    assert log["density_g_cm3"][-1] < log["density_g_cm3"][0]
    frames = read(run / "traj.extxyz", index=":")
    assert frames[-1].get_volume() > frames[0].get_volume()


@pytest.mark.parametrize("engine, reason", [("ase", "box shrank below twice the model's cutoff"),
                                            ("lammps", "non-finite positions or box from the engine")])
def test_npt_box_collapsing_below_the_model_range_is_an_unstable_run(water_prior, tmp_path, engine, reason):
    """A box squeezed below twice the cutoff ends the run as unstable (a result with its last good frame), not a crash.

    ASE's Berendsen squeezes the box below the model's range; LAMMPS', checked every saved frame, blows up first.
    """
    model = CGModel(water_prior, None, mode="prior_only")
    settings = SimulationSettings(ensemble="npt", barostat="berendsen", pressure_bar=2.0e6, pdamp_fs=20.0, steps=400,
                                  save_every=10, engine=engine)
    with pytest.raises(UnstableSimulation, match=reason):
        simulate(model, f"{DEFAULT}@1", tmp_path / "squeezed", settings, progress=False)
    info = json.loads((tmp_path / "squeezed" / "run.json").read_text())
    assert info["status"] == "unstable" and 0 < info["steps_done"] < 400
    assert (tmp_path / "squeezed" / "last_good.extxyz").exists()


def test_a_start_box_too_small_for_the_model_is_a_bad_input_not_an_unstable_run(water_prior, tmp_path):
    atoms, _ = atoms_from_dataset(DEFAULT, 0)
    atoms.set_cell(atoms.cell * (1.8 * CUT / atoms.cell.lengths().min()), scale_atoms=True)  # half width 0.9 × cutoff
    atoms.set_array("bead_type", np.array(["W"] * len(atoms)))
    write(tmp_path / "small.extxyz", atoms, format="extxyz")
    with pytest.raises(CellTooSmall, match="exceeds half the smallest cell width"):
        simulate(CGModel(water_prior, None, mode="prior_only"), str(tmp_path / "small.extxyz"), tmp_path / "run",
                 SimulationSettings(steps=10), progress=False)
