"""Read extended-XYZ trajectories with forces through ASE, converting eV/Å to kcal/(mol·Å).

Per-atom columns give the topology when present: ``name``, ``atom_name`` or ``bead_name`` (else the
chemical symbol), ``resname`` (else ``UNK``), ``resid``, and ``molecule_id`` or ``mol-id``. Without
``resid`` every atom is its own residue; without a molecule column molecules are the residues,
so a file with neither has one-atom molecules (a mapping that puts several atoms in one bead
then has to reject it). Bonds come from the first frame's ``info["cgzoo"]`` record (:data:`TOPOLOGY_KEY`, percent-encoded
JSON: how cgzoo writes a CG dataset, :mod:`cgzoo.data.export`), so a cgzoo extxyz maps again like any input.
Times come from the ``time`` info key in fs, else frame index × ``timestep``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import numpy as np

from cgzoo.errors import InputError
from cgzoo.io import UNKNOWN_RESNAME, chunk_frames, dense_labels, require_exists
from cgzoo.io.base import AtomisticSource, AtomTopology
from cgzoo.units import EV_A_TO_KCAL_MOL_A

if TYPE_CHECKING:
    from ase import Atoms

NAME_COLUMNS = ("name", "atom_name", "bead_name")
#: the ``atoms.info`` key of a first frame holding what no per-atom column can (written by :mod:`cgzoo.data.export`)
TOPOLOGY_KEY = "cgzoo"
MOLECULE_COLUMNS = ("molecule_id", "mol-id")


def read_extxyz(path: str | Path, timestep: float = 1.0) -> AtomisticSource:
    """Open an extxyz file as an :class:`AtomisticSource`; frames without ``time`` are ``timestep`` fs apart.

    Each pass streams: ASE first scans the file for frame offsets, then parses one frame at a time.
    """
    path = require_exists(path)
    first = next(_frames(path, stop=1), None)
    if first is None:
        raise InputError(path, "has no frames")
    top = _topology(first, path)
    _check_frame(first, 0, top.n_atoms, path)
    frame_forces(first, 0, path)

    def frames() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
        for index, atoms in enumerate(_frames(path)):
            _check_frame(atoms, index, top.n_atoms, path)
            forces = frame_forces(atoms, index, path) * EV_A_TO_KCAL_MOL_A
            yield atoms.positions, forces, atoms.cell.array, float(atoms.info.get("time", index * timestep))

    return AtomisticSource(
        topology=top,
        n_frames=_count_frames(path),
        paths=[str(path)],
        read_chunks=lambda chunk_size: chunk_frames(frames(), chunk_size),
    )


def _frames(path: Path, stop: int | None = None) -> Iterator[Atoms]:
    """Stream frames (up to ``stop``) with ASE, turning its parse errors into :class:`InputError`."""
    import ase.io

    frames = ase.io.iread(path, index=slice(0, stop), format="extxyz")
    index = 0
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except Exception as exc:  # ASE raises XYZError, ValueError, KeyError, ... for malformed files
            problem = " ".join(str(exc).split())
            raise InputError(path, f"frame {index}: ASE cannot read it as extxyz: {problem}") from exc
        yield atoms
        index += 1


def _topology(atoms: Atoms, path: Path) -> AtomTopology:
    """Build the topology from the first frame's symbols, masses and per-atom columns."""
    arrays = atoms.arrays
    n = len(atoms)
    names = next((arrays[c] for c in NAME_COLUMNS if c in arrays), atoms.get_chemical_symbols())
    resids = np.asarray(arrays["resid"], dtype=np.int64) if "resid" in arrays else np.arange(1, n + 1)
    molecules = next((arrays[c] for c in MOLECULE_COLUMNS if c in arrays), resids)
    top = AtomTopology(
        names=np.asarray(names, dtype=str),
        resnames=np.asarray(arrays.get("resname", np.full(n, UNKNOWN_RESNAME)), dtype=str),
        resids=resids,
        masses=np.asarray(atoms.get_masses(), dtype=np.float64),
        molecule_ids=dense_labels(np.asarray(molecules)),
        bonds=_bonds(atoms, path),
        source=str(path),
    )
    top.validate()
    return top


def encode_record(record: dict[str, Any]) -> str:
    """A JSON record as one ``atoms.info`` string: percent-encoded JSON, since ASE's extxyz mangles quotes and backslashes."""
    return quote(json.dumps(record), safe=" ,:[]")


def topology_record(atoms: Atoms, path: Path) -> dict[str, Any]:
    """The decoded ``info["cgzoo"]`` of a frame (:func:`encode_record`); empty when the frame has none."""
    text = atoms.info.get(TOPOLOGY_KEY)
    if text is None:
        return {}
    try:
        record = json.loads(unquote(str(text)))
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise InputError(path, f"info key {TOPOLOGY_KEY!r} of frame 0 is not a cgzoo topology record")
    return record


def _bonds(atoms: Atoms, path: Path) -> np.ndarray:
    """The 0-based bonded pairs of the first frame's ``info["cgzoo"]["bonds"]``, none without that record."""
    try:
        return np.asarray(topology_record(atoms, path).get("bonds") or np.zeros((0, 2)), dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise InputError(path, f"info[{TOPOLOGY_KEY!r}]['bonds'] of frame 0 is not a list of atom index pairs") from None


def frame_forces(atoms: Atoms, index: int, path: Path) -> np.ndarray:
    """Forces in eV/Å from the attached calculator's results, else from a ``forces`` column."""
    if atoms.calc is not None and "forces" in atoms.calc.results:
        return np.asarray(atoms.calc.results["forces"], dtype=np.float64)
    if "forces" in atoms.arrays:
        return np.asarray(atoms.arrays["forces"], dtype=np.float64)
    raise InputError(path, f"trajectory has no forces (frame {index} has no 'forces' column)")


def _check_frame(atoms: Atoms, index: int, n_atoms: int, path: Path) -> None:
    """Raise :class:`InputError` for a frame with another atom count or without full periodicity."""
    if len(atoms) != n_atoms:
        raise InputError(path, f"frame {index} has {len(atoms)} atoms but frame 0 has {n_atoms}")
    if not atoms.pbc.all():
        raise InputError(path, f"frame {index} is not periodic (pbc={atoms.pbc.tolist()}); "
                               "cgzoo needs a periodic cell (Lattice and pbc=\"T T T\")")


def _count_frames(path: Path) -> int:
    """Count frames by their atom-count lines, skipping each frame's comment and atom lines unparsed."""
    count = 0
    with open(path) as handle:
        for line in handle:
            if not line.strip() or line.lstrip().startswith("VEC"):
                continue
            try:
                n_atoms = int(line)
            except ValueError:
                raise InputError(path, f"frame {count} does not start with an atom count") from None
            for _ in range(n_atoms + 1):
                next(handle, None)
            count += 1
    return count
