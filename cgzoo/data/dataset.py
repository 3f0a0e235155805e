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
``temperature`` (K, NaN if unknown) and ``provenance`` (JSON: source files, mapping name and
SHA-256, mapping text, command line, cgzoo version, creation time).
Frames are appended by :class:`DatasetWriter` so a long trajectory is mapped in constant memory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cgzoo.errors import InputError, check_output_path
from cgzoo.units import DATASET_UNITS

FORMAT_NAME = "cgzoo-cg-dataset"
FORMAT_VERSION = 1
HDF5_SUFFIXES = (".h5", ".hdf5")
EXTXYZ_SUFFIXES = (".extxyz", ".xyz")
_FRAME_KEYS = ("positions", "forces", "box", "time")
_TOPOLOGY_KEYS = ("bead_types", "type_names", "bead_names", "masses", "molecule_ids", "bonds", "angles", "dihedrals")


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
    """A CG trajectory in memory: frames (positions, forces, box, time) plus its topology and metadata."""

    positions: np.ndarray
    forces: np.ndarray
    box: np.ndarray
    time: np.ndarray
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
            box=self.box[frames],
            time=self.time[frames],
        )

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write to ``path``; the suffix chooses the format (``.h5``/``.hdf5`` or ``.extxyz``/``.xyz``)."""
        path = check_output_path(path, overwrite)
        suffix = path.suffix.lower()
        if suffix in EXTXYZ_SUFFIXES:
            from cgzoo.data.export import write_extxyz

            write_extxyz(self, path)
            return path
        if suffix not in HDF5_SUFFIXES:
            raise InputError(path, f"unknown dataset suffix {suffix!r} (use .h5 or .extxyz)")
        with DatasetWriter(path, self.topology, self.temperature, self.provenance, overwrite=True) as writer:
            writer.append(self.positions, self.forces, self.box, self.time)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CGDataset":
        """Read a cgzoo HDF5 dataset, checking its schema and that every frame is finite."""
        path = Path(path)
        with _open_checked(path) as h5:
            topology = _read_topology(h5)
            temperature = float(h5.attrs.get("temperature", math.nan))
            dataset = cls(
                positions=h5["positions"][()],
                forces=h5["forces"][()],
                box=h5["box"][()],
                time=h5["time"][()],
                topology=topology,
                temperature=None if math.isnan(temperature) else temperature,
                provenance=json.loads(h5.attrs.get("provenance", "{}")),
            )
        _check_consistent(dataset, path)
        return dataset


def _open_checked(path: Path) -> h5py.File:
    """Open a dataset file for reading, refusing missing, non-HDF5, foreign, newer or incomplete files."""
    if not path.exists():
        raise InputError(path, "dataset file does not exist")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"not a readable HDF5 file ({exc.__class__.__name__})") from None
    problem = None
    if h5.attrs.get("format") != FORMAT_NAME:
        problem = "not a cgzoo CG dataset (missing format attribute)"
    elif int(h5.attrs.get("format_version", -1)) > FORMAT_VERSION:
        problem = f"dataset format version {int(h5.attrs['format_version'])} is newer than this cgzoo ({FORMAT_VERSION})"
    else:
        missing = [k for k in (*_FRAME_KEYS, *_TOPOLOGY_KEYS) if k not in h5]
        problem = f"dataset lacks {', '.join(missing)}" if missing else None
    if problem:
        h5.close()
        raise InputError(path, problem)
    return h5


def _read_topology(h5: h5py.File) -> CGTopology:
    """The per-bead arrays of an open dataset file."""
    return CGTopology(
        bead_types=h5["bead_types"][()].astype(np.int64),
        type_names=[_str(s) for s in h5["type_names"][()]],
        bead_names=np.array([_str(s) for s in h5["bead_names"][()]]),
        masses=h5["masses"][()].astype(np.float64),
        molecule_ids=h5["molecule_ids"][()].astype(np.int64),
        bonds=h5["bonds"][()].astype(np.int64).reshape(-1, 2),
        angles=h5["angles"][()].astype(np.int64).reshape(-1, 3),
        dihedrals=h5["dihedrals"][()].astype(np.int64).reshape(-1, 4),
    )


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_consistent(ds: CGDataset, path: Path) -> None:
    """Raise :class:`InputError` if shapes disagree or any frame holds NaN/inf."""
    n, f = ds.n_beads, ds.n_frames
    if ds.positions.shape != (f, n, 3) or ds.forces.shape != (f, n, 3):
        raise InputError(path, f"positions {ds.positions.shape} / forces {ds.forces.shape} do not match {n} beads")
    if ds.box.shape != (f, 3, 3) or ds.time.shape != (f,):
        raise InputError(path, f"box {ds.box.shape} / time {ds.time.shape} do not match {f} frames")
    top = ds.topology
    if top.bead_types.size and (top.bead_types.min() < 0 or top.bead_types.max() >= len(top.type_names)):
        raise InputError(path, "bead_types index outside type_names")
    for name, arr in (("positions", ds.positions), ("forces", ds.forces), ("box", ds.box)):
        bad = ~np.isfinite(arr).reshape(f, -1).all(axis=1)
        if bad.any():
            raise InputError(path, f"frame {int(np.flatnonzero(bad)[0])} has NaN or infinite {name}")


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
        self.path = check_output_path(path, overwrite)
        if self.path.suffix.lower() not in HDF5_SUFFIXES:
            raise InputError(self.path, "streamed datasets are written as HDF5 (.h5)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._h5 = h5py.File(self._tmp, "w")
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

    def append(self, positions: np.ndarray, forces: np.ndarray, box: np.ndarray, time: np.ndarray) -> None:
        """Append a run of frames (F,N,3), (F,N,3), (F,3,3), (F,)."""
        f = len(positions)
        for key, arr in zip(_FRAME_KEYS, (positions, forces, box, time)):
            dset = self._h5[key]
            dset.resize(self.n_frames + f, axis=0)
            dset[self.n_frames:] = arr
        self.n_frames += f

    def close(self) -> None:
        """Finish the file and move it into place (a crash leaves only a ``.partial`` file)."""
        self._h5.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        """Drop the partial file after an error."""
        self._h5.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def load_topology(path: str | Path) -> tuple[CGTopology, float | None, int]:
    """Only the topology, temperature and frame count of a dataset file (frames stay on disk)."""
    path = Path(path)
    with _open_checked(path) as h5:
        topology = _read_topology(h5)
        temperature = float(h5.attrs.get("temperature", math.nan))
        return topology, None if math.isnan(temperature) else temperature, int(h5["positions"].shape[0])


def iter_frames(path: str | Path, frames: np.ndarray, chunk: int = 32):
    """Yield (positions, forces, box) of the selected frames, reading ``chunk`` frames at a time from disk.

    Memory stays flat however long the trajectory is; NaN/inf frames raise :class:`InputError`.
    """
    path = Path(path)
    frames = np.sort(np.asarray(frames, dtype=np.int64))
    with h5py.File(path, "r") as h5:
        for start in range(0, len(frames), chunk):
            sel = frames[start:start + chunk]
            pos, frc, box = h5["positions"][sel], h5["forces"][sel], h5["box"][sel]
            for k, f in enumerate(sel):
                if not (np.isfinite(pos[k]).all() and np.isfinite(frc[k]).all() and np.isfinite(box[k]).all()):
                    raise InputError(path, f"frame {int(f)} has NaN or infinite values")
                yield pos[k], frc[k], box[k]
