"""A run directory on disk (format: :mod:`cgzoo.data.run_record`): a new run's empty directory, and a restart's state.

A restart continues from the last complete saved frame: a torn ``traj.traj`` is rebuilt from its
complete frames and ``log.csv`` is cut back to exactly one row per saved frame. Call these while
holding the directory's :func:`cgzoo.outputs.output_lock`.
"""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import Trajectory

from cgzoo.data.run_record import LOG_FIELDS, RUN_FILES, read_run_json, run_topology
from cgzoo.data.start import label_beads
from cgzoo.errors import InputError, check_output_path
from cgzoo.md.settings import SimulationSettings, continued_settings
from cgzoo.outputs import remove_stale_temporaries, replace_file


def check_new_run_dir(out: Path, overwrite: bool) -> None:
    """Refuse an existing ``out`` unless ``overwrite``, and then anything but a run directory or an empty one."""
    check_output_path(out, overwrite)
    if out.exists() and not (out.is_dir() and ((out / "run.json").exists() or not any(out.iterdir()))):
        raise InputError(out, "is not a cgzoo simulate run directory, so --overwrite will not delete it; choose another --out")


def new_run_dir(out: Path) -> None:
    """An empty ``out``: every file of a previous run (``last_good.extxyz``, the engine's work files, …) deleted."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def restart_state(out: Path, requested: SimulationSettings) -> tuple[Atoms, dict[str, np.ndarray], int, SimulationSettings]:
    """Last complete saved frame (positions, velocities, cell), bonded topology, step and settings of a run, to its new target."""
    info = out / "run.json"
    if not info.exists() or not (out / "traj.traj").exists():
        raise InputError(out, "nothing to restart (no run.json / traj.traj)")
    saved = read_run_json(info)
    recorded = SimulationSettings(**{k: saved[k] for k in SimulationSettings.model_fields if k in saved})
    topology = run_topology(saved, info)
    s = continued_settings(recorded, requested, info)
    for name in RUN_FILES:
        remove_stale_temporaries(out / name)
    frames = recover_trajectory(out / "traj.traj")
    atoms = frames[-1]
    if len(s.bead_types) != len(atoms):
        raise InputError(info, "run.json lacks the bead types of its trajectory; cannot restart")
    label_beads(atoms, s.bead_types, s.molecule_ids)
    steps = [round(f.info.get("time_fs", 0.0) / s.timestep_fs) for f in frames]
    if steps[-1] >= s.steps:
        raise InputError(out, f"run already has {steps[-1]} of its {s.steps} steps; ask for more with --steps")
    truncate_log(out / "log.csv", steps)
    return atoms, topology, steps[-1], s


def recover_trajectory(path: Path) -> list[Atoms]:
    """The complete frames of a run's ``traj.traj``; a torn file (cut mid-frame) is rewritten with them, with a warning."""
    try:
        traj = Trajectory(str(path), "r")
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for a damaged file
        raise InputError(path, f"torn or unreadable ({type(exc).__name__}), no frame to continue from; "
                               "start again with --overwrite") from None
    with traj:
        total, frames = len(traj), []
        for i in range(total):
            try:
                frames.append(traj[i])
            except Exception:  # noqa: BLE001 - the first damaged frame ends what can be recovered
                break
    if not frames:
        raise InputError(path, "torn: no complete frame to continue from; start again with --overwrite")
    if len(frames) < total:
        warnings.warn(f"{path}: torn after {len(frames)} of {total} frames; continuing from the last complete frame "
                      f"(t = {frames[-1].info.get('time_fs', 0.0):g} fs)", stacklevel=2)
        replace_file(path, lambda tmp: _write_traj(tmp, frames))
    return frames


def _write_traj(path: Path, frames: list[Atoms]) -> None:
    """An ASE trajectory holding ``frames``."""
    with Trajectory(str(path), "w") as traj:
        for frame in frames:
            traj.write(frame)


def truncate_log(path: Path, frame_steps: list[int]) -> None:
    """Keep exactly one log row per saved frame, in order: rows after the last frame and torn, NUL or repeated lines go."""
    rows: dict[int, dict[str, str]] = {}
    if path.exists():
        lines = [line for line in path.read_text(errors="replace").splitlines() if "\0" not in line]
        for row in csv.DictReader(lines):
            step = _row_step(row)
            if step is not None:
                rows.setdefault(step, row)
    keep = [rows[step] for step in frame_steps if step in rows]

    def write_rows(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, LOG_FIELDS)
            writer.writeheader()
            writer.writerows(keep)

    replace_file(path, write_rows)


def _row_step(row: dict[str | None, Any]) -> int | None:
    """The step of a complete, numeric log row, or None for a torn or foreign line."""
    if None in row or any(row.get(name) in (None, "") for name in LOG_FIELDS):
        return None
    try:
        values = [float(row[name]) for name in LOG_FIELDS]
    except ValueError:
        return None
    return int(values[0]) if values[0].is_integer() else None
