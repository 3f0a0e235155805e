"""The CG dataset: mapped bead positions and forces with everything needed to train and simulate.

On disk a dataset is one HDF5 file (suffix ``.h5`` or ``.hdf5``), schema version 1:

=====================  ===========  =========================================================
name                   shape        meaning (cgzoo units, see :mod:`cgzoo.units`)
=====================  ===========  =========================================================
``positions``          (F, N, 3)    bead positions, Å, wrapped into the cell
``forces``             (F, N, 3)    mapped bead forces, kcal/(mol·Å)
``box``                (F, 3, 3)    cell, Å, rows are the lattice vectors
``time``               (F,)         simulation time of each frame, fs
``bead_types``         (N,)         int index into ``type_names``
``type_names``         (T,)         bead type names (str)
``bead_names``         (N,)         bead names from the mapping (str)
``masses``             (N,)         bead masses, amu
``molecule_ids``       (N,)         0-based molecule index of each bead
``bonds``              (B, 2)       bead index pairs of CG bonds
``angles``             (A, 3)       bead index triplets of CG angles (vertex in the middle)
``dihedrals``          (D, 4)       bead index quadruplets of CG dihedrals
=====================  ===========  =========================================================

File attributes: ``format`` (``"cgzoo-cg-dataset"``), ``format_version``, ``units`` (JSON),
``temperature`` (K, NaN if unknown), ``provenance`` (JSON: source files, mapping name and
SHA-256, mapping text, command line, cgzoo version, creation time) and ``checksums`` (JSON:
SHA-256 of every array's bytes in C order, written when the file is complete; files written before
checksums existed have none and are read unverified).
Frames are appended by :class:`DatasetWriter` so a long trajectory is mapped in constant memory;
the file is written under a per-process temporary name, with the output locked, and renamed into
place only when complete (:mod:`cgzoo.outputs`).

Every read checks the schema, shapes, finiteness and physical sanity (positive masses, a cell of
positive volume, bead indices inside the system) in :func:`check_dataset`; :meth:`CGDataset.load`
also verifies the checksums, and :func:`verify_checksums` does so streaming for readers that keep
frames on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cgzoo.errors import InputError, check_output_path
from cgzoo.outputs import atomic_file
from cgzoo.units import DATASET_UNITS

FORMAT_NAME = "cgzoo-cg-dataset"
FORMAT_VERSION = 1
HDF5_SUFFIXES = (".h5", ".hdf5")
EXTXYZ_SUFFIXES = (".extxyz", ".xyz")
_FRAME_KEYS = ("positions", "forces", "box", "time")
#: the :class:`CGDataset` field of each frame array on disk (plural, as every trajectory type in cgzoo names them)
_FRAME_FIELDS = {"positions": "positions", "forces": "forces", "box": "boxes", "time": "times"}
_TOPOLOGY_KEYS = ("bead_types", "type_names", "bead_names", "masses", "molecule_ids", "bonds", "angles", "dihedrals")
_VERIFY_CHUNK = 256  # frames hashed at a time when verifying a file on disk


@dataclass
class CGTopology:
    """Per-bead facts that do not change along the trajectory."""

    bead_types: np.ndarray
    type_names: list[str]
    bead_names: np.ndarray
    masses: np.ndarray
    molecule_ids: np.ndarray
    bonds: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    angles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    dihedrals: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))

    @property
    def n_beads(self) -> int:
        return len(self.bead_types)


@dataclass
class CGDataset:
    """A CG trajectory in memory: frames (positions, forces, boxes, times; on disk ``box``, ``time``) plus topology and metadata."""

    positions: np.ndarray
    forces: np.ndarray
    boxes: np.ndarray
    times: np.ndarray
    topology: CGTopology
    temperature: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.positions)

    @property
    def n_beads(self) -> int:
        return self.topology.n_beads

    def subset(self, frames: np.ndarray | slice) -> "CGDataset":
        """A dataset holding only the selected frames (same topology and metadata)."""
        return replace(
            self,
            positions=self.positions[frames],
            forces=self.forces[frames],
            boxes=self.boxes[frames],
            times=self.times[frames],
        )

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write to ``path``; the suffix chooses the format (``.h5``/``.hdf5`` or ``.extxyz``/``.xyz``)."""
        path = dataset_output(path, overwrite)
        suffix = path.suffix.lower()
        if suffix in EXTXYZ_SUFFIXES:
            from cgzoo.data.export import write_extxyz

            check_dataset(self, path)
            with atomic_file(path, overwrite) as tmp:
                write_extxyz(self, tmp)
            return path
        with DatasetWriter(path, self.topology, self.temperature, self.provenance, overwrite=overwrite) as writer:
            writer.append(self.positions, self.forces, self.boxes, self.times)
        return path

    @classmethod
    def load(cls, path: str | Path, frames: np.ndarray | None = None) -> "CGDataset":
        """Read a cgzoo HDF5 dataset, checking its schema, its checksums and that every frame is finite; an
        ``.extxyz``/``.xyz`` file is read as :func:`cgzoo.data.export.read_extxyz_dataset` reads it, with the same checks
        but no checksums.

        ``frames`` reads only those frames (in increasing order) for readers that need a few of a long
        trajectory; checksums cover whole arrays, so such a reader verifies the file first
        (:func:`verify_checksums`).
        """
        path = Path(path)
        if path.suffix.lower() in EXTXYZ_SUFFIXES:
            from cgzoo.data.export import read_extxyz_dataset

            dataset = read_extxyz_dataset(path)
            dataset = dataset if frames is None else dataset.subset(np.unique(np.asarray(frames, dtype=np.int64)))
            check_dataset(dataset, path)
            return dataset
        with _open_checked(path) as h5, _read_errors(path):
            topology = _read_topology(h5)
            if frames is None:
                arrays = {key: h5[key][()] for key in _FRAME_KEYS}
                _verify(path, _stored_checksums(h5, path), {key: [arr] for key, arr in arrays.items()},
                        topology_arrays(h5))
            else:
                selected = np.unique(np.asarray(frames, dtype=np.int64))
                arrays = {key: h5[key][selected] for key in _FRAME_KEYS}
            dataset = cls(**{_FRAME_FIELDS[key]: arr for key, arr in arrays.items()}, topology=topology, temperature=_temperature(h5),
                          provenance=_json_attr(h5, "provenance", path))
        check_dataset(dataset, path)
        return dataset


def _open_checked(path: Path) -> h5py.File:
    """Open a dataset file for reading, refusing missing, non-HDF5, foreign, newer or incomplete files."""
    if not path.exists():
        raise InputError(path, "dataset file does not exist")
    if path.is_dir():
        raise InputError(path, "is a directory, not a dataset file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"not a readable HDF5 file ({exc.__class__.__name__})") from None
    try:
        with _read_errors(path):
            problem = _schema_problem(h5)
    except InputError:
        h5.close()
        raise
    if problem:
        h5.close()
        raise InputError(path, problem)
    return h5


def _schema_problem(h5: h5py.File) -> str | None:
    """Why an open HDF5 file is not a dataset this cgzoo reads (foreign, newer, incomplete), or None."""
    if h5.attrs.get("format") != FORMAT_NAME:
        return "not a cgzoo CG dataset (missing format attribute)"
    if int(h5.attrs.get("format_version", -1)) > FORMAT_VERSION:
        return f"dataset format version {int(h5.attrs['format_version'])} is newer than this cgzoo ({FORMAT_VERSION})"
    missing = [k for k in (*_FRAME_KEYS, *_TOPOLOGY_KEYS) if k not in h5]
    return f"dataset lacks {', '.join(missing)}" if missing else None


def dataset_output(path: str | Path, overwrite: bool) -> Path:
    """``path`` checked as a dataset output: a known suffix, not a directory, not existing unless ``overwrite``."""
    path = Path(path)
    if path.suffix.lower() not in (*HDF5_SUFFIXES, *EXTXYZ_SUFFIXES):
        raise InputError(path, f"unknown dataset suffix {path.suffix!r} (use .h5 or .extxyz)")
    if path.is_dir():
        raise InputError(path, "is a directory; a dataset is one file (.h5 or .extxyz)")
    return check_output_path(path, overwrite)


@contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Turn the errors h5py raises on damaged files into one-line :class:`InputError` naming the file."""
    try:
        yield
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeError) as exc:  # h5py on damaged bytes
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(path, f"damaged dataset file ({type(exc).__name__}: {detail})") from None


def _temperature(h5: h5py.File) -> float | None:
    """The file's temperature attribute, None when unknown."""
    temperature = float(h5.attrs.get("temperature", math.nan))
    return None if math.isnan(temperature) else temperature


def _json_attr(h5: h5py.File, name: str, path: Path) -> Any:
    """A JSON-valued file attribute (``{}`` when absent)."""
    try:
        return json.loads(h5.attrs.get(name, "{}"))
    except (TypeError, ValueError):
        raise InputError(path, f"damaged dataset file (attribute {name!r} is not JSON)") from None


def topology_arrays(h5: h5py.File) -> dict[str, np.ndarray]:
    """The stored topology arrays, as written (the checksummed form)."""
    return {key: h5[key][()] for key in _TOPOLOGY_KEYS}


def _digest(chunks: Iterable[np.ndarray]) -> str:
    """SHA-256 of arrays' bytes in C order, fed chunk by chunk (chunks of one array along its first axis)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        arr = np.asarray(chunk)
        if arr.dtype == object:  # variable-length strings: hash their UTF-8 text, one NUL after each
            for item in arr.reshape(-1):
                digest.update(_str(item).encode() + b"\0")
        else:
            digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _stored_checksums(h5: h5py.File, path: Path) -> dict[str, str]:
    """The checksums written with the file (empty for files written before checksums existed)."""
    if "checksums" not in h5.attrs:
        return {}
    stored = _json_attr(h5, "checksums", path)
    if not isinstance(stored, dict) or not stored or not all(isinstance(v, str) for v in stored.values()):
        raise InputError(path, "dataset is damaged: its checksum record is not a table of array checksums")
    return stored


def _verify(path: Path, stored: dict[str, str], frames: dict[str, Iterable[np.ndarray]],
            topology: dict[str, np.ndarray]) -> None:
    """Compare the stored checksums with the arrays read; :class:`InputError` naming the first damaged array."""
    if not stored:
        return
    arrays = {**frames, **{k: [v] for k, v in topology.items()}}
    if set(stored) != set(arrays):
        raise InputError(path, "dataset is damaged: its checksum record does not cover every array")
    for key, chunks in arrays.items():
        if _digest(chunks) != stored[key]:
            raise InputError(path, f"dataset is damaged: checksum of {key!r} does not match (file modified or "
                                   "corrupted after it was written)")


def has_checksums(path: str | Path) -> bool:
    """Whether a dataset file carries checksums (written by a cgzoo that stores them)."""
    path = Path(path)
    with _open_checked(path) as h5:
        return bool(_stored_checksums(h5, path))


def verify_checksums(path: str | Path) -> bool:
    """Verify every array of a dataset file against its stored checksums, streaming frames.

    Returns False for a file written without checksums; raises :class:`InputError` on a mismatch.
    """
    path = Path(path)
    with _open_checked(path) as h5, _read_errors(path):
        stored = _stored_checksums(h5, path)
        if stored:
            n = h5["positions"].shape[0]
            frames = {key: _chunked(h5[key], n) for key in _FRAME_KEYS}
            _verify(path, stored, frames, topology_arrays(h5))
    return bool(stored)


def _chunked(dset: h5py.Dataset, n: int) -> Iterator[np.ndarray]:
    """A stored array read ``_VERIFY_CHUNK`` frames at a time."""
    return (dset[start:start + _VERIFY_CHUNK] for start in range(0, n, _VERIFY_CHUNK))


def _read_topology(h5: h5py.File) -> CGTopology:
    """The per-bead arrays of an open dataset file; index arrays must be stored as integers."""

    def ints(key: str, width: int | None = None) -> np.ndarray:
        arr = h5[key][()]
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise InputError(h5.filename, f"{key} must be an integer array, got {arr.dtype}")
        arr = arr.astype(np.int64)
        return arr if width is None else arr.reshape(-1, width)

    return CGTopology(
        bead_types=ints("bead_types"),
        type_names=[_str(s) for s in h5["type_names"][()]],
        bead_names=np.array([_str(s) for s in h5["bead_names"][()]]),
        masses=h5["masses"][()].astype(np.float64),
        molecule_ids=ints("molecule_ids"),
        bonds=ints("bonds", 2),
        angles=ints("angles", 3),
        dihedrals=ints("dihedrals", 4),
    )


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_topology(top: CGTopology, path: str | Path | None) -> None:
    """Raise :class:`InputError` unless the topology is physically sane: the one place these rules live.

    Rules: at least one bead; one type index, name, mass and molecule id per bead; bead types index
    ``type_names``, which are distinct, non-empty and free of whitespace (engine tables and extxyz
    columns are whitespace-separated) and of ``-`` (it joins type keys: ``A-B``); masses finite and positive; bonds, angles and
    dihedrals name distinct beads inside the system.
    """
    n = top.n_beads
    if n == 0:
        raise InputError(path, "dataset has no beads")
    for name, arr in (("bead_names", top.bead_names), ("masses", top.masses), ("molecule_ids", top.molecule_ids)):
        if len(arr) != n:
            raise InputError(path, f"{name} has {len(arr)} entries for {n} beads")
    if top.bead_types.min() < 0 or top.bead_types.max() >= len(top.type_names):
        raise InputError(path, "bead_types index outside type_names")
    if top.molecule_ids.min() < 0:
        raise InputError(path, "molecule_ids must be 0-based indices (found a negative one)")
    if any(not name or len(name.split()) != 1 or "-" in name for name in top.type_names) \
            or len(set(top.type_names)) != len(top.type_names):
        raise InputError(path, f"type names must be distinct, non-empty and without spaces or '-' (which joins "
                               f"type keys such as A-B), got {top.type_names}")
    bad_mass = ~(np.isfinite(top.masses) & (top.masses > 0))
    if bad_mass.any():
        k = int(np.flatnonzero(bad_mass)[0])
        raise InputError(path, f"bead {k} has mass {top.masses[k]} (masses must be positive, amu)")
    for name, arr in (("bonds", top.bonds), ("angles", top.angles), ("dihedrals", top.dihedrals)):
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise InputError(path, f"{name} name beads outside 0..{n - 1}")
        if arr.size and any(len(set(row)) != len(row) for row in arr.tolist()):
            raise InputError(path, f"{name} repeat a bead within one entry")


def check_dataset(ds: CGDataset, path: str | Path | None) -> None:
    """Raise :class:`InputError` if shapes disagree, a frame holds NaN/inf, or a cell has no volume."""
    n, f = ds.n_beads, ds.n_frames
    check_topology(ds.topology, path)
    if f == 0:
        raise InputError(path, "dataset has no frames")
    if ds.positions.shape != (f, n, 3) or ds.forces.shape != (f, n, 3):
        raise InputError(path, f"positions {ds.positions.shape} / forces {ds.forces.shape} do not match {n} beads")
    if ds.boxes.shape != (f, 3, 3) or ds.times.shape != (f,):
        raise InputError(path, f"box {ds.boxes.shape} / time {ds.times.shape} do not match {f} frames")
    for name, arr in (("positions", ds.positions), ("forces", ds.forces), ("box", ds.boxes)):
        bad = ~np.isfinite(arr).reshape(f, -1).all(axis=1)
        if bad.any():
            raise InputError(path, f"frame {int(np.flatnonzero(bad)[0])} has NaN or infinite {name}")
    _check_cells(ds.boxes, path, range(f))


def _check_cells(box: np.ndarray, path: str | Path | None, frames: Iterable[int]) -> None:
    """Every cell must span a volume (rows are lattice vectors; a zero or flat box cannot be periodic)."""
    box = np.asarray(box, dtype=np.float64).reshape(-1, 3, 3)
    scale = np.maximum(np.linalg.norm(box, axis=2).prod(axis=1), 1e-300)
    flat = np.abs(np.linalg.det(box)) <= 1e-8 * scale
    if flat.any():
        frame = list(frames)[int(np.flatnonzero(flat)[0])]
        raise InputError(path, f"frame {frame} has a cell of zero volume (all-zero or flat box); "
                               "cgzoo needs periodic cells")


class DatasetWriter:
    """Create a dataset file and append frames to it chunk by chunk (constant memory)."""

    def __init__(
        self,
        path: str | Path,
        topology: CGTopology,
        temperature: float | None,
        provenance: dict[str, Any],
        overwrite: bool = False,
        dtype: np.dtype = np.float32,
    ) -> None:
        self.path = dataset_output(path, overwrite)
        if self.path.suffix.lower() not in HDF5_SUFFIXES:
            raise InputError(self.path, "streamed datasets are written as HDF5 (.h5)")
        check_topology(topology, self.path)
        self._output = atomic_file(self.path, overwrite)
        self._tmp = self._output.__enter__()
        try:
            self._h5 = h5py.File(self._tmp, "w")
        except BaseException as exc:
            self._output.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._hashes = {key: hashlib.sha256() for key in _FRAME_KEYS}
        h5, n = self._h5, topology.n_beads
        h5.attrs["format"] = FORMAT_NAME
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["units"] = json.dumps(DATASET_UNITS)
        h5.attrs["temperature"] = math.nan if temperature is None else float(temperature)
        h5.attrs["provenance"] = json.dumps(provenance, default=str)
        strings = h5py.string_dtype()
        h5["bead_types"] = topology.bead_types.astype(np.int64)
        h5.create_dataset("type_names", data=np.array(topology.type_names, dtype=object), dtype=strings)
        h5.create_dataset("bead_names", data=np.array(topology.bead_names, dtype=object), dtype=strings)
        h5["masses"] = topology.masses.astype(np.float64)
        h5["molecule_ids"] = topology.molecule_ids.astype(np.int64)
        h5["bonds"] = np.asarray(topology.bonds, dtype=np.int64).reshape(-1, 2)
        h5["angles"] = np.asarray(topology.angles, dtype=np.int64).reshape(-1, 3)
        h5["dihedrals"] = np.asarray(topology.dihedrals, dtype=np.int64).reshape(-1, 4)
        chunk = max(1, min(64, 2**20 // max(1, n * 12)))
        for key, shape, kind in (("positions", (n, 3), dtype), ("forces", (n, 3), dtype),
                                 ("box", (3, 3), np.float64), ("time", (), np.float64)):
            h5.create_dataset(key, shape=(0, *shape), maxshape=(None, *shape), dtype=kind, chunks=(chunk, *shape))
        self.n_frames = 0

    def append(self, positions: np.ndarray, forces: np.ndarray, boxes: np.ndarray, times: np.ndarray) -> None:
        """Append a run of frames (F,N,3), (F,N,3), (F,3,3), (F,), refusing non-finite values and flat cells."""
        f = len(positions)
        for key, arr in zip(_FRAME_KEYS, (positions, forces, boxes, times)):
            if not np.isfinite(arr).all():
                bad = int(np.flatnonzero(~np.isfinite(np.asarray(arr)).reshape(f, -1).all(axis=1))[0])
                raise InputError(self.path, f"frame {self.n_frames + bad} has NaN or infinite {key}")
        _check_cells(boxes, self.path, range(self.n_frames, self.n_frames + f))
        for key, arr in zip(_FRAME_KEYS, (positions, forces, boxes, times)):
            dset = self._h5[key]
            stored = np.ascontiguousarray(arr, dtype=dset.dtype)
            dset.resize(self.n_frames + f, axis=0)
            dset[self.n_frames:] = stored
            self._hashes[key].update(stored.tobytes())
        self.n_frames += f

    def close(self) -> None:
        """Write the checksums, finish the file and move it into place (a crash leaves only a temporary)."""
        if self.n_frames == 0:
            self.abort(InputError(self.path, "no frames to write (the source trajectory is empty)"))
            raise InputError(self.path, "no frames to write (the source trajectory is empty)")
        checksums = {key: h.hexdigest() for key, h in self._hashes.items()}
        checksums.update({key: _digest([arr]) for key, arr in topology_arrays(self._h5).items()})
        self._h5.attrs["checksums"] = json.dumps(checksums)
        self._h5.close()
        self._output.__exit__(None, None, None)

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop the temporary file after an error (and release the output)."""
        self._h5.close()
        exc = exc or RuntimeError("dataset writing aborted")
        self._output.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)


def load_topology(path: str | Path) -> tuple[CGTopology, float | None, int]:
    """Only the topology, temperature and frame count of a dataset file (frames stay on disk)."""
    path = Path(path)
    with _open_checked(path) as h5, _read_errors(path):
        topology = _read_topology(h5)
        check_topology(topology, path)
        n_frames = int(h5["positions"].shape[0])
        if n_frames == 0:
            raise InputError(path, "dataset has no frames")
        return topology, _temperature(h5), n_frames


def iter_frames(path: str | Path, frames: np.ndarray, chunk: int = 32):
    """Yield (positions, forces, box) of the selected frames, reading ``chunk`` frames at a time from disk.

    Memory stays flat however long the trajectory is; NaN/inf frames raise :class:`InputError`.
    """
    path = Path(path)
    frames = np.sort(np.asarray(frames, dtype=np.int64))
    with _open_checked(path) as h5, _read_errors(path):
        for start in range(0, len(frames), chunk):
            sel = frames[start:start + chunk]
            pos, frc, box = h5["positions"][sel], h5["forces"][sel], h5["box"][sel]
            _check_cells(box, path, sel.tolist())
            for k, f in enumerate(sel):
                if not (np.isfinite(pos[k]).all() and np.isfinite(frc[k]).all() and np.isfinite(box[k]).all()):
                    raise InputError(path, f"frame {int(f)} has NaN or infinite values")
                yield pos[k], frc[k], box[k]
