"""Start structures: a frame of a CG dataset, a frame of a ``cgzoo simulate`` run, or any ASE-readable file, as ASE atoms plus bonded topology.

MD starts from them and observables read a run's bead types from them; loading needs neither
torch nor a model. ASE is imported where it is used, as in :mod:`cgzoo.data.export`. Atoms follow
the bead-type convention of :mod:`cgzoo.data.export` (``bead_type``/``molecule_id`` arrays).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgzoo.data.dataset import CGDataset
from cgzoo.data.export import frame_to_atoms
from cgzoo.errors import InputError
from cgzoo.terms import FIELD_ORDER

if TYPE_CHECKING:
    from ase import Atoms

#: frame files of a run directory, whose bead types and bonds are in its run.json
RUN_FRAME_FILES = ("traj.traj", "traj.extxyz", "last_good.extxyz")


def read_run_json(info: Path) -> dict[str, Any]:
    """The JSON object of a run's ``run.json``; :class:`InputError` when it is not one."""
    try:
        saved = json.loads(info.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(info, f"not valid JSON ({exc}); the run cannot be continued") from None
    if not isinstance(saved, dict):
        raise InputError(info, "does not hold a JSON object; the run cannot be continued")
    return saved


def run_topology(saved: dict[str, Any], info: Path) -> dict[str, np.ndarray]:
    """The bonded index lists (``bonds``, ``angles``, ``dihedrals``) a run's ``run.json`` records."""
    topology = {}
    for field, n in FIELD_ORDER.items():
        try:
            topology[field] = np.asarray(saved.get(field) or np.zeros((0, n)), dtype=np.int64).reshape(-1, n)
        except (ValueError, TypeError):
            raise InputError(info, f"{field} must be lists of {n} bead indices") from None
    return topology


def label_beads(atoms: Atoms, bead_types: list[str], molecule_ids: list[int]) -> None:
    """Attach ``bead_type`` (exactly as wide as the longest name: none is cut) and ``molecule_id`` arrays (kept in run.json, since ASE's .traj drops them)."""
    for name, values in (("bead_type", np.array(bead_types, dtype=str)), ("molecule_id", np.array(molecule_ids, dtype=int))):
        atoms.set_array(name, None)  # ASE copies into an existing array, which would cut longer names to its width
        atoms.new_array(name, values)


def atoms_from_dataset(path: str | Path, frame: int = 0) -> tuple[Atoms, dict[str, np.ndarray]]:
    """Frame ``frame`` of a CG dataset as ASE atoms plus its bonded lists."""
    ds = CGDataset.load(path)
    if not -ds.n_frames <= frame < ds.n_frames:
        raise InputError(path, f"frame {frame} out of range (dataset has {ds.n_frames} frames)")
    atoms = frame_to_atoms(ds, frame)
    atoms.calc = None
    top = ds.topology
    return atoms, {"bonds": top.bonds, "angles": top.angles, "dihedrals": top.dihedrals}


def load_start(start: str) -> tuple[Atoms, dict[str, np.ndarray]]:
    """Starting structure: ``DATA.h5`` or ``DATA.h5@FRAME`` (a CG dataset); a ``cgzoo simulate`` run directory, or a
    frame file inside one (``RUN``, ``RUN/traj.traj@FRAME``: last frame by default), with the run's bead types and
    bonded topology; or any other ASE-readable file (last frame; no bonds)."""
    from ase.io import read

    path, _, frame = start.partition("@")
    p = Path(path)
    if not p.exists():
        raise InputError(p, "start structure does not exist")
    if p.suffix.lower() in (".h5", ".hdf5"):
        return atoms_from_dataset(p, int(frame or 0))
    if p.is_dir():
        if not (p / "run.json").exists():
            raise InputError(p, "a start directory must be a cgzoo simulate run (it has no run.json)")
        p = p / "traj.traj"
    try:
        atoms = read(str(p), index=frame or -1)
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for unreadable files
        raise InputError(p, f"ASE cannot read it ({type(exc).__name__})") from None
    run_json = p.parent / "run.json"
    if run_json.exists() and p.name in RUN_FRAME_FILES:
        saved = read_run_json(run_json)
        bead_types, molecule_ids = _run_beads(saved, run_json)
        if len(bead_types) != len(atoms):
            raise InputError(run_json, f"records {len(bead_types)} beads, {p.name} has {len(atoms)}")
        label_beads(atoms, bead_types, molecule_ids)
        return atoms, run_topology(saved, run_json)
    empty = {field: np.zeros((0, n), int) for field, n in FIELD_ORDER.items()}
    return atoms, empty


def _run_beads(saved: dict[str, Any], info: Path) -> tuple[list[str], list[int]]:
    """The per-bead type names and molecule ids a run's ``run.json`` records, checked."""
    bead_types, molecule_ids = saved.get("bead_types") or [], saved.get("molecule_ids") or []
    if not isinstance(bead_types, list) or not all(isinstance(t, str) for t in bead_types):
        raise InputError(info, "bead_types must be a list of type names")
    if not isinstance(molecule_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in molecule_ids):
        raise InputError(info, "molecule_ids must be a list of integers")
    return bead_types, molecule_ids
