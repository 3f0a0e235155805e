"""Tests for the OpenMM reference-data generator (cgzoo.generate) and its reader (cgzoo.io.native)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import openmm
import pytest
from openmm import unit

from cgzoo.errors import InputError, OutputExistsError
from cgzoo.generate import SYSTEMS, run_generate
from cgzoo.generate.build import build_system
from cgzoo.generate.density import block_average
from cgzoo.generate.geometry import chair_ring, zigzag_chain
from cgzoo.io.native import read_native

#: Tiny runs: molecules per system, chosen so each whole run takes a few seconds.
TINY_N = {"spce-water": 40, "methanol-ua": 30, "hexane-ua": 20, "cyclohexane-ua": 20}
TINY = {"equil_ps": 0.4, "prod_ps": 0.5, "save_every_fs": 100.0, "timestep_fs": 2.0, "seed": 1, "threads": 2}
TINY_FRAMES = 5


def _generate(system: str, out, **overrides):
    kwargs = {**TINY, "n_molecules": TINY_N[system], "progress": False, **overrides}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*cutoff reduced.*")
        return run_generate(system, out, **kwargs)


def _read(path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unfinished.*")
        source = read_native(path)
        chunks = list(source.iter_chunks(chunk_size=3))
    return source, chunks


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """One complete tiny run per built-in system."""
    root = tmp_path_factory.mktemp("generate")
    return {name: _generate(name, root / name) for name in SYSTEMS}


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_output_readable_by_mdanalysis_ase_and_read_native(tiny_runs, system):
    import ase.io
    import MDAnalysis as mda

    out = tiny_runs[system]
    n_atoms = TINY_N[system] * SYSTEMS[system].molecule.n_sites
    assert (out / "DONE").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        universe = mda.Universe(str(out / "topology.pdb"), str(out / "traj.trr"))
    assert universe.atoms.n_atoms == n_atoms
    assert len(universe.trajectory) == TINY_FRAMES
    assert universe.trajectory.ts.has_forces
    assert len(ase.io.read(out / "topology.pdb")) == n_atoms

    source, chunks = _read(out)
    assert source.n_frames == TINY_FRAMES and source.temperature == pytest.approx(298.15)
    assert [len(c) for c in chunks] == [3, 2]
    positions = np.concatenate([c.positions for c in chunks])
    forces = np.concatenate([c.forces for c in chunks])
    boxes = np.concatenate([c.boxes for c in chunks])
    times = np.concatenate([c.times for c in chunks])
    assert positions.shape == forces.shape == (TINY_FRAMES, n_atoms, 3)
    assert boxes.shape == (TINY_FRAMES, 3, 3)
    assert np.isfinite(positions).all() and np.isfinite(forces).all()
    np.testing.assert_allclose(times, 100.0 * np.arange(1, TINY_FRAMES + 1))
    # Å, not nm: the box edge of a liquid of these sizes is 10-20 Å and molecules are wrapped into it.
    edge = boxes[0, 0, 0]
    assert 8.0 < edge < 25.0
    assert positions.min() > -5.0 and positions.max() < edge + 5.0
    # NVT production: one constant box.
    np.testing.assert_allclose(boxes, np.broadcast_to(boxes[0], boxes.shape))


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_written_forces_are_openmm_forces_in_kcal_per_mol_angstrom(tiny_runs, system):
    out = tiny_runs[system]
    record = json.loads((out / "topology.json").read_text())
    _, chunks = _read(out)
    frame = chunks[0]
    spec = SYSTEMS[system]
    box = frame.boxes[0]
    omm_system = build_system(spec, record["n_molecules"], record["cutoff_A"], box[0, 0])
    context = openmm.Context(
        omm_system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"), {"Threads": "2"}
    )
    context.setPeriodicBoxVectors(*(box * unit.angstrom))
    context.setPositions(frame.positions[0] * unit.angstrom)
    expected = context.getState(getForces=True).getForces(asNumpy=True)
    expected = expected.value_in_unit(unit.kilocalorie_per_mole / unit.angstrom)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(frame.forces[0], expected, atol=1e-4 * scale)


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_topology_matches_system_definition(tiny_runs, system):
    out = tiny_runs[system]
    spec = SYSTEMS[system]
    mol = spec.molecule
    n = TINY_N[system]
    source, _ = _read(out)
    top = source.topology
    assert list(top.names[: mol.n_sites]) == [s.name for s in mol.sites]
    np.testing.assert_allclose(top.masses, np.tile([s.mass for s in mol.sites], n))
    assert set(top.resnames) == {mol.resname}
    np.testing.assert_array_equal(top.molecule_ids, np.repeat(np.arange(n), mol.n_sites))
    assert len(top.bonds) == n * len(mol.bonds)
    assert len(top.constraints) == n * {"spce-water": 3, "methanol-ua": 1}.get(system, 0)
    record = json.loads((out / "topology.json").read_text())
    assert record["status"] == "complete" and record["n_frames"] == TINY_FRAMES
    assert (
        record["units"]["forces"] == "kcal/mol/angstrom"
        and record["trajectory_units"]["forces"] == "kJ/mol/nm"
    )
    density = json.loads((out / "density.json").read_text())
    assert 0.3 < density["density_g_cm3"]["mean"] < 1.3


def test_expected_masses_and_names():
    water = SYSTEMS["spce-water"].molecule
    assert [s.name for s in water.sites] == ["OW", "HW1", "HW2"] and water.resname == "SOL"
    assert water.mass == pytest.approx(18.0154)
    methanol = SYSTEMS["methanol-ua"].molecule
    assert [s.name for s in methanol.sites] == ["C", "O", "H"] and methanol.sites[0].mass == 15.035
    assert sum(s.charge for s in methanol.sites) == pytest.approx(0.0)
    assert [s.name for s in SYSTEMS["hexane-ua"].molecule.sites] == [f"C{i}" for i in range(1, 7)]
    assert SYSTEMS["cyclohexane-ua"].molecule.resname == "CHX"


def test_methanol_constrains_only_the_oh_bond():
    methanol = SYSTEMS["methanol-ua"].molecule
    assert [(c.i, c.j) for c in methanol.constraints] == [(1, 2)]
    for name in ("hexane-ua", "cyclohexane-ua"):
        assert SYSTEMS[name].molecule.constraints == ()


def _bonded_energy_kcal(system_name: str) -> float:
    """Bonded energy (kcal/mol) of one molecule at its template geometry, in a box far larger than the cutoff."""
    spec = SYSTEMS[system_name]
    omm = build_system(spec, 1, 5.0, 50.0)
    for force in omm.getForces():
        force.setForceGroup(0 if isinstance(force, openmm.NonbondedForce) else 1)
    context = openmm.Context(
        omm, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(spec.molecule.coordinates * unit.angstrom + 25.0 * unit.angstrom)
    energy = context.getState(getEnergy=True, groups={1}).getPotentialEnergy()
    return energy.value_in_unit(unit.kilocalorie_per_mole)


def test_alkane_template_is_the_bonded_minimum():
    # All-trans hexane at TraPPE bond length and angle: zero bonds/angles, and trans is the torsion zero.
    assert abs(_bonded_energy_kcal("hexane-ua")) < 1e-6


def test_ring_torsion_energy_matches_trappe_formula():
    from cgzoo.generate.trappe import RING6_TORSION_K
    from cgzoo.units import KB

    coords = SYSTEMS["cyclohexane-ua"].molecule.coordinates
    b0, b1, b2 = coords[1] - coords[0], coords[2] - coords[1], coords[3] - coords[2]
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    phi = math.atan2(np.dot(np.cross(n1, n2), b1 / np.linalg.norm(b1)), np.dot(n1, n2))
    psi = phi - math.pi
    c0, c1, c2, c3 = RING6_TORSION_K
    per_torsion_k = c0 + c1 * math.cos(psi) + c2 * math.cos(2 * psi) + c3 * math.cos(3 * psi)
    # The chair template sits at the TraPPE bond length and angle, so only torsions contribute.
    assert _bonded_energy_kcal("cyclohexane-ua") == pytest.approx(6 * per_torsion_k * KB, rel=1e-6)


def test_geometry_templates():
    ring = chair_ring(6, 1.54, 114.0)
    bonds = np.linalg.norm(ring - np.roll(ring, -1, axis=0), axis=1)
    np.testing.assert_allclose(bonds, 1.54)
    u, v = ring[0] - ring[1], ring[2] - ring[1]
    assert math.degrees(math.acos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))) == pytest.approx(
        114.0
    )
    chain = zigzag_chain(6, 1.54, 114.0)
    np.testing.assert_allclose(np.linalg.norm(np.diff(chain, axis=0), axis=1), 1.54)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    common = {"prod_ps": 0.8, "checkpoint_every": 2}
    full = _generate("spce-water", tmp_path / "full", **common)
    killed = tmp_path / "killed"
    _generate("spce-water", killed, stop_after_frames=5, **common)
    assert not (killed / "DONE").exists()
    progress = json.loads((killed / "progress.json").read_text())
    assert progress["n_frames"] == 4  # frame 5 was written after the last checkpoint and is lost
    # A kill while appending leaves a torn frame behind: it must be cut off on resume.
    with open(killed / "traj.trr", "ab") as fh:
        fh.write(b"\x00torn frame")
    source, _ = _read(killed)
    assert source.n_frames == 4
    _generate("spce-water", killed, **common)
    assert (killed / "DONE").exists()
    resumed, resumed_chunks = _read(killed)
    reference, _ = _read(full)
    assert resumed.n_frames == reference.n_frames == 8
    times = np.concatenate([c.times for c in resumed_chunks])
    np.testing.assert_allclose(np.diff(times), 100.0)
    assert np.all(np.diff(times) > 0)
    assert len(list((killed).glob("checkpoint_*.chk"))) == 1
    rows = (killed / "log.csv").read_text().splitlines()
    steps = [int(r.split(",")[1]) for r in rows[1:]]
    assert steps == sorted(set(steps))  # no duplicated or reordered log rows


def test_complete_output_refused_unless_overwrite(tiny_runs, tmp_path):
    with pytest.raises(OutputExistsError):
        _generate("hexane-ua", tiny_runs["hexane-ua"])
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError):
        _generate("hexane-ua", foreign)
    _generate("hexane-ua", foreign, overwrite=True, prod_ps=0.2)
    assert (foreign / "DONE").exists() and (foreign / "notes.txt").read_text() == "keep me"


def test_resume_with_other_options_refused(tmp_path):
    out = tmp_path / "run"
    _generate("methanol-ua", out, stop_after_frames=1, checkpoint_every=1)
    with pytest.raises(InputError, match="different options"):
        _generate("methanol-ua", out, temperature=310.0)


def test_bad_arguments_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown system"):
        run_generate("argon", tmp_path / "x")
    with pytest.raises(InputError, match="multiple of timestep"):
        _generate("spce-water", tmp_path / "y", save_every_fs=3.0)


def test_read_native_errors_name_the_file(tiny_runs, tmp_path):
    with pytest.raises(InputError, match="topology.json"):
        read_native(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    record = json.loads((tiny_runs["spce-water"] / "topology.json").read_text())
    (broken / "topology.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="traj.trr"):
        read_native(broken)
    for key in ("names", "resnames", "resids", "masses", "molecule_ids", "elements", "charges"):
        record[key] = record[key][:-3]
    for key in ("bonds", "constraints"):
        record[key] = [pair for pair in record[key] if max(pair) < len(record["names"])]
    (broken / "topology.json").write_text(json.dumps(record))
    (broken / "traj.trr").write_bytes((tiny_runs["spce-water"] / "traj.trr").read_bytes())
    (broken / "DONE").write_text("")
    with pytest.raises(InputError, match="atoms per frame"):
        read_native(broken / "topology.json")


def test_unfinished_run_is_readable_with_a_warning(tmp_path):
    out = tmp_path / "partial"
    _generate("cyclohexane-ua", out, stop_after_frames=3, checkpoint_every=2)
    with pytest.warns(UserWarning, match="unfinished"):
        source = read_native(out)
    assert source.n_frames == 2


def test_block_average_white_noise_and_correlated_series():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=4096)
    avg = block_average(noise)
    assert avg.sem == pytest.approx(1.0 / 64.0, rel=0.3)
    correlated = np.repeat(rng.normal(size=256), 16)  # correlation time 16 samples
    assert block_average(correlated).sem > 2.5 * correlated.std() / math.sqrt(len(correlated))


def test_run_killed_before_first_checkpoint_restarts(tiny_runs, tmp_path):
    out = tmp_path / "early"
    out.mkdir()
    record = json.loads((tiny_runs["hexane-ua"] / "topology.json").read_text())
    record.update(status="running", n_frames=None)
    (out / "topology.json").write_text(json.dumps(record))
    (out / "log.csv").write_text("stage,step\n")
    _generate("hexane-ua", out, prod_ps=0.2)
    assert (out / "DONE").exists()
