"""Turn a :class:`~cgzoo.study.config.Study` into the task graph: atomistic → map → prior → train → simulate → evaluate.

Work-directory layout (``work_dir``)::

    atomistic/<system>/run/                 cgzoo generate run (unless the study points to existing data)
    <mapping>/data/data.h5                  CG dataset
    <mapping>/prior/                        force-matched prior (= the prior_only model)
    <mapping>/train/<arch>_<mode>_s<seed>/  Lightning run, checkpoints/
    <mapping>/md/<model>_<ensemble>_r<k>/   CG MD replica k (<model> = prior_only_s<seed> or <arch>_<mode>_s<seed>)
    <mapping>/eval_<ensemble>/              cgzoo evaluate of every run of that ensemble

A task's parameters that come from another task's result are given as :class:`From` references
and filled in by the runner once that task is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgzoo.study.config import MappingCell, Study

ENSEMBLES = ("nvt", "npt")


@dataclass(frozen=True)
class From:
    """A parameter taken from the result of task ``task`` (its field ``key``)."""

    task: str
    key: str


@dataclass
class Task:
    """One step of the study: ``fn`` (a name in :mod:`cgzoo.study.tasks`) called as ``fn(out, **params)``."""

    name: str
    fn: str
    out: Path
    params: dict[str, Any]
    deps: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: clear ``out`` when the task's inputs change; False where the task decides itself what to keep (atomistic data)
    clear_on_change: bool = True

    def __post_init__(self) -> None:
        refs = [v.task for v in self.params.values() if isinstance(v, From)]
        refs += [r.task for v in self.params.values() if isinstance(v, dict) for r in v.values() if isinstance(r, From)]
        self.deps = sorted(set(self.deps) | set(refs))


def model_label(arch: str | None, mode: str, seed: int) -> str:
    """The label a trained or prior-only model carries in run directories, evaluations and the results table."""
    return f"prior_only_s{seed}" if mode == "prior_only" else f"{arch}_{mode}_s{seed}"


def run_label(label: str, replica: int) -> str:
    """The label of one MD replica of a model, in run directories and evaluations."""
    return f"{label}_r{replica}"


def build_plan(study: Study) -> list[Task]:
    """Every task of the study, in an order where dependencies come first."""
    tasks: list[Task] = []
    root = study.work_dir
    for system in sorted({c.system for c in study.mappings}):
        tasks.append(Task(f"atomistic/{system}", "atomistic", root / "atomistic" / system,
                          {"system": system, "options": study.atomistic[system], "threads": study.threads_per_worker},
                          meta={"system": system}, clear_on_change=False))
    for cell in study.mappings:
        tasks.extend(_mapping_tasks(study, cell))
    return tasks


def _mapping_tasks(study: Study, cell: MappingCell) -> list[Task]:
    base = study.work_dir / cell.name
    name = cell.name
    data_task = f"{name}/data"
    meta = {"mapping": name, "system": cell.system, "beads_per_molecule": cell.beads_per_molecule, "operator": cell.operator}
    tasks = [
        Task(data_task, "map_data", base / "data",
             {"source": From(f"atomistic/{cell.system}", "source"), "top": From(f"atomistic/{cell.system}", "top"),
              "reader": From(f"atomistic/{cell.system}", "reader"),
              "mapping": str(cell.path)}, meta=meta),
        Task(f"{name}/prior", "fit_prior", base / "prior",
             {"data": From(data_task, "data"), "specs": dict(study.priors), "has_bonds": From(data_task, "has_bonds"),
              "max_frames": study.training.get("data.max_train_frames")},
             meta=meta),
    ]
    models: list[tuple[str, str, dict[str, Any]]] = []  # (label, task providing the model, its meta)
    for seed in study.seeds:
        if "prior_only" in study.modes:
            models.append((model_label(None, "prior_only", seed), f"{name}/prior",
                           {**meta, "architecture": "prior", "mode": "prior_only", "seed": seed}))
        for arch in study.architectures:
            for mode in (m for m in study.modes if m != "prior_only"):
                label = model_label(arch, mode, seed)
                task = f"{name}/train/{label}"
                tasks.append(Task(task, "train", base / "train" / label,
                                  {"data": From(data_task, "data"), "prior": From(f"{name}/prior", "prior"),
                                   "configs": [str(c) for c in study.zoo_configs[arch, mode]], "mode": mode,
                                   "network_args": study.networks[arch],
                                   "training": study.training, "seed": seed},
                                  meta={**meta, "architecture": arch, "mode": mode, "seed": seed}))
                models.append((label, task, tasks[-1].meta))
    md = dict(study.md)
    steps = {ens: int(md.pop(f"{ens}_steps")) for ens in ENSEMBLES}
    start_frame = int(md.pop("start_frame", 0))
    replicas = int(md.pop("replicas", 1))
    device = str(md.pop("device", "cpu"))
    for ensemble in ENSEMBLES:
        runs: dict[str, From] = {}
        for label, model_task, model_meta in models:
            key = "prior" if model_task.endswith("/prior") else "checkpoint"
            for replica in range(replicas):
                run = run_label(label, replica)
                task = f"{name}/md/{label}_{ensemble}_r{replica}"
                # replicas differ in velocities (seed) and start frame (spread evenly over the dataset)
                settings = {**md, "ensemble": ensemble, "steps": steps[ensemble],
                            "seed": model_meta["seed"] * 1000 + replica}
                tasks.append(Task(task, "simulate", base / "md" / f"{label}_{ensemble}_r{replica}",
                                  {"model": From(model_task, key), "data": From(data_task, "data"),
                                   "start_frame": start_frame, "replica": replica, "replicas": replicas,
                                   "n_frames": From(data_task, "n_frames"), "settings": settings, "device": device},
                                  meta={**model_meta, "ensemble": ensemble, "label": label, "replica": replica,
                                        "run": run}))
                runs[run] = From(task, "run")
        equil_ps = float(study.evaluate.get(f"{ensemble}_equil_ps", 0.0))
        tasks.append(Task(f"{name}/eval_{ensemble}", "evaluate", base / f"eval_{ensemble}",
                          {"data": From(data_task, "data"), "runs": runs, "equil_fs": equil_ps * 1000.0},
                          meta={**meta, "ensemble": ensemble}))
    return tasks
