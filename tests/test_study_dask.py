"""The study's task graph on Dask: two workers tabulate what one does, a running cluster's scheduler runs a study
from the command line, a task that kills its worker once is retried and one that always does is recorded as failed
(its dependents skipped, everything else done), and only tasks whose settings name a GPU ask for one."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml
from distributed import LocalCluster

from cgzoo.cli import main
from cgzoo.errors import CGZooError
from cgzoo.study import load_study, run_study, tasks
from cgzoo.study.plan import From, Task
from cgzoo.study.runner import LOG_FILE, STATE_FILE, connect, resources, run_tasks
from tests import study_tasks
from tests.test_study import _tiny_study

#: results.csv columns that time this invocation, not the models
TIMINGS = ("train_seconds", "md_ns_per_day")


@pytest.fixture
def cluster():
    """A running two-process cluster, as ``dask scheduler`` plus ``dask worker --nworkers 2 --nthreads 1`` start one."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}, silence_logs=logging.CRITICAL) as running:
        yield running


@pytest.fixture
def fake_bodies(monkeypatch):
    """The task bodies of :mod:`tests.study_tasks` under their names in :mod:`cgzoo.study.tasks`."""
    for name in ("report", "die_once", "always_die"):
        monkeypatch.setattr(tasks, name, getattr(study_tasks, name), raising=False)


def _small_study(tmp_path: Path) -> Path:
    """The tiny study of tests/test_study.py cut to hexane, the prior and Δ, one seed and one NVT run each; preset
    ``cluster`` is the same study in other directories, naming a scheduler nobody runs (the command line's wins)."""
    data = yaml.safe_load(_tiny_study(tmp_path, md_steps=40).read_text())
    data["grid"].update(systems={"hexane-ua": ["3bead_com"]}, modes=["prior_only", "delta"])
    preset = data["presets"]["test"]
    del preset["data_efficiency"], preset["atomistic"]["cyclohexane-ua"]
    preset.update(seeds=[0], md={"ensembles": ["nvt"], "nvt_steps": 40, "replicas": 1})
    data["presets"]["cluster"] = {**preset, "work_dir": str(tmp_path / "work2"), "results_dir": str(tmp_path / "results2"),
                                  "scheduler": "tcp://127.0.0.1:9"}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _table(results_dir: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader((results_dir / "results.csv").open()))
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def test_two_workers_of_a_running_cluster_tabulate_what_one_local_worker_does(tmp_path, monkeypatch, cluster, capsys):
    monkeypatch.chdir(tmp_path)
    config = _small_study(tmp_path)
    assert load_study(config, "cluster").scheduler == "tcp://127.0.0.1:9"
    log: list[str] = []
    run_study(config, "test", workers=1, log=log.append)
    assert any(line.startswith("done   hexane-ua_3bead_com/train/pair_mlp_delta_s0") for line in log)
    # both runs share the atomistic reference (its task.json says it is done), so everything downstream is compared
    shutil.copytree(tmp_path / "work" / "atomistic", tmp_path / "work2" / "atomistic")
    assert main(["study", str(config), "--preset", "cluster", "--scheduler", cluster.scheduler_address]) == 0
    out = capsys.readouterr().out
    assert f"the workers of {cluster.scheduler_address} × 1 threads" in out and "queued atomistic" not in out
    assert "ALLOWED_FAILURES=0" in out  # this scheduler keeps Dask's default of 3
    one, two = _table(tmp_path / "results"), _table(tmp_path / "results2")
    assert len(one) == 2 and all(row["force_rmse"] for row in one)
    assert one == two


def test_a_task_that_kills_its_worker_is_retried_once_then_recorded_as_failed(tmp_path, fake_bodies):
    plan = [Task("first", "report", tmp_path / "first", {"value": 1}),
            Task("dies_once", "die_once", tmp_path / "dies_once", {"value": From("first", "value")}),
            Task("always_dies", "always_die", tmp_path / "always_dies", {}),
            Task("after_death", "report", tmp_path / "after_death", {"value": 3}, deps=["always_dies"]),
            Task("independent", "report", tmp_path / "independent", {"value": 4})]
    log: list[str] = []
    states = run_tasks(plan, workers=2, threads=2, log=log.append)

    assert {name: s["status"] for name, s in states.items()} == {
        "first": "done", "dies_once": "done", "always_dies": "failed", "after_death": "skipped", "independent": "done"}
    assert states["dies_once"]["result"] == {"value": 1, "attempts": 2}
    assert (tmp_path / "always_dies" / "attempts").read_text() == "2"
    recorded = json.loads((tmp_path / "always_dies" / STATE_FILE).read_text())
    assert recorded["status"] == "failed" and recorded["error"].startswith("its worker process died 2 times")
    assert states["after_death"]["error"] == "depends on always_dies"
    assert not (tmp_path / "after_death").exists()
    # every worker process, the replaced ones too, is pinned to the study's threads; a task's output is its task.log
    for name in ("first", "independent"):
        state = json.loads((tmp_path / name / STATE_FILE).read_text())
        assert set(state) == {"key", "task", "meta", "status", "result", "seconds"}
        assert (state["result"]["torch_threads"], state["result"]["omp"]) == (2, "2")
    assert (tmp_path / "first" / LOG_FILE).read_text() == "report 1\n"
    assert sorted(line for line in log if line.startswith("retry")) == [
        "retry  always_dies: its worker process died", "retry  dies_once: its worker process died"]
    assert any(line.startswith("FAILED always_dies: its worker process died 2 times") for line in log)
    assert sum(line.startswith("done   ") for line in log) == 3

    # a re-run calls only the failed task again (and once more when it kills its worker again)
    log.clear()
    run_tasks(plan, workers=1, threads=1, log=log.append)
    assert [line for line in log if line.startswith(("queued", "retry"))] == [
        "queued always_dies", "retry  always_dies: its worker process died", "queued always_dies"]


def test_a_cluster_whose_workers_run_several_threads_is_refused(tmp_path):
    with (LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                       silence_logs=logging.CRITICAL) as threaded,
          pytest.raises(CGZooError, match="runs several threads; start the study's workers with"),
          connect(1, 1, threaded.scheduler_address, gpu=False)):
        pass


@pytest.mark.parametrize(("fn", "params", "expected"), [
    ("train", {"training": {"trainer.accelerator": "gpu"}}, {"GPU": 1}),
    ("train", {"training": {"trainer.accelerator": "auto"}}, None),
    ("train", {"training": {}}, None),
    ("simulate", {"device": "cuda:1"}, {"GPU": 1}),
    ("simulate", {"device": "cpu"}, None),
    ("evaluate", {"device": "cuda"}, None),
])
def test_only_tasks_whose_settings_name_a_gpu_ask_the_cluster_for_one(tmp_path, fn, params, expected):
    assert resources(Task("t", fn, tmp_path, params)) == expected
