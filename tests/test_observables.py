"""Observables on synthetic trajectories with known answers, and ``cgzoo evaluate`` end to end on a synthetic run."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cgzoo.data.dataset import CGDataset, CGTopology
from cgzoo.data.splits import block_split
from cgzoo.errors import InputError, OutputExistsError
from cgzoo.evaluate import add_evaluate_parser
from cgzoo.geometry import dihedrals
from cgzoo.observables import bonded, compare, dynamics, registry, structure, thermo
from cgzoo.observables.base import Column, Observable, Settings
from cgzoo.observables.report import evaluate
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.terms import BONDED

EMPTY = {"bonds": np.zeros((0, 2), int), "angles": np.zeros((0, 3), int), "dihedrals": np.zeros((0, 4), int)}


def make_traj(positions: np.ndarray, box: float | np.ndarray, types=None, molecules=None, dt: float = 10.0,
              type_names=("A",), velocities=None, **topology) -> CGTrajectory:
    """A trajectory of (F,N,3) positions in a fixed cubic (or given) box, unit masses."""
    positions = np.asarray(positions, dtype=np.float64)
    f, n = positions.shape[:2]
    cell = np.eye(3) * box if np.ndim(box) == 0 else np.asarray(box, dtype=np.float64)
    return CGTrajectory(
        positions=positions, boxes=np.tile(cell, (f, 1, 1)), times=np.arange(f) * dt,
        bead_types=np.zeros(n, int) if types is None else np.asarray(types),
        type_names=list(type_names), masses=np.ones(n),
        molecule_ids=np.arange(n) if molecules is None else np.asarray(molecules),
        velocities=velocities, unwrapped=True, **{**EMPTY, **topology})


# --- structure ------------------------------------------------------------------------------


def test_ideal_gas_rdf_is_one_for_like_unlike_and_intermolecular_pairs():
    rng = np.random.default_rng(1)
    n, box = 400, 14.0
    traj = make_traj(rng.uniform(0, box, (8, n, 3)), box, types=rng.integers(0, 2, n), molecules=np.arange(n) // 4,
                     type_names=("A", "B"))
    for intermolecular in (False, True):
        g = structure.rdf(traj, 6.9, bins=30, intermolecular=intermolecular)
        assert set(g) == {"A-A", "A-B", "B-B", "all"}
        for key, (r, values) in g.items():
            tail = values[r > 2.0]
            assert abs(tail.mean() - 1.0) < 0.03, (key, intermolecular, tail.mean())
            assert np.abs(tail - 1.0).max() < 0.2


def simple_cubic(a: float = 3.0, m: int = 6, frames: int = 3, jitter: float = 0.04, seed: int = 0) -> CGTrajectory:
    grid = np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing="ij"), -1).reshape(-1, 3) * a
    rng = np.random.default_rng(seed)
    return make_traj(grid + rng.normal(0, jitter, (frames, len(grid), 3)), m * a)


def test_simple_cubic_rdf_peaks_and_coordination_numbers():
    a, traj = 3.0, simple_cubic()
    r, g = structure.rdf(traj, 8.9, bins=300)["A-A"]
    for shell in (a, a * math.sqrt(2), a * math.sqrt(3)):
        window = np.abs(r - shell) < 0.3
        assert abs(r[window][np.argmax(g[window])] - shell) < 0.06
    rho = (traj.n_beads - 1) / traj.boxes[0, 0, 0] ** 3
    dr = r[1] - r[0]
    running = np.cumsum(4 * np.pi * r**2 * g * dr) * rho
    for r_cut, expected in ((3.6, 6), (4.7, 18), (5.6, 26)):
        assert running[np.searchsorted(r, r_cut)] == pytest.approx(expected, abs=0.15)
    assert a + 0.2 < structure.first_minimum(r, g) < a * math.sqrt(2) - 0.2


def test_rdf_refuses_r_max_beyond_half_the_box():
    with pytest.raises(InputError, match="r_max"):
        structure.rdf(simple_cubic(frames=1), 9.5)


def test_square_lattice_triplet_angles_are_90_and_180_degrees():
    a, m = 3.0, 6
    layer = np.stack(np.meshgrid(np.arange(m), np.arange(m), indexing="ij"), -1).reshape(-1, 2) * a
    pos = np.concatenate([layer, np.full((len(layer), 1), 5.0)], axis=1)[None]
    traj = make_traj(pos, np.diag([m * a, m * a, 20.0]))
    theta, p = structure.triplet_angles(traj, r_shell=3.5)
    mass = p * (theta[1] - theta[0])
    deg = np.degrees(theta)
    assert mass.sum() == pytest.approx(1.0)
    assert mass[np.abs(deg - 90) < 1.5].sum() == pytest.approx(2 / 3)
    assert mass[np.abs(deg - 180) < 1.5].sum() == pytest.approx(1 / 3)
    assert structure.triplet_angles(traj, r_shell={"A-A": 3.5})[1] == pytest.approx(p)


# --- bonded -----------------------------------------------------------------------------------


def test_bonded_distributions_of_a_known_geometry_across_the_boundary():
    box = 10.0
    # M-E-E-M zig-zag: bonds 1.5 Å, angles 90°, dihedral −90°; the first bead sits across the boundary.
    chain = np.array([[0.5, 1.0, 1.0], [2.0, 1.0, 1.0], [2.0, 2.5, 1.0], [2.0, 2.5, 2.5]]) - [1.0, 0, 0]
    traj = make_traj(np.mod(chain, box)[None], box, types=[1, 0, 0, 1], molecules=[0] * 4, type_names=("E", "M"),
                     bonds=np.array([[0, 1], [1, 2], [2, 3]]), angles=np.array([[0, 1, 2], [1, 2, 3]]),
                     dihedrals=np.array([[0, 1, 2, 3]]))
    values = {kind: bonded.bonded_values(traj, kind) for kind in BONDED}
    assert set(values["bond"]) == {"E-M", "E-E"} and set(values["angle"]) == {"E-E-M"}
    assert values["bond"]["E-M"] == pytest.approx([1.5, 1.5])
    assert values["bond"]["E-E"] == pytest.approx([1.5])
    assert np.degrees(values["angle"]["E-E-M"]) == pytest.approx([90.0, 90.0])
    b = torch.tensor(np.diff(chain, axis=0))[:, None, :]
    expected = float(dihedrals(b[0], b[1], b[2]))
    assert values["dihedral"]["M-E-E-M"] == pytest.approx([expected])
    assert abs(np.degrees(expected)) == pytest.approx(90.0)
    x, p = bonded.bonded_distributions(traj, "bond")["E-M"]
    assert (p * np.diff(bonded.default_edges("bond", values["bond"]["E-M"]))).sum() == pytest.approx(1.0)
    assert x[np.argmax(p)] == pytest.approx(1.5, abs=0.01)


def test_cis_and_trans_dihedrals():
    cis = np.array([[1.0, 0, 0], [0, 0, 0], [0, 1, 0], [1, 1, 0]])
    trans = np.array([[1.0, 0, 0], [0, 0, 0], [0, 1, 0], [-1, 1, 0]])
    traj = make_traj(np.stack([cis, trans]) + 2.0, 10.0, molecules=[0] * 4, dihedrals=np.array([[0, 1, 2, 3]]))
    assert np.abs(np.degrees(bonded.bonded_values(traj, "dihedral")["A-A-A-A"])) == pytest.approx([0.0, 180.0])


# --- dynamics ---------------------------------------------------------------------------------


def test_ballistic_msd_is_v2_t2_and_constant_velocity_vacf_is_one():
    rng = np.random.default_rng(2)
    direction = rng.normal(size=(50, 3))
    v = 0.01 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    v = np.concatenate([v, -v])  # zero total momentum: no centre-of-mass drift to remove
    t = np.arange(40) * 5.0
    pos = rng.uniform(0, 30, (1, 100, 3)) + t[:, None, None] * v[None]
    traj = make_traj(pos, 30.0, dt=5.0, velocities=np.tile(v, (40, 1, 1)))
    lag, m = dynamics.msd(traj)
    assert m == pytest.approx(0.01**2 * lag**2, rel=1e-9)
    t_v, c = dynamics.vacf(traj)
    assert c == pytest.approx(np.ones_like(c))
    assert dynamics.diffusion_green_kubo(traj) == pytest.approx(0.01**2 * t_v[-1] / 3)


def test_random_walk_diffusion_coefficient():
    rng = np.random.default_rng(3)
    sigma, dt = 0.1, 2.0
    pos = np.cumsum(rng.normal(0, sigma, (300, 400, 3)), axis=0)
    d = dynamics.fit_msd(*dynamics.msd(make_traj(pos, 100.0, dt=dt))).d_a2_fs
    assert d == pytest.approx(sigma**2 / (2 * dt), rel=0.08)
    assert d * dynamics.A2_FS_TO_1E5_CM2_S == pytest.approx(d * 1e4)


def brownian_dimers(frames: int, sigma: float, dt: float = 10.0, seed: int = 0, n_mol: int = 300) -> CGTrajectory:
    """Rigid two-bead molecules whose centres random-walk with steps of ``sigma`` Å per axis: D = σ²/(2 dt) exactly."""
    rng = np.random.default_rng(seed)
    centres = np.cumsum(rng.normal(0, sigma, (frames, n_mol, 3)), axis=0)
    pos = np.repeat(centres, 2, axis=1) + np.tile([[0.5, 0, 0], [-0.5, 0, 0]], (n_mol, 1))
    return make_traj(pos, 100.0, molecules=np.repeat(np.arange(n_mol), 2), dt=dt)


def trapped(frames: int, dt: float = 10.0, seed: int = 1, n: int = 300) -> CGTrajectory:
    """Beads held by harmonic springs at fixed sites (an Ornstein–Uhlenbeck process relaxing in ~5 frames): the MSD
    plateaus, so no window past the first frames is diffusive."""
    rng = np.random.default_rng(seed)
    x = np.zeros((frames, n, 3))
    for f in range(1, frames):
        x[f] = 0.8 * x[f - 1] + rng.normal(0, 0.3, (n, 3))
    return make_traj(x + rng.uniform(0, 100, (n, 3)), 100.0, dt=dt)


def diffusion(reference: CGTrajectory, run: CGTrajectory, window_fs: tuple[float, float] | None = None):
    """The msd observable's reference and run results, the run's metrics and the evaluation's definition."""
    obs = registry.observable_class("msd")()
    settings = Settings(r_max=5.0, bins=10, msd_window_fs=window_fs)
    ref_result = obs.measure(reference, settings)
    settings.reference["msd"] = ref_result
    run_result = obs.measure(run, settings)
    return ref_result, run_result, {**obs.values(run_result), **obs.compare(ref_result, run_result)}, \
        obs.definition(ref_result)


def test_molecular_diffusion_over_one_window_taken_from_the_reference():
    reference, run = brownian_dimers(200, 0.1), brownian_dimers(170, 0.1 * np.sqrt(2), seed=1)  # run D twice the reference's
    ref, fitted, metrics, definition = diffusion(reference, run)
    assert ref.fit.window_fs == pytest.approx((0.2 * 990.0, 0.8 * 990.0)) and fitted.fit.window_fs == ref.fit.window_fs
    assert definition["msd_window_fs"] == ref.fit.window_fs and definition["msd_reference_note"] is None
    assert definition["msd_reference_loglog_slope"] == pytest.approx(1.0, abs=dynamics.SLOPE_TOLERANCE)
    assert ref.fit.d_a2_fs == pytest.approx(0.1**2 / (2 * 10.0), rel=0.1)  # molecular D, not per bead
    assert metrics["diffusion_rel_error"] == pytest.approx(1.0, abs=0.25) and metrics["diffusion_note"] is None
    _, _, given, definition = diffusion(reference, run, window_fs=(100.0, 400.0))
    assert definition["msd_window_fs"] == (100.0, 400.0) and given["msd_fit_window_fs"] == (100.0, 400.0)


def test_a_run_shorter_than_the_window_has_no_diffusion_error():
    _, _, metrics, _ = diffusion(brownian_dimers(200, 0.1), brownian_dimers(100, 0.1))
    assert metrics["diffusion_rel_error"] is None and metrics["D_msd_1e-5_cm2_s"] is None
    assert metrics["diffusion_note"] == ("run: its longest lag, 0.49 ps, does not reach the window's end (0.792 ps)")


def test_a_reference_not_diffusive_in_the_window_gives_no_diffusion_error():
    ref, _, metrics, definition = diffusion(trapped(200), brownian_dimers(200, 0.1))
    assert ref.loglog_slope < 0.5 and "not diffusive" in definition["msd_reference_note"]
    assert metrics["diffusion_rel_error"] is None and metrics["diffusion_note"].startswith("reference: the reference MSD "
                                                                                          "is not diffusive")
    assert metrics["D_msd_1e-5_cm2_s"] is not None  # the run's own D is still reported
    obs = registry.observable_class("msd")()
    assert "not diffusive" in obs.describe(definition)


def test_diffusive_slope_is_shared_with_the_friction_fit():
    lag = np.linspace(10.0, 1000.0, 50)
    assert dynamics.loglog_slope(lag, 3.0 * lag, (100.0, 800.0)) == pytest.approx(1.0)
    assert dynamics.loglog_slope(lag, lag**2, (100.0, 800.0)) == pytest.approx(2.0)
    assert dynamics.is_diffusive(1.0 + 0.9 * dynamics.SLOPE_TOLERANCE)
    assert not dynamics.is_diffusive(1.0 - 1.1 * dynamics.SLOPE_TOLERANCE) and not dynamics.is_diffusive(float("nan"))


def test_pressure_error_is_the_run_minus_the_reference_in_bar():
    from cgzoo.observables.families.thermo import ThermoResult

    obs = registry.observable_class("thermo")()
    errors = obs.compare(ThermoResult(1.0, 300.0), ThermoResult(-249.0, 300.0))
    assert errors["pressure_error_bar"] == pytest.approx(-250.0) and errors["pressure_rel_error"] == pytest.approx(-250.0)
    cells = obs.study_cells({"nvt": ({"pressure_bar": 1.0}, {"pressure_bar": -249.0, **errors})})
    assert cells == {"P_nvt_bar": -249.0, "P_ref_bar": 1.0, "pressure_error_bar": -250.0, "pressure_abs_error_bar": 250.0}
    assert obs.compare(ThermoResult(None, 300.0), ThermoResult(5.0, 300.0))["pressure_error_bar"] is None


def test_msd_skips_lag_pairs_that_straddle_a_gap():
    t = np.concatenate([np.arange(10), np.arange(100, 110)]) * 1.0
    pos = np.zeros((20, 2, 3))
    pos[:, 0, 0], pos[:, 1, 0] = t, -t  # ballistic at 1 Å/fs, so a straddling pair would show a 90 Å jump
    traj = make_traj(pos, 500.0, dt=1.0)
    traj.times = t
    lag, m = dynamics.msd(traj)
    assert m == pytest.approx(lag**2)


# --- comparison, trajectories ---------------------------------------------------------------------


def test_js_divergence_and_relative_error():
    p = np.array([0.2, 0.5, 0.3])
    assert compare.js_divergence(p, 2 * p) == pytest.approx(0.0, abs=1e-12)
    assert compare.js_divergence(np.array([1.0, 0, 0]), np.array([0, 0, 1.0])) == pytest.approx(1.0)
    assert 0 < compare.js_divergence(p, np.array([0.3, 0.4, 0.3])) < 1
    assert compare.relative_error(1.1, 1.0) == pytest.approx(0.1)
    assert compare.relative_error(None, 1.0) is None and compare.relative_error(1.0, 0.0) is None


def test_from_dataset_unwraps_a_bead_crossing_the_boundary(tmp_path):
    frames, box = 12, 10.0
    x = 8.0 + 0.7 * np.arange(frames)
    pos = np.zeros((frames, 2, 3), dtype=np.float32)
    pos[:, 0] = np.stack([np.mod(x, box), np.full(frames, 5.0), np.full(frames, 5.0)], axis=1)
    pos[:, 1] = 2.0
    ds = _dataset(pos, box)
    path = ds.save(tmp_path / "ref.h5")
    traj = CGTrajectory.from_dataset(path)
    assert traj.unwrapped and traj.positions[:, 0, 0] == pytest.approx(x, abs=1e-5)
    assert CGTrajectory.from_dataset(ds, frames=np.array([5, 1, 2])).times == pytest.approx([500, 1000, 2500])
    assert thermo.mean_density(traj) == pytest.approx(2 * 10.0 / 1000 * 1.66054, rel=1e-4)
    assert thermo.mean_pressure(traj) is None


def _dataset(pos: np.ndarray, box: float, types=None, molecules=None, bonds=None, angles=None) -> CGDataset:
    f, n = pos.shape[:2]
    return CGDataset(
        positions=pos.astype(np.float32), forces=np.zeros_like(pos, dtype=np.float32),
        boxes=np.tile(np.eye(3) * box, (f, 1, 1)), times=np.arange(f) * 500.0,
        topology=CGTopology(bead_types=np.zeros(n, int) if types is None else types, type_names=["E", "M"],
                            bead_names=np.array(["B"] * n), masses=np.full(n, 10.0),
                            molecule_ids=np.arange(n) if molecules is None else molecules,
                            bonds=np.zeros((0, 2), int) if bonds is None else bonds,
                            angles=np.zeros((0, 3), int) if angles is None else angles),
        temperature=300.0)


# --- evaluate end to end ----------------------------------------------------------------------


def chain_liquid(frames: int, n_mol: int, box: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unwrapped (F,N,3) positions of bent E-M-E trimers diffusing as rigid bodies, and their velocities (Å/fs)."""
    rng = np.random.default_rng(seed)
    shape = np.array([[-1.2, 0.8, 0.0], [0.0, 0.0, 0.0], [1.2, 0.8, 0.0]])
    centres = np.cumsum(rng.normal(0, 0.3, (frames, n_mol, 3)), axis=0) + rng.uniform(0, box, (n_mol, 3))
    pos = centres[:, :, None, :] + shape + rng.normal(0, 0.05, (frames, n_mol, 3, 3))
    vel = np.repeat(rng.normal(0, 0.005, (frames, n_mol, 1, 3)), 3, axis=2)
    return pos.reshape(frames, -1, 3), vel.reshape(frames, -1, 3)


def write_run(run_dir: Path, frames: int = 30, n_mol: int = 40, box: float = 16.0, type_names=("E", "M"),
              status: str = "complete", seed: int = 5, break_at: int | None = None) -> Path:
    """A ``cgzoo simulate`` output directory per the run spec: traj.traj, run.json, log.csv; from frame ``break_at`` on,
    the last bead of molecule 0 is pulled 4 Å out of its molecule."""
    from ase import Atoms, units
    from ase.io.trajectory import Trajectory

    run_dir.mkdir(parents=True)
    pos, vel = chain_liquid(frames, n_mol, box, seed)
    if break_at is not None:
        pos[break_at:, 2, 0] += 4.0
    n = pos.shape[1]
    names = [type_names[t] for t in np.tile([0, 1, 0], n_mol)]
    with Trajectory(str(run_dir / "traj.traj"), "w") as traj:
        for f in range(frames):
            atoms = Atoms("X" * n, positions=pos[f], cell=np.eye(3) * box, pbc=True, masses=np.full(n, 10.0))
            atoms.set_velocities(vel[f] / units.fs)
            atoms.info["time_fs"] = f * 500.0
            traj.write(atoms)
    bonds = [[3 * m + k, 3 * m + k + 1] for m in range(n_mol) for k in range(2)]
    (run_dir / "run.json").write_text(json.dumps({
        "ensemble": "nvt", "temperature_K": 300.0, "pressure_bar": 1.0, "timestep_fs": 2.0, "steps": frames * 250,
        "save_every": 250, "model": "model.ckpt", "status": status, "bonds": bonds,
        "angles": [[3 * m, 3 * m + 1, 3 * m + 2] for m in range(n_mol)], "dihedrals": [],
        "type_names": list(type_names), "bead_types": names, "molecule_ids": np.repeat(np.arange(n_mol), 3).tolist()}))
    with (run_dir / "log.csv").open("w") as log:
        log.write("step,time_fs,temperature_K,pressure_bar,density_g_cm3,epot_kcal_mol,ekin_kcal_mol,etot_kcal_mol\n")
        for f in range(frames):
            log.write(f"{f * 250},{f * 500.0},{300 + np.sin(f):.3f},{5.0 + f % 3},0.0649,-10,5,-5\n")
    return run_dir


@pytest.fixture
def reference_path(tmp_path) -> Path:
    n_mol, box = 40, 16.0
    pos, _ = chain_liquid(40, n_mol, box, seed=4)
    ds = _dataset(np.mod(pos, box), box, types=np.tile([0, 1, 0], n_mol), molecules=np.repeat(np.arange(n_mol), 3),
                  bonds=np.array([[3 * m + k, 3 * m + k + 1] for m in range(n_mol) for k in range(2)]),
                  angles=np.array([[3 * m, 3 * m + 1, 3 * m + 2] for m in range(n_mol)]))
    return ds.save(tmp_path / "ref.h5")


def test_from_run_reads_the_run_directory(tmp_path):
    traj = CGTrajectory.from_run(write_run(tmp_path / "run"))
    assert traj.n_frames == 30 and traj.type_names == ["E", "M"] and traj.status == "complete"
    assert traj.velocities is not None and np.abs(traj.velocities).max() < 0.05
    assert traj.log["pressure_bar"].shape == (30,) and thermo.mean_pressure(traj) == pytest.approx(6.0, abs=0.05)
    assert compare.is_stable(traj)


def test_from_run_takes_bead_types_from_the_start_dataset(tmp_path, reference_path):
    run = write_run(tmp_path / "run", frames=3)
    settings = json.loads((run / "run.json").read_text())
    del settings["bead_types"], settings["molecule_ids"]
    (run / "run.json").write_text(json.dumps({**settings, "start": f"{reference_path}@0"}))
    traj = CGTrajectory.from_run(run)
    assert traj.bead_types.tolist() == [0, 1, 0] * 40 and traj.molecule_ids.tolist() == np.repeat(np.arange(40), 3).tolist()
    (run / "run.json").write_text(json.dumps({**settings, "start": str(tmp_path / "gone.h5")}))
    with pytest.raises(InputError, match="start structure is unusable"):
        CGTrajectory.from_run(run)


def test_evaluate_writes_metrics_plots_and_report(tmp_path, reference_path):
    runs = {"model": write_run(tmp_path / "run", frames=40),
            "broken": write_run(tmp_path / "bad", frames=6, status="unstable")}
    out = tmp_path / "eval"
    metrics = evaluate(reference_path, runs, out, reference_pressure_bar=4.0)
    for name in ("metrics.json", "metrics.csv", "report.md", "plots/rdf_E-E.png", "plots/rdf_all.png",
                 "plots/bonds.png", "plots/angles.png", "plots/triplet_angles.png", "plots/msd.png",
                 "plots/vacf.png", "plots/thermo.png"):
        assert (out / name).exists(), name
    model = metrics["runs"]["model"]
    for key in ("rdf_error", "bond_js", "angle_js", "triplet_js", "pressure_rel_error",
                "pressure_error_bar", "diffusion_rel_error", "D_gk_1e-5_cm2_s"):
        assert model[key] is not None and math.isfinite(model[key]), key
    # the log's pressure is 5 + (f mod 3) bar: the run is above the 4 bar reference by its mean minus 4
    assert model["pressure_error_bar"] == pytest.approx(np.mean([5.0 + f % 3 for f in range(40)]) - 4.0)
    # one lag window for all, 20–80 % of the reference's longest lag (19 frames × 500 fs), too long for 6 frames
    assert metrics["settings"]["msd_window_fs"] == pytest.approx([1900.0, 7600.0])
    assert metrics["settings"]["msd_reference_note"] is None and model["diffusion_note"] is None
    bad = metrics["runs"]["broken"]
    assert bad["diffusion_rel_error"] is None and "does not reach the window's end (7.6 ps)" in bad["diffusion_note"]
    assert model["stable"] and not metrics["runs"]["broken"]["stable"]
    floor = metrics["floor"]  # the reference's halves against each other: small, but not zero
    assert 0 < floor["rdf_error"] < 5 and 0 <= floor["bond_js"] < 1
    assert model["dihedral_js"] is None
    # NVT in the reference's cell: the density error is zero by construction, shown as "–", not as a rounding residue
    assert model["density_rel_error"] is None and floor["density_rel_error"] is None
    assert json.loads((out / "metrics.json").read_text())["runs"]["model"]["n_frames"] == 40
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["label"] for r in rows] == ["model", "broken"] and float(rows[0]["rdf_error"]) >= 0
    report = (out / "report.md").read_text()
    assert "| model | yes |" in report and "plots/rdf_E-M.png" in report
    assert "| reference split-half (floor) | – |" in report
    assert "over one lag window for the reference and every run, 1.9–7.6 ps" in report and "ΔP (bar)" in report
    with pytest.raises(OutputExistsError):
        evaluate(reference_path, runs, out)


def test_evaluate_draws_a_bar_of_reading_and_measuring_only_when_asked(tmp_path, reference_path, capsys):
    run = write_run(tmp_path / "run", frames=8)
    evaluate(reference_path, {"m": run}, tmp_path / "quiet", show_progress=None)  # stderr is no terminal here
    assert "evaluate" not in capsys.readouterr().err
    evaluate(reference_path, {"m": run}, tmp_path / "asked", show_progress=True)
    err = capsys.readouterr().err
    measured = 4 * len(registry.registered_observables())  # reference, the run, the reference's two halves
    assert "evaluate: reading" in err and "2/2" in err and f"{measured}/{measured}" in err
    assert "observable/s" in err or "s/observable" in err


def test_evaluate_cli_and_clear_input_errors(tmp_path, reference_path, capsys):
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers())
    run = write_run(tmp_path / "run", frames=12)
    args = parser.parse_args(["evaluate", "--reference", str(reference_path), "--run", f"m={run}",
                              "--out", str(tmp_path / "eval"), "--split", "test", "--equil-ps", "1",
                              "--msd-window", "0.5", "2"])
    args.func(args)
    assert "wrote" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["settings"]["msd_window_fs"] == [500.0, 2000.0]
    held_out = block_split(40, (0.8, 0.1, 0.1), n_blocks=10, gap=2, seed=0)["test"]
    assert metrics["reference"]["n_frames"] == len(held_out) and metrics["runs"]["m"]["n_frames"] == 10
    with pytest.raises(InputError, match="run.json does not exist"):
        evaluate(reference_path, {"m": tmp_path}, tmp_path / "e2")
    with pytest.raises(InputError, match="--msd-window must be two increasing lag times"):
        evaluate(reference_path, {"m": run}, tmp_path / "e5", msd_window_fs=(2000.0, 500.0))
    with pytest.raises(InputError, match="run directory does not exist"):
        evaluate(reference_path, {"m": tmp_path / "nowhere"}, tmp_path / "e3")
    other = write_run(tmp_path / "other", frames=4, type_names=("A", "B"))
    with pytest.raises(InputError, match="bead types"):
        evaluate(reference_path, {"m": other}, tmp_path / "e4")
    settings = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**settings, "angles": []}))
    with pytest.raises(InputError, match=r"angle types \[\] differ from the reference's \['E-M-E'\]"):
        evaluate(reference_path, {"m": run}, tmp_path / "e5")


def test_broken_run_files_give_one_line_input_errors(tmp_path):
    run = write_run(tmp_path / "run", frames=3)
    (run / "log.csv").write_text("step,time_fs\n0,0\n")
    with pytest.raises(InputError, match="log lacks columns temperature_K"):
        CGTrajectory.from_run(run)
    (run / "traj.traj").write_bytes(b"not a trajectory")
    with pytest.raises(InputError, match="not a readable ASE trajectory"):
        CGTrajectory.from_run(run)
    (run / "run.json").write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        CGTrajectory.from_run(run)


def test_unstable_run_keeps_its_finite_frames(tmp_path):
    from ase.io.trajectory import Trajectory

    from cgzoo.observables.report import load_run

    run = write_run(tmp_path / "run", frames=5)
    frames = list(Trajectory(str(run / "traj.traj")))
    frames[3].positions[0, 0] = np.nan
    with Trajectory(str(run / "traj.traj"), "w") as traj:
        for atoms in frames:
            traj.write(atoms)
    traj = load_run(run, ["M", "E"])
    assert traj.n_frames == 3 and not compare.is_stable(traj) and "non-finite" in traj.status
    assert traj.type_names == ["M", "E"] and set(traj.bead_types[:3]) == {0, 1} and traj.bead_types[0] == 1


# --- a new observable -------------------------------------------------------------------------


class BoxVolume(Observable[float]):
    """Mean cell volume, the worked example of ``docs/observables.md``."""

    name = "box_volume"
    columns = (Column("volume_A3", "V (Å³)"), Column("volume_rel_error", "ΔV/V"))
    section = "Cell"

    def measure(self, traj: CGTrajectory, settings: Settings) -> float:
        return float(np.mean(np.abs(np.linalg.det(traj.boxes))))

    def values(self, result: float) -> dict[str, Any]:
        return {"volume_A3": result}

    def compare(self, reference: float, run: float) -> dict[str, Any]:
        return {"volume_rel_error": compare.relative_error(run, reference)}

    def plot(self, results: dict[str, float], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        import matplotlib.pyplot as plt

        from cgzoo.observables.plots import save

        fig, ax = plt.subplots()
        ax.bar(list(results), list(results.values()))
        ax.set_ylabel("V (Å³)")
        return [save(fig, plot_dir / "volume.png")]


def test_a_registered_observable_appears_in_every_output(tmp_path, reference_path, monkeypatch):
    monkeypatch.setattr(registry, "OBSERVABLES", dict(registry.OBSERVABLES))
    registry.register_observable(BoxVolume)
    out = tmp_path / "eval"
    evaluate(reference_path, {"model": write_run(tmp_path / "run", frames=8)}, out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reference"]["volume_A3"] == pytest.approx(16.0**3)
    assert metrics["runs"]["model"]["volume_rel_error"] == pytest.approx(0.0, abs=1e-12)
    (row,) = csv.DictReader((out / "metrics.csv").open())
    assert float(row["volume_A3"]) == pytest.approx(16.0**3) and list(row)[-2:] == ["volume_A3", "volume_rel_error"]
    report = (out / "report.md").read_text()
    assert "| V (Å³) | ΔV/V |" in report and "## Cell" in report and "plots/volume.png" in report
    assert (out / "plots" / "volume.png").exists()
    with pytest.raises(ValueError, match="already registered"):
        registry.register_observable(type("Other", (BoxVolume,), {}))


def test_an_enabled_plugin_observable_reaches_evaluate(tmp_path, reference_path, monkeypatch):
    """A user's observable in a plugin module is measured once the user enables the module, never before."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "cgzoo_user_observables.py").write_text(
        "import pathlib\n"
        "from test_observables import BoxVolume\n"
        "pathlib.Path(__file__).with_suffix('.imported').touch()\n"
        "class CellVolume(BoxVolume):\n"
        "    name = 'cell_volume'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.delenv("CGZOO_PLUGINS", raising=False)
    assert "cell_volume" not in [o.name for o in registry.registered_observables()]
    assert not (tmp_path / "plugins" / "cgzoo_user_observables.imported").exists()
    monkeypatch.setenv("CGZOO_PLUGINS", "cgzoo_user_observables")
    names = [o.name for o in registry.registered_observables()]
    assert "cell_volume" in names[len(registry.OBSERVABLES):]  # after the built-ins
    metrics = evaluate(reference_path, {"model": write_run(tmp_path / "run", frames=8)}, tmp_path / "eval")
    assert metrics["reference"]["volume_A3"] == pytest.approx(16.0**3)


def test_a_run_whose_molecule_breaks_is_not_stable(tmp_path, reference_path):
    """Finished and finite is not enough: one stretched bond in the analysed frames makes the run "broken"."""
    ref = CGTrajectory.from_dataset(reference_path)
    from cgzoo.observables.integrity import bond_ranges, broken_frames

    ranges = bond_ranges(ref)
    assert set(ranges) == {"E-M"} and ranges["E-M"][0] < ranges["E-M"][1]
    broken = CGTrajectory.from_run(write_run(tmp_path / "broken", break_at=20))
    assert broken_frames(broken, ranges).tolist() == [False] * 20 + [True] * 10
    assert compare.is_stable(broken) and not compare.is_stable(broken, ranges)
    metrics = evaluate(reference_path, {"ok": write_run(tmp_path / "ok"), "broken": broken.source}, tmp_path / "eval")
    assert metrics["runs"]["ok"]["stable"] and metrics["runs"]["ok"]["broken_frames"] == 0
    assert not metrics["runs"]["broken"]["stable"] and metrics["runs"]["broken"]["outcome"] == "broken"
    assert metrics["runs"]["broken"]["broken_frames"] == 10


def test_density_error_is_none_only_when_a_fixed_cell_keeps_the_reference_density():
    """A fixed cell at the reference's density has no error to report; a varying cell, or another density, has one."""
    from cgzoo.observables.families.density import Density, DensityResult

    density, reference = Density(), DensityResult(1.0, True)
    assert density.compare(reference, DensityResult(1.0 + 1e-16, True)) == {"density_rel_error": None}
    assert density.compare(reference, DensityResult(1.0 + 1e-16, False))["density_rel_error"] == pytest.approx(0.0)
    assert density.compare(reference, DensityResult(1.02, True))["density_rel_error"] == pytest.approx(0.02)


def _legend_labels(monkeypatch) -> dict[str, list[str]]:
    """Legend texts of every axes of each figure saved from now on, by file stem."""
    from matplotlib.figure import Figure

    saved: dict[str, list[str]] = {}
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kw: saved.update(
        {Path(path).stem: [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]}))
    return saved


def test_thermo_and_vacf_plots_show_the_reference_or_say_it_has_none(tmp_path, monkeypatch):
    from cgzoo.observables.families.thermo import Thermo, ThermoResult
    from cgzoo.observables.families.vacf import VACF, VACFResult

    saved = _legend_labels(monkeypatch)
    runs = {"m": CGTrajectory.from_run(write_run(tmp_path / "run", frames=12))}
    metrics = {"runs": {"m": {}}, "settings": {"equil_fs": 0.0}, "reference": {"pressure_bar": 4.0}}
    thermo_results = {"reference": ThermoResult(4.0, 300.0), "m": ThermoResult(5.0, 300.0)}
    Thermo().plot(thermo_results, metrics, runs, tmp_path)
    assert "reference (given)" in saved["thermo"]
    Thermo().plot(thermo_results, {**metrics, "reference": {"pressure_bar": None}}, runs, tmp_path)
    assert "reference: not given (--reference-pressure)" in saved["thermo"]
    lag = np.arange(5) * 10.0
    run = VACFResult(lag, np.exp(-lag / 20.0), 0.01)
    VACF().plot({"reference": None, "m": run}, metrics, runs, tmp_path)
    assert saved["vacf"][0] == "reference: none (its frames hold no velocities)"
    VACF().plot({"reference": run, "m": run}, metrics, runs, tmp_path)
    assert saved["vacf"][0].startswith("reference: D_GK = ") and saved["vacf"][1].startswith("m: D_GK = ")
