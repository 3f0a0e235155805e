"""Fault suite, training CLI: every bad option or file is one line and exit 2; one writer per run directory; kill -9, then resume."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import torch
from test_training import config, tiny  # noqa: F401 - the tiny dataset fixture

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset
from cgzoo.models import MODES, NETWORKS
from cgzoo.models.checkpoint import read_checkpoint
from cgzoo.training.checkpoint import SafeCheckpointIO
from cgzoo.training.module import ModeName, NetworkName

pytestmark = pytest.mark.faults


def one_line_error(capsys) -> str:
    """The captured stderr, checked to be exactly one ``cgzoo fit: error:`` line."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgzoo fit: error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def one_frame(tiny):  # noqa: F811
    """The tiny dataset cut to its first frame."""
    data = CGDataset.load(tiny[1])
    return CGDataset(data.positions[:1], data.forces[:1], data.boxes[:1], data.times[:1], data.topology, data.temperature,
                     {}).save(tiny[0] / "one_frame.h5")


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A truncated checkpoint and a foreign one (a torch file without a cgzoo block)."""
    root = tmp_path_factory.mktemp("bad_ckpt")
    full = root / "full.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(4000)}, "epoch": 1}, full)
    truncated = root / "truncated.ckpt"
    truncated.write_bytes(full.read_bytes()[:3000])
    return {"truncated": truncated, "foreign": full}


BAD_OPTIONS = {
    "unknown network": (["--model.network", "potato"], "--model.network potato: Expected a typing.Literal['pair_mlp'"),
    "unknown mode": (["--model.mode", "both"], "--model.mode both: Expected a typing.Literal['delta', 'ml_only'"),
    "unknown network argument": (["--model.network_args", '{"depth": 3}'], "unexpected keyword argument 'depth'"),
    "bad network argument": (["--model.network_args", '{"activation": "potato"}'], "activation must be one of"),
    "negative layer size": (["--model.network_args", '{"hidden": [-3]}'], "negative dimension"),
    "zero blocks": (["--data.blocks", "0"], "--data.blocks: Not of type PositiveInt"),
    "missing checkpoint": (["--ckpt_path", "nowhere.ckpt"], "nowhere.ckpt: checkpoint does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_option_is_one_line_exit_2(tiny, tmp_path, capsys, case):  # noqa: F811
    extra, expected = BAD_OPTIONS[case]
    assert main(["fit", *config(tiny, "pair_mlp", "ml_only", tmp_path / "run", max_steps=1), *extra]) == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("kind, expected", [("truncated", "truncated.ckpt: not a readable checkpoint"),
                                            ("foreign", "full.ckpt: not a cgzoo model checkpoint")])
def test_bad_checkpoint_is_one_line_exit_2(tiny, bad_checkpoints, tmp_path, capsys, kind, expected):  # noqa: F811
    args = config(tiny, "pair_mlp", "ml_only", tmp_path / "run", max_steps=1)
    assert main(["fit", *args, "--ckpt_path", str(bad_checkpoints[kind])]) == 2
    assert expected in one_line_error(capsys)


def test_one_frame_dataset_is_one_line_exit_2(tiny, one_frame, tmp_path, capsys):  # noqa: F811
    args = config(tiny, "pair_mlp", "ml_only", tmp_path / "run", max_steps=1)
    assert main(["fit", *args, "--data.data", str(one_frame)]) == 2
    err = one_line_error(capsys)
    assert "one_frame.h5: " in err and "--data.blocks" in err


def test_help_lists_network_and_mode_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--model.mode {delta,ml_only,prior_only}" in out
    assert "Literal['pair_mlp', 'schnet', 'equivariant']" in " ".join(out.split())
    choices = typing.get_args(typing.get_args(NetworkName)[0])
    assert set(choices) == set(NETWORKS) and set(typing.get_args(ModeName)) == set(MODES)


def test_checkpoint_write_is_atomic(tmp_path):
    """A save that fails mid-write leaves the previous checkpoint intact and no temporary behind."""
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = SafeCheckpointIO()
    path.parent.mkdir()
    (path.parent / ".last.ckpt.tmp-999999-dead").write_bytes(b"left by a killed run")
    io.save_checkpoint({"cgzoo": {"format": "cgzoo-model"}, "step": 1}, path)
    with pytest.raises((pickle.PicklingError, AttributeError)):  # what pickling a lambda raises
        io.save_checkpoint({"step": 2, "unpicklable": lambda: None}, path)
    assert read_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def _fit_subprocess(args: list[str], log: Path) -> subprocess.Popen:
    """``cgzoo fit`` in a child process (logging into ``log``), independent as one started from another shell: not
    attached to the wandb service of this test process, which would still hold the child's wandb run after a kill -9."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1")
    with log.open("w") as fh:
        return subprocess.Popen([sys.executable, "-m", "cgzoo.cli", "fit", *args], stdout=fh, stderr=subprocess.STDOUT,
                                env=env, cwd=log.parent)


def _wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    """Wait until ``path`` exists while the child still runs."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.2)


def test_concurrent_fit_refused_then_kill_9_and_resume(tiny, tmp_path, capsys):  # noqa: F811
    """A second fit into a running fit's directory is refused; the run, killed with SIGKILL, resumes with ckpt_path last."""
    root = tmp_path / "run"
    log = tmp_path / "fit.log"
    proc = _fit_subprocess(config(tiny, "pair_mlp", "delta", root, max_epochs=500), log)
    try:
        last = root / "checkpoints" / "last.ckpt"
        _wait_for(last, proc, log)
        assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=2)]) == 2
        assert "another cgzoo process is writing" in one_line_error(capsys)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    for ckpt in root.glob("checkpoints/*.ckpt"):  # nothing half-written under a final name
        assert read_checkpoint(ckpt)["cgzoo"]["format"] == "cgzoo-model"
    done = read_checkpoint(last)["epoch"] + 1
    args = config(tiny, "pair_mlp", "delta", root, max_epochs=done + 1)
    assert main(["fit", *args, "--ckpt_path", "last"]) == 0
    resumed = read_checkpoint(last)
    assert resumed["epoch"] == done and resumed["global_step"] == (done + 1) * 6
    assert not [p for p in (root / "checkpoints").iterdir() if p.name.startswith(".")]
