"""``cgzoo fit`` under DDP on 2 CPU processes (gloo) on the embedded default dataset: reduced metrics, one writer, resume.

The fit runs as a child ``python -m cgzoo fit … --trainer.strategy ddp``: Lightning's ``ddp`` launcher starts
the second process by re-running the command line (``python -m <main module> <arguments>``), which inside
pytest would be pytest itself; a child ``cgzoo`` re-runs ``cgzoo``, so plain ``ddp`` works and ``ddp_spawn``
(which pickles the model and data module into fresh interpreters) is not needed.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset
from cgzoo.errors import InputError
from cgzoo.metrics import ForceErrors
from cgzoo.models.checkpoint import load_model
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.training.data import CGDataModule

pytestmark = pytest.mark.ddp

REPO = Path(__file__).parents[1]
DATA = REPO / "datasets" / "default" / "spce-water_1bead_com.h5"
MULTINODE = REPO / "models" / "ddp" / "multinode.yaml"
SLURM_SCRIPT = REPO / "experiments" / "slurm" / "fit_ddp.sbatch"
#: odd, so 2 processes cannot split it evenly: a sampler that pads with a repeated frame would count it twice
VAL_FRAMES = 5
#: 2 steps per process and epoch at 2 frames a batch
TRAIN_FRAMES = 8
STEPS_PER_EPOCH = 2


def write_configs(base: Path) -> list[str]:
    """A tiny pair network on few frames of the default dataset, the shipped delta mode, a prior spec fitted on 8
    frames: the ``--config``/``--data`` options of every fit here."""
    arch = {"seed_everything": 0,
            "model": {"network": "pair_mlp", "scheduler": "none",
                      "network_args": {"cutoff": 6.0, "n_rbf": 8, "hidden": [16, 16], "embedding_dim": 4}},
            "data": {"data": str(DATA), "batch_size": 2, "max_train_frames": TRAIN_FRAMES,
                     "max_val_frames": VAL_FRAMES, "cache_dir": str(base / "prior_cache")},
            "trainer": {"enable_progress_bar": False, "enable_model_summary": False}}
    spec = {"max_frames": 8, "terms": [{"fit": "force_matching", "cutoff": 6.0, "pair_spacing": 0.25}]}
    (base / "tiny.yaml").write_text(yaml.safe_dump(arch))
    (base / "prior.yaml").write_text(yaml.safe_dump(spec))
    return ["--config", str(base / "tiny.yaml"), "--config", str(REPO / "models" / "modes" / "delta.yaml"),
            "--data.prior", str(base / "prior.yaml")]


def child_env() -> dict[str, str]:
    """This environment for a child ``cgzoo``: wandb offline, one thread per process (2 processes share 2 cores)."""
    return {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}


def fit_argv(base: Path, root: Path, *options: str) -> list[str]:
    """The command line of ``cgzoo fit`` on 2 CPU processes with the DDP strategy into ``root``."""
    return [sys.executable, "-m", "cgzoo", "fit", *write_configs(base), "--trainer.default_root_dir", str(root),
            "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp", *options]


def fit_ddp(base: Path, root: Path, *options: str) -> subprocess.CompletedProcess:
    """:func:`fit_argv` started as Lightning's launcher starts it (one command, which starts the second process); fails
    the test unless it exits 0."""
    proc = subprocess.run(fit_argv(base, root, *options), capture_output=True, text=True, cwd=base, env=child_env(),
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A 2-epoch DDP fit into ``<base>/run``, copied as it finished to ``<base>/first``; returns ``base`` and the fit's
    output."""
    base = tmp_path_factory.mktemp("ddp")
    proc = fit_ddp(base, base / "run", "--trainer.max_epochs", "2")
    shutil.copytree(base / "run", base / "first")
    return base, proc


@pytest.fixture(scope="module")
def resumed(first):
    """The same run continued under DDP from its ``last.ckpt`` to 3 epochs."""
    base, _ = first
    fit_ddp(base, base / "run", "--trainer.max_epochs", "3", "--ckpt_path", "last")
    return base / "run"


def metric_rows(root: Path, key: str) -> list[tuple[int, float]]:
    """(epoch, value) of every row of the run's CSV logs that holds ``key``."""
    return [(int(row["epoch"]), float(row[key])) for path in sorted(root.glob("csv/version_*/metrics.csv"))
            for row in csv.DictReader(path.open()) if row.get(key)]


def wandb_run(directory: Path) -> str:
    """The run id of a wandb directory ``offline-run-<date>_<time>-<id>`` (``-<n>`` appended when an id recurs)."""
    return re.fullmatch(r"offline-run-\d{8}_\d{6}-([0-9a-z]+)(-\d+)?", directory.name).group(1)


def validation_rmse(checkpoint: Path) -> float:
    """The force RMSE of ``checkpoint``'s model over every validation frame of the fit, in one process, frame by frame."""
    data = CGDataModule(data=str(DATA), prior="none", max_train_frames=TRAIN_FRAMES, max_val_frames=VAL_FRAMES)
    data.setup()
    frames = data.splits[0]["val"]
    assert len(frames) == VAL_FRAMES
    model = load_model(checkpoint)
    dataset = CGDataset.load(DATA)
    top = dataset.topology
    cache = TopologyCache(top.n_beads, top.bonds, top.molecule_ids)
    dtype = next(model.parameters()).dtype
    errors = ForceErrors()
    for f in frames:
        graph = batch_graph(dataset.positions[f][None], dataset.boxes[f][None], top.bead_types, cache, model.cutoff,
                            dtype=dtype)
        errors.update(model(graph)["forces"].detach().numpy(), dataset.forces[f])
    return errors.total().rmse


def test_validation_force_rmse_is_over_the_whole_validation_set(first):
    """The logged val/force_rmse of the best epoch (and the best checkpoint's score) is the RMSE over the 5 validation
    frames, each counted once, of the weights that checkpoint holds: the per-process sums are added, not padded."""
    base, proc = first
    (best,) = (base / "first" / "checkpoints").glob("best-*.ckpt")
    state = torch.load(best, weights_only=True)
    logged = dict(metric_rows(base / "first", "val/force_rmse"))
    assert sorted(logged) == [0, 1]
    score = next(value["best_model_score"] for key, value in state["callbacks"].items()
                 if key.startswith("ModelCheckpoint") and "'monitor': 'val/force_rmse'" in key)
    expected = validation_rmse(best)
    assert logged[state["epoch"]] == pytest.approx(expected, rel=1e-5)
    assert float(score) == pytest.approx(expected, rel=1e-5)
    assert proc.stdout.count("fitting the prior") == 1, "each process fitted the prior"


def test_metrics_are_synced_and_logged_every_epoch(first):
    """Lightning warns of no epoch metric logged unsynchronised, nor of a log interval longer than a process's epoch
    (the interval is capped at the training batches of one process, not of the whole training split)."""
    _, proc = first
    assert "sync_dist" not in proc.stderr, "an epoch-level metric is logged without syncing across processes"
    assert "logging interval" not in proc.stderr


def test_each_process_evaluates_its_own_frames_and_too_few_are_refused():
    """Under DDP (2 processes) the validation frames are dealt out without repeats, every frame to one process; a split
    with fewer frames than processes is a one-line error naming the data file."""
    data = CGDataModule(data=str(DATA), prior="none", max_val_frames=VAL_FRAMES)
    data.setup()
    shares = []
    for rank in (0, 1):
        data.trainer = SimpleNamespace(distributed_sampler_kwargs={"num_replicas": 2, "rank": rank})
        shares.append([int(f) for batch in data.val_dataloader() for f in batch.frame])
    assert sorted(shares[0] + shares[1]) == sorted(data.splits[0]["val"].tolist())
    few = CGDataModule(data=str(DATA), prior="none", max_val_frames=1)
    few.setup()
    few.trainer = SimpleNamespace(distributed_sampler_kwargs={"num_replicas": 2, "rank": 0})
    with pytest.raises(InputError, match=r"spce-water_1bead_com.h5: the val split has 1 frame, fewer than the 2 "):
        few.val_dataloader()


def test_outputs_are_written_once(first):
    """One best and one last checkpoint, one CSV log, one wandb run (the id stored once), nothing per process."""
    base, _ = first
    run = base / "first"
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert [n for n in names if n.startswith("best-")] == [f"best-1-{2 * STEPS_PER_EPOCH}.ckpt"]
    assert names.count("last.ckpt") == 1 and len(names) == 3, names  # and the last_checkpoint callback's latest-*
    assert [p.name for p in (run / "csv").iterdir()] == ["version_0"]
    run_id = (run / "wandb_id.txt").read_text().strip()
    assert [wandb_run(p) for p in (run / "wandb").glob("offline-run-*")] == [run_id]
    assert not [p for p in run.rglob("*") if "rank" in p.name.lower()]


def test_resume_continues_the_epochs_under_ddp(first, resumed):
    """The resumed fit starts at epoch 2 (its CSV log has no epoch 0 or 1), the step count continues, the learning curve
    and the wandb run are continued, not restarted."""
    base, _ = first
    last = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3 * STEPS_PER_EPOCH
    assert sorted({e for e, _ in metric_rows(resumed, "val/force_rmse")}) == [0, 1, 2]
    new_log = resumed / "csv" / "version_1" / "metrics.csv"
    assert {int(row["epoch"]) for row in csv.DictReader(new_log.open())} == {2}
    epochs = [int(line.split(",")[0]) for line in (resumed / "learning_curve.csv").read_text().splitlines()[1:]]
    assert epochs == [0, 1, 2]
    run_id = (base / "first" / "wandb_id.txt").read_text().strip()
    assert (resumed / "wandb_id.txt").read_text().strip() == run_id
    assert {wandb_run(p) for p in (resumed / "wandb").glob("offline-run-*")} == {run_id}


def free_port() -> int:
    """A TCP port nothing listens on now, for the processes' rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def srun_env(rank: int, port: int) -> dict[str, str]:
    """The variables ``srun --nodes 1 --ntasks-per-node 2`` gives task ``rank``, from which Lightning's SLURM
    environment takes the processes' ranks; none of Lightning's own launcher."""
    env = {k: v for k, v in child_env().items() if k not in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")
           and not k.startswith("SLURM_")}
    return {**env, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "1", "SLURM_NODEID": "0",
            "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_NODELIST": "127.0.0.1",
            "SLURM_JOB_NAME": "cgzoo", "SLURM_JOB_ID": "4242", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def wait_all(procs: list[subprocess.Popen], timeout: float = 600) -> None:
    """Wait for every process; once one fails, stop the others, which would wait for it at their next collective
    operation until the timeout."""
    deadline = time.monotonic() + timeout
    while any(proc.poll() is None for proc in procs) and time.monotonic() < deadline:
        if any(proc.poll() not in (None, 0) for proc in procs):
            break
        time.sleep(0.5)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_processes_started_by_srun_lock_fit_the_prior_and_write_once(tmp_path):
    """Both processes of a SLURM job step start at once (``srun``, as experiments/slurm/fit_ddp.sbatch runs them): only
    rank 0 takes the run directory's lock (rank 1 is not refused) and stores the wandb id, the prior is fitted once."""
    root, port = tmp_path / "run", free_port()
    logs = [tmp_path / f"task{rank}.log" for rank in (0, 1)]
    with ExitStack() as files:
        procs = [subprocess.Popen(fit_argv(tmp_path, root, "--trainer.max_epochs", "1"),
                                  stdout=files.enter_context(log.open("w")), stderr=subprocess.STDOUT, cwd=tmp_path,
                                  env=srun_env(rank, port))
                 for rank, log in enumerate(logs)]
        wait_all(procs)
    outputs = [log.read_text() for log in logs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]
    assert sum(out.count("fitting the prior") for out in outputs) == 1, "each process fitted the prior"
    assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == STEPS_PER_EPOCH
    run_id = (root / "wandb_id.txt").read_text().strip()
    assert [wandb_run(p) for p in (root / "wandb").glob("offline-run-*")] == [run_id]


def test_shipped_multinode_config_and_slurm_script_agree(capsys):
    """``models/ddp/multinode.yaml`` is a trainer config ``cgzoo fit`` takes after a zoo pair, and the SLURM script asks
    for as many nodes, tasks and GPUs per node as it names nodes and devices (Lightning refuses a mismatch at start)."""
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(REPO / "models" / "schnet.yaml"), "--config", str(REPO / "models" / "modes" /
              "delta.yaml"), "--config", str(MULTINODE), "--print_config"])
    assert info.value.code == 0
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    assert (trainer["accelerator"], trainer["strategy"]) == ("gpu", "ddp")
    script = SLURM_SCRIPT.read_text()
    sbatch = {key: int(value) for key, value in re.findall(r"^#SBATCH --(nodes|ntasks-per-node|gpus-per-node)=(\d+)$",
                                                            script, re.MULTILINE)}
    assert sbatch == {"nodes": trainer["num_nodes"], "ntasks-per-node": trainer["devices"],
                      "gpus-per-node": trainer["devices"]}
    assert "srun cgzoo fit" in script and f"--config {MULTINODE.relative_to(REPO)}" in script
