"""Start structures: a frame of a CG dataset, a frame of a ``cgzoo simulate`` run, or any ASE-readable file, as ASE atoms plus bonded topology.

MD starts from them and observables read a run's bead types from them; loading needs neither
torch nor a model. ASE is imported where it is used, as in :mod:`cgzoo.data.export`. Atoms follow
the bead-type convention of :mod:`cgzoo.data.export` (``bead_type``/``molecule_id`` arrays).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cgzoo.data.dataset import CGDataset
from cgzoo.data.export import extxyz_topology, frame_to_atoms
from cgzoo.data.run_record import RUN_FRAME_FILES, read_run_json, run_beads, run_topology
from cgzoo.errors import InputError
from cgzoo.io.extxyz import topology_record
from cgzoo.terms import FIELD_ORDER

if TYPE_CHECKING:
    from ase import Atoms


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
    bonded topology; a cgzoo extxyz (``cgzoo convert``: any frame, with the bead types, molecules and bonded lists its
    first frame records); or any other ASE-readable file (last frame; no bonds)."""
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
    if p.suffix.lower() in (".xyz", ".extxyz"):
        bonded = _extxyz_labels(p, atoms)
        if bonded is not None:
            return atoms, bonded
    run_json = p.parent / "run.json"
    if run_json.exists() and p.name in RUN_FRAME_FILES:
        saved = read_run_json(run_json)
        bead_types, molecule_ids = run_beads(saved, run_json)
        if len(bead_types) != len(atoms):
            raise InputError(run_json, f"records {len(bead_types)} beads, {p.name} has {len(atoms)}")
        label_beads(atoms, bead_types, molecule_ids)
        return atoms, run_topology(saved, run_json)
    empty = {field: np.zeros((0, n), int) for field, n in FIELD_ORDER.items()}
    return atoms, empty


def _extxyz_labels(path: Path, atoms: Atoms) -> dict[str, np.ndarray] | None:
    """Label ``atoms`` (a frame of ``path``) with the bead types and molecules of a cgzoo extxyz's first-frame record and
    return its bonded lists; None for an extxyz without that record (or a plain XYZ)."""
    from ase.io import read

    try:
        first = read(str(path), index=0, format="extxyz")
    except Exception:  # noqa: BLE001 - not extended XYZ (plain XYZ read by ASE's other reader): no record
        return None
    record = topology_record(first, path)
    if not record:
        return None
    top = extxyz_topology(first, record, path)
    if top.n_beads != len(atoms):
        raise InputError(path, f"the chosen frame has {len(atoms)} beads, frame 0 (whose record gives the topology) "
                               f"has {top.n_beads}")
    label_beads(atoms, [top.type_names[t] for t in top.bead_types], top.molecule_ids.tolist())
    return {field: np.asarray(getattr(top, field)) for field in FIELD_ORDER}
