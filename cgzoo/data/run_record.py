"""The files of a ``cgzoo simulate`` run directory and its ``run.json``: one home for the format, for MD and observables alike.

A run directory holds ``traj.traj`` (ASE trajectory: unwrapped positions in Å, velocities, cell,
``info["time_fs"]``), ``traj.extxyz`` (the same frames with ``bead_type``/``molecule_id`` arrays),
``topology.data`` + ``traj.dcd`` (the same frames as a LAMMPS data topology and a DCD trajectory for
VMD, OVITO and MDAnalysis, :mod:`cgzoo.data.interop`), ``log.csv`` (:data:`LOG_FIELDS`, one row per
saved frame), ``run.json`` (the run's settings, the model file's sha256, engine, bonded topology,
per-bead types and molecule ids, ``status`` and ``steps_done``) and, if the stability guard stopped
the run, ``last_good.extxyz``. Reading it needs
neither torch nor a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.errors import InputError
from cgzoo.outputs import replace_file
from cgzoo.terms import FIELD_ORDER

#: columns of ``log.csv``: thermodynamics of each saved frame in cgzoo units (energies in kcal/mol)
LOG_FIELDS = ["step", "time_fs", "temperature_K", "pressure_bar", "density_g_cm3", "epot_kcal_mol", "ekin_kcal_mol",
              "etot_kcal_mol"]
#: the frame written when the stability guard stops a run
LAST_GOOD = "last_good.extxyz"
#: files of a run directory (a restart removes temporaries of them left by a killed run)
RUN_FILES = ("run.json", "traj.extxyz", "log.csv", "traj.traj", LAST_GOOD, "topology.data", "traj.dcd")
#: frame files of a run directory, whose bead types and bonds are in its run.json
RUN_FRAME_FILES = ("traj.traj", "traj.extxyz", LAST_GOOD)


def read_run_json(info: Path) -> dict[str, Any]:
    """The JSON object of a run's ``run.json``; :class:`InputError` when it is missing or not one."""
    if not info.is_file():
        raise InputError(info, "run.json does not exist (not a cgzoo simulate run directory?)")
    try:
        saved = json.loads(info.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(info, f"not valid JSON ({exc})") from None
    if not isinstance(saved, dict):
        raise InputError(info, "does not hold a JSON object")
    return saved


def write_run_json(out: Path, settings: dict[str, Any], status: str, steps_done: int) -> None:
    """``out/run.json``: the run's ``settings`` with its ``status`` and ``steps_done``, replaced whole (never torn)."""
    payload = {**settings, "status": status, "steps_done": steps_done}
    replace_file(out / "run.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


def run_topology(saved: dict[str, Any], info: Path) -> dict[str, np.ndarray]:
    """The bonded index lists (``bonds``, ``angles``, ``dihedrals``) a run's ``run.json`` records."""
    topology = {}
    for field, n in FIELD_ORDER.items():
        try:
            topology[field] = np.asarray(saved.get(field) or np.zeros((0, n)), dtype=np.int64).reshape(-1, n)
        except (ValueError, TypeError):
            raise InputError(info, f"{field} must be lists of {n} bead indices") from None
    return topology


def run_beads(saved: dict[str, Any], info: Path) -> tuple[list[str], list[int]]:
    """The per-bead type names and molecule ids a run's ``run.json`` records, checked."""
    bead_types, molecule_ids = saved.get("bead_types") or [], saved.get("molecule_ids") or []
    if not isinstance(bead_types, list) or not all(isinstance(t, str) for t in bead_types):
        raise InputError(info, "bead_types must be a list of type names")
    if not isinstance(molecule_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in molecule_ids):
        raise InputError(info, "molecule_ids must be a list of integers")
    return bead_types, molecule_ids
