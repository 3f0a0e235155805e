"""The study's steps, one function each: ``fn(out, **params) -> result``; the runner decides whether to call them.

Every step writes only inside its own directory ``out`` and returns a small JSON-able result that
later steps and the results table read. They run in worker processes, one torch/OpenMM thread
count per worker (:func:`init_worker`). A step that finds a partial run of itself in ``out``
resumes where the underlying tool can (``cgzoo generate`` segments, Lightning's ``last.ckpt``);
the others are minutes long and start again.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Options of ``run_generate`` that define the atomistic physics (threads and platform do not).
GENERATE_PHYSICS = ("n_molecules", "temperature", "pressure_bar", "equil_ps", "prod_ps", "save_every_fs", "timestep_fs", "seed")


def init_worker(threads: int) -> None:
    """Pin a worker process to ``threads`` threads (torch, OpenMP) and keep wandb off the network."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    import torch

    torch.set_num_threads(threads)
    from cgzoo.runtime import tune_allocator

    tune_allocator()


def atomistic(out: Path, system: str, options: dict[str, Any], threads: int) -> dict[str, Any]:
    """Reference data: an existing trajectory (``options.path``, optional ``options.top``; a LAMMPS dump also
    ``lammps_units`` and ``timestep_fs``) or a ``cgzoo generate`` run in ``out/run``."""
    if "path" in options:
        path = Path(options["path"])
        if not path.exists():
            raise FileNotFoundError(f"{path}: atomistic data named in the study does not exist")
        reader = {k: options[k] for k in ("lammps_units", "timestep_fs") if k in options}
        return {"source": str(path), "top": options.get("top"), "reader": reader, "generated": False,
                "pressure_bar": options.get("pressure_bar")}
    from cgzoo.generate import run_generate

    run = out / "run"  # the generate directory; ``out`` also holds the study's task files
    physics = {k: options[k] for k in GENERATE_PHYSICS if k in options}
    engine = {"threads": threads, "platform": options.get("platform", "CPU"), "progress": False}
    if (run / "DONE").exists():  # a finished run with other physics is replaced; with the same physics, reused
        recorded = json.loads((run / "topology.json").read_text())["options"]
        if any(recorded.get(k) != v for k, v in physics.items()):
            run_generate(system, run, overwrite=True, **engine, **physics)
    else:
        run_generate(system, run, **engine, **physics)
    density = json.loads((run / "density.json").read_text())
    recorded = json.loads((run / "topology.json").read_text())["options"]
    return {"source": str(run), "top": None, "reader": {}, "generated": True,
            "density_g_cm3": density["density_g_cm3"]["mean"], "pressure_bar": recorded["pressure_bar"]}


def map_data(out: Path, source: str, top: str | None, reader: dict[str, Any], mapping: str) -> dict[str, Any]:
    """Map the atomistic run onto beads: ``out/data.h5`` (whole molecules, summed forces); ``reader`` holds
    what the trajectory file cannot tell (a LAMMPS dump's unit style and time step)."""
    from cgzoo.data.build import build_dataset
    from cgzoo.data.dataset import CGDataset
    from cgzoo.io import read_atomistic
    from cgzoo.mapping import CGMapper, load_mapping

    atoms = read_atomistic(source, top=top, **reader)
    mapper = CGMapper(load_mapping(mapping), atoms.topology)
    data = build_dataset(atoms, mapper, out / "data.h5", overwrite=True, progress=False)
    ds = CGDataset.load(data)
    top_cg = ds.topology
    return {"data": str(data), "n_frames": ds.n_frames, "n_beads": top_cg.n_beads,
            "n_molecules": len(set(top_cg.molecule_ids.tolist())), "has_bonds": bool(len(top_cg.bonds)),
            "temperature_K": ds.temperature}


def score(out: Path, model: str, data: str) -> dict[str, Any]:
    """The held-out force errors of a fitted prior or trained network on every test frame of the default split:
    RMSE and R² in the result, per-frame error sums in ``out/frame_errors.npz`` (frames, sums; rows
    :data:`cgzoo.metrics.ForceErrors.ROWS`) for the paired bootstrap of the study's results."""
    from cgzoo.md.calculator import load_any_model
    from cgzoo.md.inputs import held_out_frame_errors
    from cgzoo.metrics import ForceErrors
    from cgzoo.outputs import replace_file

    frames, sums = held_out_frame_errors(load_any_model(model), Path(data))
    if not len(frames):
        return {"force_rmse": None, "force_r2": None, "frame_errors": None}
    path = replace_file(out / "frame_errors.npz", lambda tmp: _save_npz(tmp, frames=frames, sums=sums))
    total = ForceErrors.from_sums(sums.sum(axis=0)).total()
    return {"force_rmse": total.rmse, "force_r2": total.r2, "frame_errors": str(path)}


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` into exactly ``path`` (given a name, numpy would append ``.npz`` to a temporary one)."""
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def fit_prior(out: Path, data: str, specs: dict[str, str], has_bonds: bool, max_frames: int | None = None) -> dict[str, Any]:
    """Fit the prior spec ``specs["bonded"]`` (CG molecules with bonds) or ``specs["pairs"]`` on the training split
    (``cgzoo fit-prior`` into ``out/fit``, which appears only when complete); its held-out error is a :func:`score`.

    ``max_frames`` (the networks' ``data.max_train_frames``) thins the training split exactly as the networks' data
    module does, so the prior and the networks learn from the same frames.
    """
    import yaml

    from cgzoo.fitting.spec import load_spec, run_fit_prior
    from cgzoo.outputs import write_atomic

    started = time.perf_counter()
    spec = specs["bonded" if has_bonds else "pairs"]
    if max_frames is not None:
        spec_path = out / "spec.yaml"
        write_atomic(spec_path, yaml.safe_dump({**load_spec(spec), "max_frames": int(max_frames)}, sort_keys=False))
        spec = str(spec_path)
    fit = out / "fit"
    report = run_fit_prior(data, spec, fit, overwrite=True, progress=lambda msg: None)
    seconds = time.perf_counter() - started
    return {"prior": str(fit / "prior.json"),
            "reference_force_rms": report["errors"].get("test", {}).get("reference_force_rms"), "spec": spec,
            "fit_seconds": seconds}


def train(out: Path, data: str, prior: str, configs: list[str], mode: str, network_args: dict[str, Any],
          training: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train one network in ``mode`` with the Lightning CLI: zoo ``configs`` (``models/<arch>.yaml``,
    ``models/modes/<mode>.yaml``) + overrides; the study's prior under a Δ model, none otherwise. ``converged`` in the
    result: early stopping ended the run before the ``trainer.max_epochs`` cap (None when the preset sets no cap).

    ``training`` maps dotted Lightning keys (``trainer.max_epochs``, ``data.max_train_frames``,
    ``model.lr``...) to values. A killed run resumes from ``out/checkpoints/last.ckpt``.
    """
    from cgzoo.training.cli import run_lightning

    argv = ["fit", *(arg for config in configs for arg in ("--config", config)), "--model.mode", mode,
            "--model.network_args", json.dumps(network_args),
            "--data.data", data, "--data.prior", prior if mode == "delta" else "none",
            "--trainer.default_root_dir", str(out), "--seed_everything", str(seed),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    for key, value in training.items():
        argv += [f"--{key}", json.dumps(value) if isinstance(value, (list, dict)) else str(value)]
    last = out / "checkpoints" / "last.ckpt"
    if last.exists():
        argv += ["--ckpt_path", str(last)]
    elif last.parent.exists():  # killed before its first last.ckpt: nothing to resume, and a new fit refuses old files
        shutil.rmtree(last.parent)
    started = time.perf_counter()
    run_lightning(argv)
    seconds = time.perf_counter() - started
    best = sorted((out / "checkpoints").glob("best-*.ckpt"))
    if len(best) != 1:
        raise RuntimeError(f"{out / 'checkpoints'}: expected one best-*.ckpt after training, found {len(best)}")
    epochs = _epochs_trained(out)
    cap = training.get("trainer.max_epochs")
    return {"checkpoint": str(best[0]), "train_seconds": seconds,
            "epochs": epochs, "converged": None if cap is None else epochs < int(cap)}


def _epochs_trained(out: Path) -> int:
    """Epochs the run completed, from its learning curve (one row per validated epoch)."""
    import csv

    with (out / "learning_curve.csv").open() as handle:
        return sum(1 for _ in csv.DictReader(handle))


def simulate(out: Path, model: str, data: str, start_frame: int, settings: dict[str, Any], device: str = "cpu",
             replica: int = 0, replicas: int = 1, n_frames: int = 1) -> dict[str, Any]:
    """One CG MD replica (``cgzoo simulate``); a run the stability guard stops is a result (``status: unstable``), not a
    failure. Replica ``k`` of ``replicas`` starts from frame ``start_frame + k·n_frames/replicas`` (modulo the
    ``n_frames`` of the dataset), so replicas sample different reference configurations as well as velocities.

    ``device`` ``auto`` means CUDA when torch sees a GPU, else the CPU. The engine is the settings' (default
    ``auto``: LAMMPS for pair-additive models, ASE for graph networks, see :func:`cgzoo.md.integrators.choose_engine`).
    """
    import torch

    from cgzoo.md import SimulationSettings
    from cgzoo.md import simulate as run_md
    from cgzoo.md.simulate import UnstableSimulation

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    run = out / "run"  # the run directory is the simulate command's own; task.json and task.log stay beside it
    frame = (start_frame + replica * n_frames // replicas) % n_frames
    started = time.perf_counter()
    try:
        run_md(model, f"{data}@{frame}", run, SimulationSettings(**settings), overwrite=True, progress=False,
               device=device)
    except UnstableSimulation as exc:
        message = str(exc)
    else:
        message = ""
    seconds = time.perf_counter() - started
    info = json.loads((run / "run.json").read_text())
    steps = int(info.get("steps_done", 0))
    ns_per_day = steps * settings["timestep_fs"] * 1e-6 / (seconds / 86400) if seconds > 0 else math.nan
    return {"run": str(run), "status": info.get("status"), "steps_done": steps, "steps": settings["steps"], "start_frame": frame,
            "message": message, "md_seconds": seconds, "ns_per_day": ns_per_day, "engine": info.get("engine")}


def evaluate(out: Path, data: str, runs: dict[str, str], equil_fs: float,
             reference_pressure_bar: float | None = None) -> dict[str, Any]:
    """``cgzoo evaluate`` of ``runs`` (label → run directory) against the mapped reference, whose pressure is the
    atomistic run's (None: unknown, for existing data that does not state it); writes ``out/report/``."""
    from cgzoo.observables.report import evaluate as run_evaluate

    report = out / "report"
    run_evaluate(data, runs, report, equil_fs=equil_fs, reference_pressure_bar=reference_pressure_bar, overwrite=True)
    return {"metrics": str(report / "metrics.json")}
