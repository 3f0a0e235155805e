"""Readers for GROMACS, LAMMPS and extxyz trajectories: units, topology and bad-input errors."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from cgzoo.errors import InputError
from cgzoo.io import read_atomistic
from cgzoo.units import EV_A_TO_KCAL_MOL_A, KJ_MOL_NM_TO_KCAL_MOL_A

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# --- GROMACS -----------------------------------------------------------------------------------

WATER_GRO = """water
    3
    1SOL     OW    1   0.100   0.200   0.300
    1SOL    HW1    2   0.196   0.200   0.300
    1SOL    HW2    3   0.076   0.293   0.300
   3.00000   3.00000   3.00000
"""

TRICLINIC_NM = np.array([[3.0, 0.0, 0.0], [1.0, 3.2, 0.0], [0.5, 0.7, 3.4]])


def write_trr(path: Path, positions_nm: np.ndarray, forces: np.ndarray | None, box_nm: np.ndarray,
              times_ps: list[float]) -> None:
    """Write one TRR frame per time with the same positions, forces (kJ/mol/nm) and box (nm)."""
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile

    with TRRFile(str(path), "w") as trr:
        for step, time in enumerate(times_ps):
            trr.write(positions_nm, None, forces, box_nm, step, time, 0.0, len(positions_nm))


def gro_positions_nm() -> np.ndarray:
    return np.array([[0.1, 0.2, 0.3], [0.196, 0.2, 0.3], [0.076, 0.293, 0.3]])


@pytest.fixture
def water(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A one-water .gro plus a two-frame TRR with known forces in GROMACS units."""
    gro = tmp_path / "conf.gro"
    gro.write_text(WATER_GRO)
    forces = np.array([[10.0, -20.0, 30.0], [-5.0, 10.0, -15.0], [-5.0, 10.0, -15.0]])
    trr = tmp_path / "traj.trr"
    write_trr(trr, gro_positions_nm(), forces, np.diag([3.0, 3.0, 3.0]), [0.0, 0.002])
    return gro, trr, forces


def test_trr_gro_units(water: tuple[Path, Path, np.ndarray]) -> None:
    gro, trr, forces = water
    with pytest.warns(UserWarning, match="masses are guessed"):
        src = read_atomistic(trr, gro)
    assert src.n_frames == 2
    chunks = list(src.iter_chunks(chunk_size=1))
    assert [len(c) for c in chunks] == [1, 1]
    np.testing.assert_allclose(chunks[0].positions[0], gro_positions_nm() * 10.0, atol=1e-5)
    np.testing.assert_allclose(chunks[1].forces[0], forces * KJ_MOL_NM_TO_KCAL_MOL_A, rtol=1e-6)
    np.testing.assert_allclose(chunks[0].forces[0, 0], [10 / 41.84, -20 / 41.84, 30 / 41.84], rtol=1e-6)
    np.testing.assert_allclose(chunks[0].boxes[0], np.diag([30.0, 30.0, 30.0]), atol=1e-5)
    np.testing.assert_allclose([c.times[0] for c in chunks], [0.0, 2.0], atol=1e-4)
    top = src.topology
    assert list(top.names) == ["OW", "HW1", "HW2"] and list(top.resnames) == ["SOL"] * 3
    np.testing.assert_array_equal(top.molecule_ids, [0, 0, 0])
    np.testing.assert_allclose(top.masses, [15.999, 1.008, 1.008], atol=1e-3)


def test_trr_triclinic_box(tmp_path: Path) -> None:
    gro = tmp_path / "conf.gro"
    gro.write_text(WATER_GRO)
    trr = tmp_path / "tric.trr"
    write_trr(trr, gro_positions_nm(), np.ones((3, 3)), TRICLINIC_NM, [0.0])
    chunk = next(read_atomistic(trr, gro).iter_chunks())
    np.testing.assert_allclose(chunk.boxes[0], TRICLINIC_NM * 10.0, atol=1e-4)


def test_top_settles_are_constraints(tmp_path: Path, water: tuple[Path, Path, np.ndarray]) -> None:
    _, trr, _ = water
    top = tmp_path / "water.top"
    top.write_text("""[ defaults ]
1 2 no 0.5 0.8333
[ atomtypes ]
OW 15.9994 0.0 A 0.315 0.636
HW 1.008 0.0 A 0.0 0.0
[ moleculetype ]
SOL 2
[ atoms ]
1 OW 1 SOL OW 1 -0.834 15.9994
2 HW 1 SOL HW1 1 0.417 1.008
3 HW 1 SOL HW2 1 0.417 1.008
[ settles ]
1 1 0.09572 0.15139
[ system ]
w
[ molecules ]
SOL 1
""")
    src = read_atomistic(trr, top)
    assert sorted(map(tuple, src.topology.bonds.tolist())) == [(0, 1), (0, 2)]
    assert sorted(map(tuple, src.topology.constraints.tolist())) == [(0, 1), (0, 2), (1, 2)]
    np.testing.assert_allclose(src.topology.masses, [15.9994, 1.008, 1.008])


GROMACS_FILES = Path(__file__).parent / "data" / "gromacs"


def test_real_gromacs_tpr_and_trr() -> None:
    """Files written by GROMACS 2022 itself (see tests/data/gromacs/README.md)."""
    src = read_atomistic(GROMACS_FILES / "traj.trr", GROMACS_FILES / "topol.tpr")
    top = src.topology
    np.testing.assert_array_equal(top.molecule_ids, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert sorted(map(tuple, top.constraints.tolist())) == [(1, 2), (4, 5), (6, 7), (6, 8), (7, 8)]
    assert (0, 1) in map(tuple, top.bonds.tolist()) and (1, 2) in map(tuple, top.bonds.tolist())
    np.testing.assert_allclose(top.masses[:3], 12.011)
    (chunk,) = list(src.iter_chunks(10))
    assert len(chunk) == 3 and src.n_frames == 3
    np.testing.assert_allclose(chunk.times, [0.0, 2.5, 5.0])  # steps 0, 5, 10 at dt = 0.5 fs
    # gmx dump shows f[0] = (-600.191, 12.3491, 0.0252) kJ/mol/nm at step 0
    np.testing.assert_allclose(chunk.forces[0, 0], np.array([-600.191, 12.3491, 0.0252032]) / 41.84, rtol=1e-4)
    np.testing.assert_allclose(chunk.boxes[0], np.eye(3) * 20.0)
    np.testing.assert_allclose(chunk.positions[0, 0], [1.0, 1.0, 1.0], atol=1e-4)


LAMMPS_FILES = Path(__file__).parent / "data" / "lammps"


def test_real_lammps_data_and_dump() -> None:
    """A dump written by LAMMPS itself (units real; see tests/data/lammps/README.md)."""
    src = read_atomistic(LAMMPS_FILES / "traj.dump", LAMMPS_FILES / "data.lmp", lammps_units="real", timestep_fs=1.0)
    np.testing.assert_array_equal(src.topology.molecule_ids, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(src.topology.masses, [12.011, 15.999, 12.011, 12.011, 15.999, 12.011])
    (chunk,) = list(src.iter_chunks(10))
    assert len(chunk) == 3
    np.testing.assert_allclose(chunk.times, [0.0, 5.0, 10.0])
    np.testing.assert_allclose(chunk.forces[0, 0], [-57.3017, -4.7717, 0.00374656], rtol=1e-5)  # kcal/mol/Å as dumped
    np.testing.assert_allclose(chunk.forces[0].sum(axis=0), 0.0, atol=1e-3)  # Newton's third law
    np.testing.assert_allclose(np.diag(chunk.boxes[0]), [20.0, 20.0, 20.0])


# --- LAMMPS ------------------------------------------------------------------------------------

LAMMPS_DATA = """two triatomics

6 atoms
4 bonds
2 atom types
1 bond types

-5.0 15.0 xlo xhi
0.0 20.0 ylo yhi
0.0 20.0 zlo zhi

Masses

1 12.011
2 15.999

Atoms # full

4 2 1 0.0 5.0 5.0 5.0
1 1 1 0.0 1.0 1.0 1.0
2 1 2 0.0 2.2 1.1 1.0
3 1 1 0.0 3.3 1.8 1.2
5 2 2 0.0 6.1 5.3 5.2
6 2 1 0.0 7.4 5.9 5.0

Bonds

1 1 1 2
2 1 2 3
3 1 4 5
4 1 5 6
"""

#: id -> (x, y, z, fx, fy, fz); written to the dump out of id order on purpose.
DUMP_ATOMS = {
    1: (1.0, 1.0, 1.0, -57.3, -4.7, 0.0),
    2: (2.2, 1.1, 1.0, 66.8, 10.8, 1.7),
    3: (3.3, 1.8, 1.2, -9.5, -6.0, -1.7),
    4: (5.0, 5.0, 5.0, -81.1, -22.1, -14.7),
    5: (6.1, 5.3, 5.2, 159.8, 58.4, 2.6),
    6: (7.4, 5.9, 5.0, -78.6, -36.2, 12.0),
}


def write_dump(path: Path, steps: list[int], atoms: dict[int, tuple[float, ...]] = DUMP_ATOMS) -> None:
    """A LAMMPS custom dump (id type x y z fx fy fz) with the box of ``LAMMPS_DATA``."""
    lines = []
    for step in steps:
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(atoms)),
                  "ITEM: BOX BOUNDS pp pp pp", "-5.0 15.0", "0.0 20.0", "0.0 20.0",
                  "ITEM: ATOMS id type x y z fx fy fz"]
        lines += [f"{i} 1 " + " ".join(map(str, atoms[i])) for i in sorted(atoms, reverse=True)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("units", "force_factor"), [("real", 1.0), ("metal", EV_A_TO_KCAL_MOL_A)])
def test_lammps_units(tmp_path: Path, units: str, force_factor: float) -> None:
    """Forces in the style's units, times from the given time step."""
    data, dump = tmp_path / "system.data", tmp_path / "traj.lammpstrj"
    data.write_text(LAMMPS_DATA)
    write_dump(dump, [0, 10, 20])
    src = read_atomistic(dump, data, lammps_units=units, timestep_fs=1.0)
    top = src.topology
    np.testing.assert_array_equal(top.molecule_ids, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(top.masses, [12.011, 15.999, 12.011, 12.011, 15.999, 12.011])
    assert sorted(map(tuple, top.bonds.tolist())) == [(0, 1), (1, 2), (3, 4), (4, 5)]
    assert top.constraints.shape == (0, 2)
    chunk = next(src.iter_chunks())
    table = np.array([DUMP_ATOMS[i] for i in range(1, 7)])
    np.testing.assert_allclose(chunk.forces[1], table[:, 3:] * force_factor, rtol=1e-6)
    # MDAnalysis moves the box origin (xlo, ylo, zlo) = (-5, 0, 0) to zero.
    np.testing.assert_allclose(chunk.positions[0], table[:, :3] + [5.0, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(chunk.boxes[0], np.diag([20.0, 20.0, 20.0]))
    np.testing.assert_allclose(chunk.times, [0.0, 10.0, 20.0])


def test_lammps_timestep_and_bad_units(tmp_path: Path) -> None:
    data, dump = tmp_path / "system.data", tmp_path / "traj.dump"
    data.write_text(LAMMPS_DATA)
    write_dump(dump, [0, 10])
    times = next(read_atomistic(dump, data, lammps_units="metal", timestep_fs=2.0).iter_chunks()).times
    np.testing.assert_allclose(times, [0.0, 20.0])
    with pytest.raises(InputError, match="traj.dump.*units 'lj'"):
        read_atomistic(dump, data, lammps_units="lj", timestep_fs=1.0)


# --- extxyz ------------------------------------------------------------------------------------


def make_frames(n_frames: int = 2, pbc: bool = True) -> list:
    """Two water molecules with forces in eV/Å, a triclinic cell and per-atom residue columns."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    frames = []
    for i in range(n_frames):
        atoms = Atoms("OH2OH2", positions=rng.uniform(0, 5, (6, 3)), pbc=pbc,
                      cell=[[6.0, 0, 0], [1.0, 6.5, 0], [0.5, 0.2, 7.0]])
        atoms.new_array("resname", np.array(["SOL"] * 6))
        atoms.new_array("molecule_id", np.array([7, 7, 7, 9, 9, 9]))
        atoms.calc = SinglePointCalculator(atoms, forces=rng.normal(size=(6, 3)), energy=-1.0)
        atoms.info["time"] = 5.0 * i
        frames.append(atoms)
    return frames


def test_extxyz_round_trip(tmp_path: Path) -> None:
    import ase.io

    path = tmp_path / "frames.extxyz"
    frames = make_frames(3)
    ase.io.write(path, frames, format="extxyz")
    src = read_atomistic(path)
    assert src.n_frames == 3
    chunks = list(src.iter_chunks(chunk_size=2))
    assert [len(c) for c in chunks] == [2, 1]
    np.testing.assert_allclose(chunks[1].forces[0], frames[2].get_forces() * EV_A_TO_KCAL_MOL_A, rtol=1e-6)
    np.testing.assert_allclose(chunks[0].positions[1], frames[1].positions, atol=1e-6)
    np.testing.assert_allclose(chunks[0].boxes[0], frames[0].cell.array)
    np.testing.assert_allclose(np.concatenate([c.times for c in chunks]), [0.0, 5.0, 10.0])
    top = src.topology
    assert list(top.names) == ["O", "H", "H", "O", "H", "H"] and set(top.resnames) == {"SOL"}
    np.testing.assert_array_equal(top.molecule_ids, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(top.masses[:3], [15.999, 1.008, 1.008], atol=1e-3)


# --- bad inputs --------------------------------------------------------------------------------


def test_atom_count_mismatch(tmp_path: Path) -> None:
    gro = tmp_path / "conf.gro"
    gro.write_text(WATER_GRO)
    trr = tmp_path / "four.trr"
    write_trr(trr, np.zeros((4, 3)), np.ones((4, 3)), np.diag([3.0] * 3), [0.0])
    with pytest.raises(InputError, match=r"four\.trr.*4 atoms.*conf\.gro has 3"):
        read_atomistic(trr, gro)


def test_trajectory_without_forces(tmp_path: Path) -> None:
    gro = tmp_path / "conf.gro"
    gro.write_text(WATER_GRO)
    trr = tmp_path / "noforce.trr"
    write_trr(trr, gro_positions_nm(), None, np.diag([3.0] * 3), [0.0])
    with pytest.raises(InputError, match=r"noforce\.trr.*no forces"):
        read_atomistic(trr, gro)

    import ase.io

    frames = make_frames(1)
    frames[0].calc = None
    path = tmp_path / "noforce.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(InputError, match=r"noforce\.xyz.*no forces"):
        read_atomistic(path)


def test_nan_frame(tmp_path: Path) -> None:
    data, dump = tmp_path / "system.data", tmp_path / "nan.lammpstrj"
    data.write_text(LAMMPS_DATA)
    write_dump(dump, [0])
    bad = {**DUMP_ATOMS, 3: (3.3, 1.8, 1.2, float("nan"), -6.0, -1.7)}
    text = dump.read_text()
    write_dump(dump, [10], bad)
    dump.write_text(text + dump.read_text())
    src = read_atomistic(dump, data, lammps_units="real", timestep_fs=1.0)
    with pytest.raises(InputError, match=r"nan\.lammpstrj.*frame 1 has NaN"):
        list(src.iter_chunks())


def test_non_periodic_extxyz(tmp_path: Path) -> None:
    import ase.io

    path = tmp_path / "gas.extxyz"
    ase.io.write(path, make_frames(1, pbc=False), format="extxyz")
    with pytest.raises(InputError, match=r"gas\.extxyz.*not periodic"):
        read_atomistic(path)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "traj.foo"
    odd.write_text("x")
    with pytest.raises(InputError, match=r"traj\.foo.*unknown trajectory suffix"):
        read_atomistic(odd)
    with pytest.raises(InputError, match=r"traj\.foo.*unknown format 'pdf'"):
        read_atomistic(odd, format="pdf")
    with pytest.raises(InputError, match=r"missing\.trr: does not exist"):
        read_atomistic(tmp_path / "missing.trr", odd)
    with pytest.raises(InputError, match=r"missing\.gro: does not exist"):
        read_atomistic(odd, tmp_path / "missing.gro")


def test_native_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.ModuleType("cgzoo.io.native")
    fake.read_native = lambda path, **kw: calls.append((Path(path), kw)) or "source"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cgzoo.io.native", fake)
    (tmp_path / "topology.json").write_text("{}")
    assert read_atomistic(tmp_path) == "source"
    assert read_atomistic(tmp_path / "topology.json", stride=2) == "source"
    assert calls == [(tmp_path, {}), (tmp_path, {"stride": 2})]
