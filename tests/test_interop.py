"""Trajectories other tools read: dataset ⇄ extxyz round trips, `cgzoo info`/`convert`/`map` on cgzoo's extxyz, the
MDAnalysis Universe of a dataset or run, and the topology.data + traj.dcd pair of datasets and simulate runs."""

from __future__ import annotations

import json
from pathlib import Path

import MDAnalysis as mda
import numpy as np
import pytest
from ase.io import read, write
from conftest import make_dataset

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset, CGTopology
from cgzoo.data.interop import universe, write_dataset_pair
from cgzoo.data.start import load_start
from cgzoo.errors import InputError
from cgzoo.md import SimulationSettings, simulate
from cgzoo.models import CGModel
from cgzoo.priors import build_prior
from cgzoo.testing.cases import physics_prior
from cgzoo.testing.systems import TYPES, separated_chains

DEFAULT = Path(__file__).parents[1] / "datasets" / "default" / "spce-water_1bead_com.h5"
#: what ASE's extxyz keeps of a value: 8 decimals (positions in Å; forces in eV/Å, so ×23.06 in kcal/mol/Å)
XYZ_DECIMALS = 5.1e-9
#: one unit in the last place of a float32 value, relative (datasets store frames in float32)
FLOAT32_BIT = 2.0**-23


def triclinic_dataset() -> CGDataset:
    """The shared 3-bead chain dataset in a triclinic cell, with dihedrals and a provenance ASE would mangle."""
    ds = make_dataset(n_frames=5)
    ds.boxes = ds.boxes.copy()
    ds.boxes[:, 1, 0], ds.boxes[:, 2, 0], ds.boxes[:, 2, 1] = 2.0, -1.5, 1.0
    ds.topology.dihedrals = np.array([[0, 1, 2, 3]])
    ds.provenance["mapping"]["text"] = 'beads: "A"\npath: C:\\data\\run\tend é'
    return ds


def assert_same_topology(a: CGTopology, b: CGTopology) -> None:
    assert a.type_names == b.type_names
    for field in ("bead_types", "bead_names", "masses", "molecule_ids", "bonds", "angles", "dihedrals"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_dataset_extxyz_dataset_round_trip_through_the_commands(tmp_path):
    ds = triclinic_dataset()
    ds.save(tmp_path / "a.h5")
    assert main(["convert", str(tmp_path / "a.h5"), str(tmp_path / "a.extxyz")]) == 0
    assert main(["convert", str(tmp_path / "a.extxyz"), str(tmp_path / "b.h5")]) == 0
    back, original = CGDataset.load(tmp_path / "b.h5"), CGDataset.load(tmp_path / "a.h5")
    assert_same_topology(back.topology, original.topology)
    assert back.temperature == original.temperature and back.provenance == original.provenance
    assert np.array_equal(back.boxes, original.boxes) and np.array_equal(back.times, original.times)
    # frames agree to the last bit of the float32 file, or to the 8 decimals of the text where those are fewer
    np.testing.assert_allclose(back.positions, original.positions, rtol=FLOAT32_BIT, atol=XYZ_DECIMALS)
    np.testing.assert_allclose(back.forces, original.forces, rtol=FLOAT32_BIT, atol=XYZ_DECIMALS * 23.1)
    # ASE itself reads the file: beads, types, molecules and forces (eV/Å) where ASE users look for them
    first = read(tmp_path / "a.extxyz", index=0)
    assert list(first.arrays["bead_type"][:3]) == ["E", "M", "E"] and first.arrays["molecule_id"][3] == 1
    assert first.get_forces().shape == (12, 3)


def test_info_reads_cgzoo_extxyz_and_refuses_one_without_forces(tmp_path, capsys):
    make_dataset().save(tmp_path / "a.extxyz")
    assert main(["info", "--json", str(tmp_path / "a.extxyz")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["beads"], info["molecules"], info["bonds"], info["angles"]) == (12, 4, 8, 4)
    assert info["temperature_K"] == 298.15 and set(info["types"]) == {"E", "M"}
    (tmp_path / "bare.extxyz").write_text('1\nLattice="9 0 0 0 9 0 0 0 9" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
                                          "X 0 0 0\n")
    assert main(["info", str(tmp_path / "bare.extxyz")]) == 2
    assert "bare.extxyz: trajectory has no forces (frame 0" in capsys.readouterr().err


def test_map_reads_bead_names_molecules_and_bonds_of_cgzoo_extxyz(tmp_path):
    ds = make_dataset(n_frames=3)
    ds.save(tmp_path / "cg.extxyz")
    (tmp_path / "one.yaml").write_text("name: chain_1bead\nmolecules:\n  - name: CH\n    residues: [UNK]\n"
                                       "    beads:\n      - {name: P, type: P, atoms: [A, B, C]}\n")
    out = tmp_path / "one.h5"
    assert main(["map", "--traj", str(tmp_path / "cg.extxyz"), "--mapping", str(tmp_path / "one.yaml"),
                 "--out", str(out), "--quiet"]) == 0
    mapped = CGDataset.load(out)
    assert mapped.n_beads == 4 and mapped.topology.type_names == ["P"]
    # the chain's bead forces sum into the molecule's (to the 8 decimals of the extxyz)
    assert np.allclose(mapped.forces, ds.forces.reshape(3, 4, 3, 3).sum(axis=2), atol=1e-5)


def test_a_cgzoo_extxyz_starts_md_with_its_bead_types_molecules_and_bonded_lists(tmp_path):
    """``--start data.extxyz`` reads the frame asked for (last by default) with the first frame's topology record; an
    extxyz without the record starts with no bonds, as any ASE-readable file."""
    ds = triclinic_dataset()
    ds.save(tmp_path / "a.extxyz")
    for start, frame in ((str(tmp_path / "a.extxyz"), -1), (f"{tmp_path / 'a.extxyz'}@1", 1)):
        atoms, bonded = load_start(start)
        assert np.allclose(atoms.positions, ds.positions[frame], atol=1e-6)
        for field in ("bonds", "angles", "dihedrals"):
            assert np.array_equal(bonded[field], getattr(ds.topology, field)), field
        assert list(atoms.arrays["bead_type"]) == [ds.topology.type_names[t] for t in ds.topology.bead_types]
        assert np.array_equal(atoms.arrays["molecule_id"], ds.topology.molecule_ids)
    frames = read(tmp_path / "a.extxyz", index=":")
    del frames[0].info["cgzoo"]
    write(tmp_path / "bare.extxyz", frames)
    _, bonded = load_start(str(tmp_path / "bare.extxyz"))
    assert all(len(v) == 0 for v in bonded.values())


def test_universe_of_a_dataset_has_names_types_masses_bonds_box_and_forces(tmp_path):
    ds = triclinic_dataset()
    ds.save(tmp_path / "a.h5")
    u = universe(tmp_path / "a.h5")
    top = ds.topology
    assert list(u.atoms.names) == list(top.bead_names)
    assert list(u.atoms.types) == [top.type_names[t] for t in top.bead_types]
    assert np.allclose(u.atoms.masses, top.masses) and list(u.atoms.resids) == list(top.molecule_ids + 1)
    assert sorted(map(tuple, u.bonds.indices.tolist())) == sorted(map(tuple, top.bonds.tolist()))
    assert len(u.angles) == len(top.angles) and u.dihedrals.indices.tolist() == top.dihedrals.tolist()
    u.trajectory[2]
    assert np.allclose(u.atoms.positions, ds.positions[2])
    assert np.allclose(u.atoms.forces, ds.forces[2] * 4.184, rtol=1e-6)
    assert np.allclose(u.trajectory.ts.triclinic_dimensions, ds.boxes[2], atol=1e-4)


def check_pair(directory: Path, top: CGTopology, positions: np.ndarray, boxes: np.ndarray) -> mda.Universe:
    """Open ``topology.data`` + ``traj.dcd`` with MDAnalysis and compare them with what was written."""
    u = mda.Universe(str(directory / "topology.data"), str(directory / "traj.dcd"))
    assert u.atoms.n_atoms == top.n_beads and u.trajectory.n_frames == len(positions)
    assert list(u.atoms.types) == [str(t + 1) for t in top.bead_types]  # LAMMPS types: 1… in type_names order
    assert np.allclose(u.atoms.masses, top.masses)
    assert list(u.atoms.resids) == list(top.molecule_ids + 1)
    for field in ("bonds", "angles", "dihedrals"):  # a data file without a section gives MDAnalysis no such attribute
        found = getattr(u, field).indices.tolist() if hasattr(u, field) else []
        assert sorted(map(tuple, found)) == sorted(map(tuple, getattr(top, field).tolist())), field
    for k, ts in enumerate(u.trajectory):
        assert np.allclose(ts.triclinic_dimensions, boxes[k], atol=1e-4)
        assert np.allclose(u.atoms.positions, positions[k], atol=1e-4)
    return u


def test_convert_to_lammps_dcd_pair_opens_in_mdanalysis(tmp_path):
    ds = triclinic_dataset()
    ds.save(tmp_path / "a.h5")
    assert main(["convert", str(tmp_path / "a.h5"), str(tmp_path / "pair"), "--to", "lammps+dcd"]) == 0
    check_pair(tmp_path / "pair", ds.topology, ds.positions, ds.boxes)
    assert main(["convert", str(tmp_path / "a.h5"), str(tmp_path / "pair"), "--to", "lammps+dcd"]) == 2
    # the type names ride along as Masses comments (OVITO and VMD name the types from them), the atom style after
    # Atoms; LAMMPS itself reads the file as written, bonds and all
    text = (tmp_path / "pair" / "topology.data").read_text()
    masses = text.split("Masses")[1].split("Atoms")[0].split("\n")
    assert [line.split("#")[1].strip() for line in masses if line.strip()] == list(ds.topology.type_names)
    assert "Atoms  # molecular" in text
    from cgzoo.engines.lammps import _load_lammps

    lmp = _load_lammps().lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        lmp.commands_list(["units real", "atom_style molecular", f"read_data {tmp_path / 'pair' / 'topology.data'}"])
        assert lmp.get_natoms() == ds.topology.n_beads
        assert lmp.extract_global("nbonds") == len(ds.topology.bonds)
    finally:
        lmp.close()


def test_a_type_with_two_masses_cannot_be_a_lammps_data_file(tmp_path):
    ds = make_dataset()
    ds.topology.masses = ds.topology.masses.copy()
    ds.topology.masses[0] = 30.0
    with pytest.raises(InputError, match="bead type E has beads of different masses"):
        write_dataset_pair(ds, tmp_path / "pair")
    assert not (tmp_path / "pair").exists()


def chains_start(path: Path) -> CGDataset:
    """Eight A-B-B-A chains (bonds, angles, dihedrals) as a one-frame dataset to start MD from."""
    system = separated_chains(1)
    n = len(system["bead_types"])
    ds = CGDataset(positions=system["positions"], forces=np.zeros((1, n, 3)), boxes=system["boxes"], times=np.zeros(1),
                   topology=CGTopology(bead_types=system["bead_types"], type_names=list(TYPES),
                                       bead_names=np.array(["A1", "B1", "B2", "A2"] * (n // 4)),
                                       masses=np.where(system["bead_types"] == 0, 15.0, 14.0),
                                       molecule_ids=system["molecule_ids"], bonds=system["bonds"], angles=system["angles"],
                                       dihedrals=system["dihedrals"]))
    ds.save(path)
    return ds


@pytest.mark.parametrize("case", ["water", "chains"])
def test_a_simulate_run_writes_a_pair_mdanalysis_opens(tmp_path, case):
    if case == "water":
        start, top = f"{DEFAULT}@0", CGDataset.load(DEFAULT, frames=np.array([0])).topology
        prior = build_prior({"class_path": "lennard_jones", "init_args": {
            "type_names": ["W"], "cutoff": 6.0, "params": {"W-W": {"sigma": 3.0, "epsilon": 0.2}},
            "smoothing": "switch", "r_switch": 5.0}})
    else:
        start, prior = str(tmp_path / "chains.h5"), physics_prior()
        top = chains_start(tmp_path / "chains.h5").topology
    out = tmp_path / "run"
    simulate(CGModel(prior, None, mode="prior_only"), start, out,
             SimulationSettings(ensemble="nvt", steps=6, save_every=2, timestep_fs=1.0, engine="ase"), progress=False)
    frames = read(out / "traj.traj", index=":")
    positions, boxes = np.stack([f.positions for f in frames]), np.stack([f.cell.array for f in frames])
    check_pair(out, top, positions, boxes)
    u = universe(out)  # a run records bead types, not the mapping's names: its names are its types
    assert list(u.atoms.types) == list(u.atoms.names) == [top.type_names[t] for t in top.bead_types]
    assert np.allclose(u.atoms.masses, top.masses) and len(u.bonds) == len(top.bonds)
    # the run's extxyz carries its bonded topology and model forces, so `cgzoo info` reads it as a dataset
    assert main(["info", str(out / "traj.extxyz")]) == 0
    assert_same_topology(CGDataset.load(out / "traj.extxyz").topology,
                         CGTopology(**{**top.__dict__, "bead_names": np.array([top.type_names[t] for t in top.bead_types])}))
