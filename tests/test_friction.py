"""Friction: the friction file validates, the per-type Langevin and DPD integrators sample T (DPD conserving momentum),
simulate records and checks the friction, and fit-friction recovers the D of a Langevin run it was fitted to."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from synthetic import lj_fluid_system

from cgzoo.data.dataset import CGDataset, CGTopology
from cgzoo.engines.lammps import langevin_args
from cgzoo.errors import InputError
from cgzoo.md import SimulationSettings, simulate
from cgzoo.md.friction import friction_option, load_friction, read_friction
from cgzoo.models import CGModel
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.priors import build_prior
from cgzoo.refine.friction import fit_friction
from cgzoo.testing.cases import LJ_TRUE
from cgzoo.testing.systems import TYPES
from cgzoo.units import AMU_A2_FS2_TO_KCAL_MOL, KB

LANGEVIN = {"kind": "langevin", "gamma_per_ps": {"A": 2.0, "B": 20.0}}
DPD = {"kind": "dpd", "cutoff_A": 6.0, "gamma_per_ps": {"A-A": 10.0, "A-B": 10.0, "B-B": 10.0}}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lj_model() -> CGModel:
    prior = build_prior({"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": 6.0, "params": LJ_TRUE,
                                                                      "smoothing": "switch", "r_switch": 5.0}})
    return CGModel(prior, None, mode="prior_only")


@pytest.fixture
def start(tmp_path):
    system = lj_fluid_system(n_frames=1, seed=7)
    atoms = Atoms(numbers=np.zeros(64, int), positions=system["positions"][0], cell=system["boxes"][0], pbc=True)
    atoms.set_masses(np.where(system["bead_types"] == 0, 30.0, 60.0))
    atoms.new_array("bead_type", np.array([TYPES[t] for t in system["bead_types"]]))
    atoms.write(tmp_path / "start.extxyz")
    return tmp_path / "start.extxyz"


def test_friction_files_validate_with_one_line_errors(tmp_path):
    assert load_friction(LANGEVIN, "f.json").per_type_langevin() == {"A": 2.0, "B": 20.0}
    assert load_friction(DPD, "f.json").per_type_langevin() is None
    cases = [({**LANGEVIN, "kind": "gle"}, r"f.json: kind: unknown friction kind 'gle' \(known: langevin, dpd\)"),
             ({**LANGEVIN, "gamma_per_ps": {"A": -1.0, "B": 1.0}}, r"f.json: gamma_per_ps.A: .*>= 0"),
             ({**DPD, "gamma_per_ps": {"B-A": 1.0}}, r"pair key 'B-A' must be .* \('A-B'\)"),
             ({**DPD, "cutoff_A": 0.0}, r"cutoff_A: .*> 0"),
             ({**LANGEVIN, "units": {"gamma": "1/fs", "cutoff": "angstrom"}}, r"units: friction files are in"),
             ({**LANGEVIN, "extra": 1}, r"unknown key\(s\) extra")]
    for data, message in cases:
        with pytest.raises(InputError, match=message) as err:
            load_friction(data, "f.json")
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="no friction for bead type pair"):
        load_friction({**DPD, "gamma_per_ps": {"A-A": 1.0}}, "f.json").check(TYPES, "f.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        read_friction(tmp_path / "bad.json")
    with pytest.raises(InputError, match="--friction auto needs a fitted friction file beside the model"):
        friction_option("auto", tmp_path / "prior.json")
    assert friction_option("2.5", tmp_path) == {"friction_per_ps": 2.5}
    with pytest.raises(InputError, match="friction file drives NVT runs"):
        SimulationSettings(friction=LANGEVIN, ensemble="nve")


def test_lammps_fix_langevin_scales_each_type():
    s = SimulationSettings(friction=LANGEVIN)
    args = langevin_args(s, {"A": 1, "B": 2}, 300.0, 5)
    assert args == "300.0 300.0 50.0 5 zero yes scale 1 10.0"  # damp 1/γ_max = 50 fs; type A's damp ×10 = 1/(2/ps)
    assert langevin_args(SimulationSettings(friction_per_ps=4.0), {"A": 1}, 300.0, 5) == "300.0 300.0 250.0 5 zero yes"


class Free(Calculator):
    """No forces: the thermostat alone sets the velocities, so the sampled temperature tests it and nothing else."""

    implemented_properties = ("energy", "forces")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


#: a strong DPD friction: many substeps per step (a single Jacobi pair step would heat this system by ~5 %), and
#: momentum modes that relax fast enough for a short run
STRONG_DPD = {**DPD, "gamma_per_ps": dict.fromkeys(DPD["gamma_per_ps"], 50.0)}


@pytest.mark.parametrize("friction", [LANGEVIN, STRONG_DPD], ids=["langevin", "dpd"])
def test_friction_integrators_sample_the_temperature(friction):
    rng = np.random.default_rng(0)
    n, box, t_target = 128, 16.8, 298.15
    types = np.arange(n) % 2
    atoms = Atoms(numbers=np.zeros(n, int), positions=rng.uniform(0, box, (n, 3)), cell=np.eye(3) * box, pbc=True)
    atoms.set_masses(np.where(types == 0, 30.0, 60.0))
    atoms.set_velocities(np.zeros((n, 3)))  # start cold: the friction alone must bring each type to T
    atoms.calc = Free()
    dyn = load_friction(friction, None).ase_dynamics(atoms, 4.0, t_target, types, TYPES, rng)
    dyn.run(600)
    samples = []
    for _ in range(300):
        dyn.run(10)
        ke2 = atoms.get_masses()[:, None] * atoms.get_velocities() ** 2 * units.fs**2 * AMU_A2_FS2_TO_KCAL_MOL
        samples.append([ke2[types == k].sum() / (3 * (types == k).sum()) for k in range(2)])
    temps = np.mean(samples, axis=0) / KB * (1 + 1 / n)  # 3 degrees of freedom per bead, less 3 for the fixed momentum
    # each type, whatever its γ and mass; DPD's conserved momentum keeps slow modes, so its runs scatter by ~2 %
    np.testing.assert_allclose(temps, t_target, rtol=0.04)
    momentum = atoms.get_momenta().sum(axis=0)
    assert np.abs(momentum).max() < 1e-9 * np.abs(atoms.get_momenta()).max()  # both conserve it: FixCom, pair forces


def test_simulate_records_and_checks_the_friction_file(lj_model, start, tmp_path):
    s = SimulationSettings(friction=DPD, engine="ase", steps=400, save_every=20, timestep_fs=4.0, seed=1)
    run = simulate(lj_model, str(start), tmp_path / "run", s, progress=False)
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["friction"]["gamma_per_ps"] == DPD["gamma_per_ps"] and recorded["engine"] == "ase"
    traj = CGTrajectory.from_run(run)
    momenta = np.einsum("n,fnk->fk", traj.masses, traj.velocities)
    assert np.abs(momenta).max() < 1e-9  # DPD's pairwise forces keep the start's zero total momentum to round-off
    with pytest.raises(InputError, match=r"--friction .*→"):
        simulate(lj_model, "", run, SimulationSettings(friction=LANGEVIN, steps=800), restart=True, progress=False)
    with pytest.raises(InputError, match="engine openmm cannot run the dpd friction file"):
        simulate(lj_model, str(start), tmp_path / "mm", SimulationSettings(friction=DPD, engine="openmm"), progress=False)


def _dataset_of(run, path) -> str:
    """A reference dataset made of a run's frames (forces are not needed by the friction fit)."""
    traj = CGTrajectory.from_run(run)
    traj = traj.select(traj.times >= 2000.0)  # the first 2 ps relax the random start
    topology = CGTopology(bead_types=traj.bead_types, type_names=traj.type_names, bead_names=np.array(["X"] * traj.n_beads),
                          masses=traj.masses, molecule_ids=traj.molecule_ids)
    box = traj.boxes[0, 0, 0]
    CGDataset(positions=(traj.positions % box).astype(np.float32), forces=np.zeros_like(traj.positions, dtype=np.float32),
              boxes=traj.boxes, times=traj.times - traj.times[0], topology=topology, temperature=298.15,
              provenance={"command": "pytest: Langevin reference run"}).save(path)
    return str(path)


def test_fit_friction_recovers_the_d_of_a_langevin_reference(lj_model, start, tmp_path):
    gamma0 = 5.0
    s = SimulationSettings(friction_per_ps=gamma0, steps=12_000, save_every=25, timestep_fs=4.0, seed=3)
    reference = _dataset_of(simulate(lj_model, str(start), tmp_path / "ref", s, progress=False), tmp_path / "ref.h5")
    result = fit_friction(lj_model, reference, tmp_path / "fit", gammas=(20.0,), window_ps=(1.0, 4.0), run_ps=10.0,
                          equil_ps=2.0, timestep_fs=4.0, save_every_fs=100.0, progress=lambda m: None)
    ref, after = result["reference"], result["after"]
    assert abs(after["d_a2_fs"] - ref["d_a2_fs"]) <= 2 * np.hypot(after["error_a2_fs"], ref["error_a2_fs"])
    assert result["fitted_scale_per_ps"] == pytest.approx(gamma0, rel=0.35)
    assert result["before"]["d_a2_fs"] > 1.5 * ref["d_a2_fs"]  # the default 1/ps is too fast: the fit had work to do
    fitted = read_friction(tmp_path / "fit" / "friction.json")
    assert list(fitted.per_type_langevin().values()) == pytest.approx([result["fitted_scale_per_ps"]] * 2)
    assert {p.name for p in (tmp_path / "fit").iterdir()} >= {"friction.json", "fit.json", "report.md", "d_gamma.png",
                                                             "vacf.png", "runs"}
