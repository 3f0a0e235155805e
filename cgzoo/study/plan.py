"""Turn a :class:`~cgzoo.study.config.Study` into the task graph: atomistic → map → prior → train → simulate → evaluate.

Work-directory layout (``work_dir``)::

    atomistic/<system>/run/                 cgzoo generate run (unless the study points to existing data)
    <mapping>/data/data.h5                  CG dataset
    <mapping>/prior/                        force-matched prior (= the prior_only model)
    <mapping>/train/<arch>_<mode>_s<seed>/  Lightning run, checkpoints/
    <model>/heldout/                        a prior's or network's force errors on every test frame
    <mapping>/md/<model>_<ensemble>_r<k>/   CG MD replica k (<model> = prior_only_s<seed> or <arch>_<mode>_s<seed>)
    <mapping>/eval_<ensemble>/              cgzoo evaluate of every run of that ensemble
    <mapping>/data_efficiency/              priors, networks (``train/<label>_n<frames>``), their held-out force
                                            NVT runs (``md/``) and their evaluation (``eval/``)

A task's parameters that come from another task's result are given as :class:`From` references
and filled in by the runner once that task is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgzoo.study.config import MappingCell, Study


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
        _prior_task(study, cell, f"{name}/prior", base / "prior", study.training.get("data.max_train_frames"), meta),
    ]
    models: list[tuple[str, str, dict[str, Any]]] = []  # (label, task providing the model, its meta)
    for seed in study.seeds:
        if "prior_only" in study.modes:
            models.append((model_label(None, "prior_only", seed), f"{name}/prior",
                           {**meta, "architecture": "prior", "mode": "prior_only", "seed": seed}))
        for arch in study.architectures:
            for mode in (m for m in study.modes if m != "prior_only"):
                label = model_label(arch, mode, seed)
                tasks.append(_train_task(study, cell, f"{name}/train/{label}", base / "train" / label, f"{name}/prior",
                                         arch, mode, seed, study.training, {**meta, "architecture": arch, "mode": mode,
                                                                            "seed": seed}))
                models.append((label, tasks[-1].name, tasks[-1].meta))
    md = dict(study.md)
    md.pop("device", None)
    steps = {ens: int(md.pop(f"{ens}_steps")) for ens in study.ensembles}
    start_frame = int(md.pop("start_frame", 0))
    replicas = int(md.pop("replicas", 1))
    runs_md = [m for m in models if m[2]["architecture"] in ("prior", *study.md_architectures)]
    for ensemble in study.ensembles:
        runs: dict[str, From] = {}
        for label, model_task, model_meta in runs_md:
            for replica in range(replicas):
                run = run_label(label, replica)
                task = _md_task(study, cell, f"{name}/md/{label}_{ensemble}_r{replica}",
                                base / "md" / f"{label}_{ensemble}_r{replica}", model_output(model_task, model_meta),
                                {**md, "ensemble": ensemble, "steps": steps[ensemble]}, start_frame, replica, replicas,
                                {**model_meta, "ensemble": ensemble, "label": label, "replica": replica, "run": run})
                tasks.append(task)
                runs[run] = From(task.name, "run")
        tasks.append(_evaluate_task(study, cell, f"{name}/eval_{ensemble}", base / f"eval_{ensemble}", runs, ensemble,
                                    {**meta, "ensemble": ensemble}))
    if study.data_efficiency is not None and name in study.data_efficiency.mappings:
        tasks.extend(_data_efficiency_tasks(study, cell, meta, tasks, md, start_frame))
    return tasks + [_heldout_task(cell, t) for t in tasks if t.fn in ("fit_prior", "train")]


def heldout_task(model_task: str) -> str:
    """The name of the task that measures the held-out force errors of the model ``model_task`` fits or trains."""
    return f"{model_task}/heldout"


def _heldout_task(cell: MappingCell, model: Task) -> Task:
    """The held-out force errors of ``model`` (a prior fit or a training) on every test frame, in its own directory."""
    return Task(heldout_task(model.name), "score", model.out / "heldout",
                {"model": From(model.name, "prior" if model.fn == "fit_prior" else "checkpoint"), "data": From(f"{cell.name}/data", "data")},
                meta=dict(model.meta))


def model_output(task: str, meta: dict[str, Any]) -> From:
    """The model a prior fit or a training task provides (its prior.json or best checkpoint)."""
    return From(task, "prior" if meta["mode"] == "prior_only" else "checkpoint")


def data_efficiency_label(meta: dict[str, Any]) -> str:
    """The label of a data-efficiency model (and of its NVT run): the model's label and its number of training frames."""
    mode = meta["mode"]
    label = "prior_only" if mode == "prior_only" else model_label(meta["architecture"], mode, meta["seed"])
    return f"{label}_n{meta['frames']}"


def _prior_task(study: Study, cell: MappingCell, name: str, out: Path, max_frames: int | None,
                meta: dict[str, Any]) -> Task:
    """The force-matched prior of ``cell`` fitted on (at most ``max_frames`` of) its training split."""
    return Task(name, "fit_prior", out,
                {"data": From(f"{cell.name}/data", "data"), "specs": dict(study.priors),
                 "has_bonds": From(f"{cell.name}/data", "has_bonds"), "max_frames": max_frames}, meta=dict(meta))


def _train_task(study: Study, cell: MappingCell, name: str, out: Path, prior_task: str, arch: str, mode: str, seed: int,
                training: dict[str, Any], meta: dict[str, Any]) -> Task:
    """One network trained in ``mode`` (Δ over the prior of ``prior_task``) with the preset's Lightning overrides."""
    return Task(name, "train", out,
                {"data": From(f"{cell.name}/data", "data"), "prior": From(prior_task, "prior"),
                 "configs": [str(c) for c in study.zoo_configs[arch, mode]], "mode": mode,
                 "network_args": study.networks[arch], "training": training, "seed": seed}, meta=meta)


def _md_task(study: Study, cell: MappingCell, name: str, out: Path, model: From, settings: dict[str, Any],
             start_frame: int, replica: int, replicas: int, meta: dict[str, Any]) -> Task:
    """One MD replica of ``model``; replicas differ in velocities (seed) and start frame."""
    return Task(name, "simulate", out,
                {"model": model, "data": From(f"{cell.name}/data", "data"),
                 "start_frame": start_frame, "replica": replica, "replicas": replicas,
                 "n_frames": From(f"{cell.name}/data", "n_frames"),
                 "settings": {**settings, "seed": meta["seed"] * 1000 + replica}, "device": str(study.md.get("device", "cpu"))},
                meta=meta)


def _evaluate_task(study: Study, cell: MappingCell, name: str, out: Path, runs: dict[str, From], ensemble: str,
                   meta: dict[str, Any]) -> Task:
    """``cgzoo evaluate`` of ``runs`` against the mapped reference, at the atomistic run's pressure."""
    equil_ps = float(study.evaluate.get(f"{ensemble}_equil_ps", 0.0))
    return Task(name, "evaluate", out,
                {"data": From(f"{cell.name}/data", "data"), "runs": runs, "equil_fs": equil_ps * 1000.0,
                 "reference_pressure_bar": From(f"atomistic/{cell.system}", "pressure_bar")}, meta=meta)


def _data_efficiency_tasks(study: Study, cell: MappingCell, meta: dict[str, Any], main: list[Task],
                           md: dict[str, Any], start_frame: int) -> list[Task]:
    """Priors and networks trained on each number of frames of ``data_efficiency.frames``, one NVT run each when the
    block asks for one, and one evaluation of those runs.

    A model the main grid already trains on that many frames (``main``) is reused, not trained again: its task's meta
    gains ``frames``, which is how :mod:`cgzoo.study.results` finds every data-efficiency model.
    """
    de = study.data_efficiency
    base, name = study.work_dir / cell.name / "data_efficiency", cell.name
    main_frames = study.training.get("data.max_train_frames")
    by_name = {t.name: t for t in main}
    tasks: list[Task] = []
    runs: dict[str, From] = {}
    for frames in de.frames:
        frames_meta = {**meta, "frames": frames}
        reuse = frames == main_frames
        prior_meta = {**frames_meta, "architecture": "prior", "mode": "prior_only", "seed": de.seeds[0]}
        if reuse:
            prior = by_name[f"{name}/prior"]
            prior.meta.update(prior_meta)
        else:
            prior = _prior_task(study, cell, f"{name}/data_efficiency/prior_n{frames}", base / f"prior_n{frames}",
                                frames, prior_meta)
            tasks.append(prior)
        models = [prior]
        for seed in de.seeds:
            for arch in de.architectures:
                for mode in (m for m in study.modes if m != "prior_only"):
                    model_meta = {**frames_meta, "architecture": arch, "mode": mode, "seed": seed}
                    label = data_efficiency_label(model_meta)
                    task = by_name.get(f"{name}/train/{model_label(arch, mode, seed)}") if reuse else None
                    if task is None:
                        task = _train_task(study, cell, f"{name}/data_efficiency/train/{label}", base / "train" / label,
                                           prior.name, arch, mode, seed,
                                           {**study.training, "data.max_train_frames": frames}, model_meta)
                        tasks.append(task)
                    else:
                        task.meta.update(model_meta)
                    models.append(task)
        for task in models:
            if de.nvt_steps and task.meta["architecture"] in ("prior", *study.md_architectures):
                label = data_efficiency_label(task.meta)
                md_task = _md_task(study, cell, f"{name}/data_efficiency/md/{label}", base / "md" / label,
                                   model_output(task.name, task.meta), {**md, "ensemble": "nvt", "steps": de.nvt_steps},
                                   start_frame, 0, 1, {**task.meta, "ensemble": "nvt", "label": label, "replica": 0,
                                                       "run": label})
                tasks.append(md_task)
                runs[label] = From(md_task.name, "run")
    if runs:
        tasks.append(_evaluate_task(study, cell, f"{name}/data_efficiency/eval", base / "eval", runs, "nvt",
                                    {**meta, "ensemble": "nvt", "data_efficiency": True}))
    return tasks
