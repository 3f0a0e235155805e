"""Readers for atomistic trajectories with forces; :func:`read_atomistic` picks one from file names.

Readers are imported inside :func:`read_atomistic` so that ``import cgzoo.io`` stays cheap
(MDAnalysis and ASE take seconds to import).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.errors import InputError
from cgzoo.io.base import AtomisticSource, FrameChunk

#: Trajectory suffixes that MDAnalysis reads with forces, by engine.
GROMACS_TRAJECTORIES = (".trr",)
LAMMPS_TRAJECTORIES = (".dump", ".lammpstrj", ".lammpsdump")
#: Topology suffixes that go with them.
GROMACS_TOPOLOGIES = (".tpr", ".gro", ".pdb", ".psf", ".top", ".itp")
LAMMPS_TOPOLOGIES = (".data", ".lmp")
EXTXYZ_SUFFIXES = (".xyz", ".extxyz")
#: Values accepted for ``format=`` in :func:`read_atomistic`.
FORMATS = ("extxyz", "native", "gromacs", "lammps", "mdanalysis")
#: Residue name given to atoms whose file names no residue (LAMMPS data, plain extxyz).
UNKNOWN_RESNAME = "UNK"

PathLike = str | Path


def require_exists(path: PathLike) -> Path:
    """Return ``path`` as a ``Path``, raising :class:`InputError` if it does not exist."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    return path


def dense_labels(values: np.ndarray) -> np.ndarray:
    """Relabel ``values`` as 0, 1, 2, ... in order of first appearance (molecule ids must be 0-based)."""
    _, first, inverse = np.unique(np.asarray(values), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.ravel()]


def chunk_frames(
    frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, float]], chunk_size: int
) -> Iterator[FrameChunk]:
    """Group a stream of (positions, forces, box, time) frames, already in cgzoo units, into chunks."""
    buf: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
    for frame in frames:
        buf.append(frame)
        if len(buf) == chunk_size:
            yield _stack(buf)
            buf = []
    if buf:
        yield _stack(buf)


def _stack(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]) -> FrameChunk:
    """One :class:`FrameChunk` of float64 arrays from a list of frames."""
    positions, forces, boxes, times = zip(*frames, strict=True)
    return FrameChunk(
        positions=np.asarray(positions, dtype=np.float64),
        forces=np.asarray(forces, dtype=np.float64),
        boxes=np.asarray(boxes, dtype=np.float64),
        times=np.asarray(times, dtype=np.float64),
    )


def read_atomistic(
    traj: PathLike | Sequence[PathLike],
    top: PathLike | None = None,
    format: str | None = None,
    lammps_units: str | None = None,
    timestep_fs: float | None = None,
    **kw: Any,
) -> AtomisticSource:
    """Open an atomistic trajectory with forces, choosing the reader from ``format`` or the file suffixes.

    ``traj`` may be an extxyz file, a directory (or its ``topology.json``) written by cgzoo's
    generator, a GROMACS ``.trr`` (or a list of them) with a ``top`` of ``.tpr/.gro/.pdb/...``,
    or a LAMMPS dump with a ``.data/.lmp`` ``top``. A LAMMPS dump records neither its ``units``
    style nor its time step, so it needs both ``lammps_units`` (``real``, ``metal``) and
    ``timestep_fs``; other inputs refuse them. ``kw`` goes to the chosen reader.
    """
    trajs = [require_exists(p) for p in ([traj] if isinstance(traj, (str, Path)) else traj)]
    if not trajs:
        raise InputError(None, "no trajectory file given")
    top_path = None if top is None else require_exists(top)
    first = trajs[0]
    kind = format.lower() if format is not None else _guess_kind(first, top_path)
    if kind not in FORMATS:
        raise InputError(first, f"unknown format {format!r} (choose from {', '.join(FORMATS)})")

    lammps_options = {"lammps_units": lammps_units, "timestep_fs": timestep_fs}
    if kind not in ("lammps", "mdanalysis") and lammps_options != {"lammps_units": None, "timestep_fs": None}:
        raise InputError(first, f"--lammps-units and --timestep-fs apply to LAMMPS dumps only, not {kind} input "
                                "(which records its own units and times)")
    if kind in ("native", "extxyz") and (top_path is not None or len(trajs) > 1):
        raise InputError(first, f"{kind} input carries its own topology: give one path and no topology")
    if kind == "native":
        from cgzoo.io.native import read_native

        return read_native(first.parent if first.name == "topology.json" else first, **kw)
    if kind == "extxyz":
        from cgzoo.io.extxyz import read_extxyz

        return read_extxyz(first, **kw)
    if top_path is None:
        raise InputError(first, f"a {kind} trajectory needs a topology file (top=...)")
    from cgzoo.io.mdanalysis_reader import read_mdanalysis

    if kind == "lammps":
        kw = {"topology_format": "DATA", "format": "LAMMPSDUMP", **kw}
    return read_mdanalysis(top_path, trajs if len(trajs) > 1 else first, **lammps_options, **kw)


def _guess_kind(traj: Path, top: Path | None) -> str:
    """Name the reader for ``traj`` (and ``top``) from their suffixes, or raise :class:`InputError`."""
    suffix = traj.suffix.lower()
    if traj.is_dir() or traj.name == "topology.json":
        return "native"
    if suffix in EXTXYZ_SUFFIXES:
        return "extxyz"
    top_suffix = None if top is None else top.suffix.lower()
    if suffix in GROMACS_TRAJECTORIES:
        if top_suffix not in (None, *GROMACS_TOPOLOGIES):
            raise InputError(top, "unknown topology suffix for a GROMACS trajectory "
                                  f"(use one of {', '.join(GROMACS_TOPOLOGIES)})")
        return "gromacs"
    if suffix in LAMMPS_TRAJECTORIES:
        if top_suffix not in (None, *LAMMPS_TOPOLOGIES):
            raise InputError(top, "unknown topology suffix for a LAMMPS dump "
                                  f"(use one of {', '.join(LAMMPS_TOPOLOGIES)})")
        return "lammps"
    known = EXTXYZ_SUFFIXES + GROMACS_TRAJECTORIES + LAMMPS_TRAJECTORIES
    raise InputError(traj, f"unknown trajectory suffix {suffix!r} (known: {', '.join(known)}, or a cgzoo "
                           f"directory); pass format= one of {', '.join(FORMATS)}")
