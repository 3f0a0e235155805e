"""Fault suite for the atomistic readers: a LAMMPS dump's units and time step must be given, and are applied exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_io_readers import DUMP_ATOMS, LAMMPS_DATA, make_frames, write_dump

from cgzoo.cli import main
from cgzoo.errors import InputError
from cgzoo.io import read_atomistic
from cgzoo.units import EV_A_TO_KCAL_MOL_A

pytestmark = [pytest.mark.faults, pytest.mark.filterwarnings("ignore::UserWarning")]

MAPPING = Path(__file__).parents[1] / "datasets" / "mappings" / "spce-water_1bead_com.yaml"


@pytest.fixture
def lammps(tmp_path: Path) -> tuple[Path, Path]:
    """A LAMMPS data file and a three-frame dump (steps 0, 10, 20) of it."""
    data, dump = tmp_path / "system.data", tmp_path / "traj.lammpstrj"
    data.write_text(LAMMPS_DATA)
    write_dump(dump, [0, 10, 20])
    return data, dump


def test_metal_and_real_dumps_differ_by_the_ev_factor_and_times_follow_the_step(lammps):
    data, dump = lammps
    real = next(read_atomistic(dump, data, lammps_units="real", timestep_fs=1.0).iter_chunks())
    metal = next(read_atomistic(dump, data, lammps_units="metal", timestep_fs=0.5).iter_chunks())
    np.testing.assert_allclose(metal.forces, real.forces * EV_A_TO_KCAL_MOL_A, rtol=1e-12)
    assert EV_A_TO_KCAL_MOL_A == pytest.approx(23.0605, rel=1e-5)
    np.testing.assert_allclose(real.forces[0], np.array([DUMP_ATOMS[i][3:] for i in range(1, 7)]), rtol=1e-6)
    np.testing.assert_allclose(metal.positions, real.positions)
    np.testing.assert_allclose(real.times, [0.0, 10.0, 20.0])
    np.testing.assert_allclose(metal.times, [0.0, 5.0, 10.0])


@pytest.mark.parametrize(("options", "message"), [
    ({}, "does not record its units style: give --lammps-units"),
    ({"lammps_units": "real"}, "does not record its time step: give --timestep-fs"),
    ({"timestep_fs": 1.0}, "give --lammps-units"),
    ({"lammps_units": "lj", "timestep_fs": 1.0}, "units 'lj' are not supported"),
    ({"lammps_units": "metal", "timestep_fs": 0.0}, "--timestep-fs must be a positive number"),
    ({"lammps_units": "metal", "timestep_fs": float("nan")}, "--timestep-fs must be a positive number"),
])
def test_a_lammps_dump_needs_its_units_and_time_step(lammps, options, message):
    data, dump = lammps
    with pytest.raises(InputError, match=rf"traj\.lammpstrj: .*{message}"):
        read_atomistic(dump, data, **options)


def test_lammps_options_are_refused_for_files_that_record_their_units(tmp_path):
    import ase.io

    path = tmp_path / "frames.extxyz"
    ase.io.write(path, make_frames(1), format="extxyz")
    with pytest.raises(InputError, match="apply to LAMMPS dumps only"):
        read_atomistic(path, lammps_units="real")


def test_map_command_names_the_missing_flag_in_one_line(lammps, tmp_path, capsys):
    data, dump = lammps
    argv = ["map", "--top", str(data), "--traj", str(dump), "--mapping", str(MAPPING), "--out", str(tmp_path / "cg.h5"),
            "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--lammps-units" in err and "Traceback" not in err
    assert main([*argv, "--lammps-units", "metal"]) == 2
    assert "--timestep-fs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--lammps-units", "lj", "--timestep-fs", "1"])
    assert not (tmp_path / "cg.h5").exists()


def test_long_and_non_ascii_residue_names_are_kept_whole(tmp_path):
    import ase.io

    frames = make_frames(1)
    names = np.array(["CH₂_βsheet_bead_long"] * 3 + ["verylongtypename2"] * 3)
    frames[0].set_array("resname", None)
    frames[0].new_array("resname", names)
    path = tmp_path / "frames.extxyz"
    ase.io.write(path, frames, format="extxyz")
    assert list(read_atomistic(path).topology.resnames) == list(names)
