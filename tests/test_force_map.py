"""Tests for optimized force maps: consistency, constraint groups, variance reduction, the map CLI and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cgzoo.cli import main
from cgzoo.data.build import force_map_frames
from cgzoo.data.dataset import CGDataset
from cgzoo.data.summary import summarize
from cgzoo.errors import MappingError
from cgzoo.io.base import AtomTopology, FrameChunk
from cgzoo.mapping import CGMapper, load_mapping
from cgzoo.mapping.force_map import ForceCovariance, ForceMapSettings, check_force_map, optimize_force_map

#: A flexible tetramer: beads A (atoms 0, 1) and B (atoms 2, 3) at their centres of mass.
DIMER_YAML = """\
name: tetramer-2bead
force_map: optimized
molecules:
  - name: TET
    residues: [TET]
    beads:
      - {name: A, type: P, atoms: [T1, T2]}
      - {name: B, type: P, atoms: [T3, T4]}
    bonds: [[A, B]]
"""

WATER_YAML = """\
name: water-1bead
force_map: optimized
molecules:
  - name: SOL
    residues: [SOL]
    beads:
      - {name: W, type: W, atoms: [OW, HW1, HW2]}
"""

TET_NAMES, TET_MASSES = ["T1", "T2", "T3", "T4"], [15.0, 14.0, 14.0, 15.0]


def topology(resname: str, names: list[str], masses: list[float], n_mol: int,
             constraints: list[tuple[int, int]] = ()) -> AtomTopology:
    """``n_mol`` copies of a chain molecule, bonded in sequence, with per-molecule ``constraints``."""
    n = len(names)
    offsets = np.arange(n_mol)[:, None, None] * n
    chain = np.array([(i, i + 1) for i in range(n - 1)]).reshape(-1, 2)
    return AtomTopology(
        names=np.array(names * n_mol), resnames=np.array([resname] * n * n_mol),
        resids=np.repeat(np.arange(1, n_mol + 1), n), masses=np.array(masses * n_mol, dtype=float),
        molecule_ids=np.repeat(np.arange(n_mol), n), bonds=(chain[None] + offsets).reshape(-1, 2),
        constraints=(np.array(constraints, dtype=np.int64).reshape(-1, 2)[None] + offsets).reshape(-1, 2),
        source="synthetic.top",
    )


def tetramer_forces(n_frames: int, n_mol: int, seed: int) -> np.ndarray:
    """Unit-variance noise on every atom plus a strong (σ = 10) stretch force of the T2–T3 bond that joins the beads."""
    rng = np.random.default_rng(seed)
    forces = rng.normal(size=(n_frames, n_mol, 4, 3))
    direction = rng.normal(size=(n_frames, n_mol, 3))
    stretch = 10.0 * rng.normal(size=(n_frames, n_mol, 1)) * direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    forces[:, :, 1] += stretch
    forces[:, :, 2] -= stretch
    return forces.reshape(n_frames, n_mol * 4, 3)


def fitted(path: Path, top: AtomTopology, forces: np.ndarray, ridge: float = 1e-4) -> CGMapper:
    """A mapper of ``path`` with its optimized force map fitted on ``forces`` and installed."""
    mapper = CGMapper(load_mapping(path), top)
    stats = ForceCovariance(mapper.layouts)
    stats.add(forces)
    mapper.use_force_map(optimize_force_map(mapper, stats, list(range(len(forces))), ridge))
    return mapper


def mapped_forces(mapper: CGMapper, forces: np.ndarray) -> np.ndarray:
    positions = np.zeros_like(forces)
    boxes = np.tile(np.eye(3) * 50.0, (len(forces), 1, 1))
    return mapper.map_chunk(FrameChunk(positions, forces, boxes, np.arange(len(forces), dtype=float)))[1]


@pytest.fixture
def tetramer_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "tet.yaml"
    path.write_text(DIMER_YAML)
    return path


def test_optimized_map_is_consistent_and_removes_the_bond_stretch_variance(tetramer_yaml):
    top = topology("TET", TET_NAMES, TET_MASSES, 6)
    mapper = fitted(tetramer_yaml, top, tetramer_forces(300, 6, seed=0))
    np.testing.assert_allclose((mapper.force_map @ mapper.position_map.T).toarray(), np.eye(12), atol=1e-10)
    fit = mapper.force_map_fit
    assert fit.variance_by_type()["P"]["removed"] > 0.8  # the stretch (100 of the basic map's ~102) is cancelled
    # out of sample: fresh frames mapped both ways
    fresh = tetramer_forces(300, 6, seed=1)
    basic = CGMapper(load_mapping(tetramer_yaml), top, force_map="basic")
    assert mapped_forces(mapper, fresh).var() < 0.2 * mapped_forces(basic, fresh).var()


def test_no_consistent_perturbation_lowers_the_fitted_variance(tetramer_yaml):
    top = topology("TET", TET_NAMES, TET_MASSES, 5)
    forces = tetramer_forces(200, 5, seed=8)
    lay = fitted(tetramer_yaml, top, forces, ridge=0.0).force_map_fit.layouts[0]
    stats = ForceCovariance(CGMapper(load_mapping(tetramer_yaml), top).layouts)
    stats.add(forces)
    cov = stats.covariance(0)
    position = np.array([[15 / 29, 14 / 29, 0, 0], [0, 0, 14 / 29, 15 / 29]])
    null = np.linalg.svd(position)[2][2:]  # directions d with C d = 0: W + e dᵀ stays consistent
    rng = np.random.default_rng(9)
    for _ in range(20):
        moved = lay.weights + rng.normal(size=(2, 2)) @ null * 0.1
        np.testing.assert_allclose(moved @ position.T, np.eye(2), atol=1e-12)
        assert np.all(np.einsum("ij,jk,ik->i", moved, cov, moved) > lay.variance_optimized)


def test_uncorrelated_equal_noise_keeps_a_map_no_worse_than_basic(tetramer_yaml):
    top = topology("TET", TET_NAMES, TET_MASSES, 4)
    forces = np.random.default_rng(3).normal(size=(400, 16, 3))
    fit = fitted(tetramer_yaml, top, forces).force_map_fit
    for lay in fit.layouts:
        assert np.all(lay.variance_optimized <= lay.variance_basic + 1e-12)


@pytest.mark.parametrize("constraints, equal", [([(0, 1)], (0, 1)), ([(1, 2)], (1, 2))],
                         ids=["inside-a-bead", "crossing-beads"])
def test_constrained_atoms_get_one_weight(tetramer_yaml, constraints, equal):
    top = topology("TET", TET_NAMES, TET_MASSES, 3, constraints=constraints)
    mapper = fitted(tetramer_yaml, top, tetramer_forces(200, 3, seed=2))
    weights = mapper.force_map_fit.layouts[0].weights
    np.testing.assert_allclose(weights[:, equal[0]], weights[:, equal[1]], atol=1e-10)
    np.testing.assert_allclose(weights @ mapper.position_map[:2][:, :4].toarray().T, np.eye(2), atol=1e-10)


def test_a_crossing_constraint_still_refuses_the_basic_map(tetramer_yaml):
    top = topology("TET", TET_NAMES, TET_MASSES, 3, constraints=[(1, 2)])
    with pytest.raises(MappingError, match=r"tet\.yaml: 3 constrained bond\(s\) cross bead boundaries"):
        CGMapper(load_mapping(tetramer_yaml), top, force_map="basic")


def test_rigid_one_bead_molecule_optimized_equals_basic(tmp_path):
    path = tmp_path / "water.yaml"
    path.write_text(WATER_YAML)
    top = topology("SOL", ["OW", "HW1", "HW2"], [15.9994, 1.008, 1.008], 5, constraints=[(0, 1), (0, 2), (1, 2)])
    forces = np.random.default_rng(4).normal(size=(50, 15, 3)) * [[[3.0], [1.0], [1.0]] * 5]
    mapper = fitted(path, top, forces)
    np.testing.assert_allclose(mapper.force_map.toarray(), mapper.basic_force_map.toarray(), atol=1e-12)
    assert mapper.force_map_fit.variance_by_type()["W"]["removed"] == pytest.approx(0.0, abs=1e-12)


def test_beads_inside_one_rigid_group_have_no_consistent_force_map(tetramer_yaml):
    top = topology("TET", TET_NAMES, TET_MASSES, 2, constraints=[(0, 1), (1, 2), (2, 3)])
    mapper = CGMapper(load_mapping(tetramer_yaml), top)
    stats = ForceCovariance(mapper.layouts)
    stats.add(tetramer_forces(20, 2, seed=0))
    with pytest.raises(MappingError, match=r"tet\.yaml: molecule TET: no consistent force map exists"):
        optimize_force_map(mapper, stats, list(range(20)), 1e-4)


TETRAMER_XML = """\
<cg_molecule>
  <name>TET</name> <ident>TET</ident>
  <topology>
    <cg_beads>
      <cg_bead><name>A</name><type>P</type><mapping>M1</mapping><beads>1:TET:T1 1:TET:T2</beads></cg_bead>
      <cg_bead><name>B</name><type>P</type><mapping>M2</mapping><beads>1:TET:T3 1:TET:T4</beads></cg_bead>
    </cg_beads>
  </topology>
  <maps>
    <map><name>M1</name><weights>15 14</weights></map>
    <map><name>M2</name><weights>14 15</weights></map>
  </maps>
</cg_molecule>
"""


def test_votca_mapping_gets_an_optimized_map_by_override(tetramer_yaml, tmp_path):
    xml = tmp_path / "tet.xml"
    xml.write_text(TETRAMER_XML)
    top = topology("TET", TET_NAMES, TET_MASSES, 3)
    assert CGMapper(load_mapping(xml), top).force_map_kind == "basic"
    mapper = CGMapper(load_mapping(xml), top, force_map="optimized")
    stats = ForceCovariance(mapper.layouts)
    stats.add(tetramer_forces(50, 3, seed=10))
    mapper.use_force_map(optimize_force_map(mapper, stats, list(range(50)), 1e-4))
    np.testing.assert_allclose(mapper.force_map.toarray(), fitted(tetramer_yaml, top, tetramer_forces(50, 3, seed=10))
                               .force_map.toarray(), atol=1e-12)


def test_check_force_map_rejects_inconsistent_maps():
    position = sp.csr_matrix(np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]))
    basic = sp.csr_matrix(np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
    alone = np.arange(4)
    check_force_map(basic, position, alone, "m.yaml")
    with pytest.raises(MappingError, match=r"m\.yaml: force map is inconsistent .*\|W Cᵀ - I\| = 1"):
        check_force_map(2 * basic, position, alone, "m.yaml")
    skewed = sp.csr_matrix(np.array([[1.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
    check_force_map(skewed, position, alone, "m.yaml")  # consistent while atoms 0 and 1 are free
    with pytest.raises(MappingError, match=r"m\.yaml: force map weights differ by 1 within a constraint group"):
        check_force_map(skewed, position, np.array([0, 0, 2, 3]), "m.yaml")


def test_unfitted_optimized_mapper_refuses_to_map(tetramer_yaml):
    mapper = CGMapper(load_mapping(tetramer_yaml), topology("TET", TET_NAMES, TET_MASSES, 2))
    assert mapper.needs_force_map and mapper.force_map_provenance() == {"kind": "optimized"}
    with pytest.raises(MappingError, match=r"optimized force map has not been fitted yet"):
        mapped_forces(mapper, np.zeros((1, 8, 3)))


def test_force_map_frames_use_the_training_split_and_are_bounded():
    frames = force_map_frames(1000, ForceMapSettings(max_frames=50))
    assert len(frames) == 50 and np.all(np.diff(frames) > 0)
    from cgzoo.data.splits import DEFAULT_SPLIT, block_split

    assert set(frames) <= set(block_split(1000, **DEFAULT_SPLIT)["train"].tolist())
    np.testing.assert_array_equal(force_map_frames(7, ForceMapSettings(frames="all")), np.arange(7))


def test_force_map_key_is_hashed_only_when_optimized(tetramer_yaml, tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text(DIMER_YAML.replace("force_map: optimized\n", ""))
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text(DIMER_YAML.replace("force_map: optimized", "force_map: basic"))
    assert load_mapping(plain).sha256 == load_mapping(explicit).sha256 != load_mapping(tetramer_yaml).sha256
    assert "force_map" not in load_mapping(plain).canonical()


def test_invalid_force_map_in_yaml_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(DIMER_YAML.replace("force_map: optimized", "force_map: optimised"))
    with pytest.raises(MappingError, match=r"bad\.yaml: force_map: must be 'basic' or 'optimized'") as err:
        load_mapping(path)
    assert "\n" not in str(err.value)


def write_extxyz(path: Path, top: AtomTopology, forces: np.ndarray) -> None:
    """An extxyz trajectory of ``top`` (names, residues, molecules) with ``forces`` in kcal/(mol·Å)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from cgzoo.units import EV_A_TO_KCAL_MOL_A

    rng = np.random.default_rng(5)
    frames = []
    for f in forces:
        centres = np.repeat(rng.uniform(5, 25, (len(top.names) // 4, 3)), 4, axis=0)
        atoms = Atoms(symbols=["C"] * len(top.names), positions=centres + np.tile(np.arange(4)[:, None] * [1.5, 0, 0],
                                                                                 (len(top.names) // 4, 1)),
                      cell=np.eye(3) * 30.0, pbc=True, masses=top.masses)
        atoms.new_array("name", top.names.astype(str))
        atoms.new_array("resname", top.resnames.astype(str))
        atoms.new_array("resid", top.resids)
        atoms.new_array("molecule_id", top.molecule_ids)
        atoms.calc = SinglePointCalculator(atoms, forces=f / EV_A_TO_KCAL_MOL_A)
        frames.append(atoms)
    write(path, frames, format="extxyz")


def test_map_cli_with_optimized_force_map_records_it(tetramer_yaml, tmp_path):
    top = topology("TET", TET_NAMES, TET_MASSES, 4)
    forces = tetramer_forces(30, 4, seed=6)
    traj = tmp_path / "tet.extxyz"
    write_extxyz(traj, top, forces)
    plain = tmp_path / "plain.yaml"
    plain.write_text(DIMER_YAML.replace("force_map: optimized\n", ""))
    out = tmp_path / "cg.h5"
    args = ["map", "--traj", str(traj), "--mapping", str(plain), "--out", str(out), "--quiet", "--force-map",
            "optimized", "--force-map-frames", "all", "--force-map-max-frames", "20", "--force-map-ridge", "0.01"]
    assert main(args) == 0
    ds = CGDataset.load(out)
    record = ds.provenance["force_map"]
    assert record["kind"] == "optimized" and record["ridge"] == 0.01
    assert record["frames"] == force_map_frames(30, ForceMapSettings(frames="all", max_frames=20)).tolist()
    weights = np.array(record["molecules"][0]["weights"])
    assert record["molecules"][0]["atoms"] == TET_NAMES and weights.shape == (2, 4)
    expected = np.einsum("bi,fmix->fmbx", weights, forces.reshape(30, 4, 4, 3)).reshape(30, 8, 3)
    np.testing.assert_allclose(ds.forces, expected, rtol=1e-5, atol=1e-4)
    assert record["variance_by_type"]["P"]["removed"] > 0.5
    assert summarize(ds)["force_map"].startswith("optimized on 20 frames, ridge 0.01; variance removed P ")


def test_map_cli_names_the_trajectory_when_it_is_too_short_for_the_training_split(tetramer_yaml, tmp_path, capsys):
    traj = tmp_path / "tet.extxyz"
    write_extxyz(traj, topology("TET", TET_NAMES, TET_MASSES, 2), tetramer_forces(4, 2, seed=7))
    assert main(["map", "--traj", str(traj), "--mapping", str(tetramer_yaml), "--out", str(tmp_path / "x.h5"),
                 "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "tet.extxyz: split:" in err and "(--force-map-frames all)" in err and err.count("\n") == 1


def test_map_cli_rejects_a_negative_ridge(tetramer_yaml, tmp_path, capsys):
    top = topology("TET", TET_NAMES, TET_MASSES, 2)
    traj = tmp_path / "tet.extxyz"
    write_extxyz(traj, top, tetramer_forces(4, 2, seed=7))
    assert main(["map", "--traj", str(traj), "--mapping", str(tetramer_yaml), "--out", str(tmp_path / "x.h5"),
                 "--quiet", "--force-map-ridge", "-1"]) != 0
    assert "ridge: must be >= 0" in capsys.readouterr().err
