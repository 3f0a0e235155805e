"""Read a ``cgzoo generate`` output directory (topology.json + traj.trr) as an :class:`AtomisticSource`.

Topology comes from ``topology.json``; frames stream from ``traj.trr`` (GROMACS units nm,
kJ/(mol·nm)) and are converted to cgzoo units here. Frame times are ``step × timestep_fs``
from the integer TRR step, exact where the single-precision TRR time field is not.
An unfinished run is readable up to its last checkpoint, with a warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from MDAnalysis.lib.formats.libmdaxdr import TRRFile

from cgzoo.errors import InputError
from cgzoo.io.base import AtomisticSource, AtomTopology, FrameChunk
from cgzoo.units import KJ_MOL_NM_TO_KCAL_MOL_A, NM_TO_ANGSTROM

_REQUIRED = ("names", "resnames", "resids", "masses", "molecule_ids", "bonds", "constraints", "timestep_fs")


def read_native(path: str | Path) -> AtomisticSource:
    """Open a generator output directory (or its ``topology.json``) for streaming in cgzoo units."""
    path = Path(path)
    directory = path.parent if path.is_file() else path
    topology_path = directory / "topology.json"
    record = _load_record(topology_path)
    topology = AtomTopology(
        names=np.array(record["names"], dtype=str),
        resnames=np.array(record["resnames"], dtype=str),
        resids=np.array(record["resids"], dtype=np.int64),
        masses=np.array(record["masses"], dtype=float),
        molecule_ids=np.array(record["molecule_ids"], dtype=np.int64),
        bonds=np.array(record["bonds"], dtype=np.int64).reshape(-1, 2),
        constraints=np.array(record["constraints"], dtype=np.int64).reshape(-1, 2),
        source=str(topology_path),
    )
    topology.validate()
    traj_path = directory / "traj.trr"
    n_frames = _frame_count(directory, traj_path, topology.n_atoms, record)
    timestep_fs = float(record["timestep_fs"])

    def read_chunks(chunk_size: int) -> Iterator[FrameChunk]:
        yield from _read_trr(traj_path, n_frames, chunk_size, timestep_fs)

    return AtomisticSource(
        topology=topology,
        n_frames=n_frames,
        paths=[str(topology_path), str(traj_path)],
        read_chunks=read_chunks,
        temperature=record.get("temperature_K"),
    )


def _load_record(topology_path: Path) -> dict:
    """Parse topology.json, naming the file in every error."""
    if not topology_path.exists():
        raise InputError(topology_path, "missing; not a cgzoo generate output directory")
    try:
        record = json.loads(topology_path.read_text())
    except ValueError as exc:
        raise InputError(topology_path, f"not valid JSON ({exc})") from exc
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise InputError(topology_path, f"missing fields: {', '.join(missing)}")
    return record


def _frame_count(directory: Path, traj_path: Path, n_atoms: int, record: dict) -> int:
    """Frames to read: all of a complete run's, or those up to an unfinished run's last checkpoint (with a warning).

    An unfinished run's ``traj.trr`` may end in a half-written frame, so only its checkpointed
    frame count (from ``progress.json``) is trusted and the file is not scanned.
    """
    if not traj_path.exists():
        raise InputError(traj_path, "missing trajectory")
    complete = (directory / "DONE").exists()
    progress_path = directory / "progress.json"
    if not complete and progress_path.exists():
        n_frames = int(json.loads(progress_path.read_text()).get("n_frames", 0))
        warnings.warn(
            f"{directory}: run is unfinished; reading the {n_frames} frames checkpointed so far", stacklevel=3
        )
        if n_frames == 0:
            raise InputError(traj_path, "unfinished run has no production frames yet")
    elif traj_path.stat().st_size == 0:
        raise InputError(traj_path, "trajectory is empty")
    try:
        with TRRFile(str(traj_path), "r") as trr:
            file_atoms = trr.n_atoms
            if complete or not progress_path.exists():
                n_frames = len(trr.offsets)
    except (OSError, RuntimeError) as exc:
        raise InputError(traj_path, f"unreadable TRR file ({exc})") from exc
    if file_atoms != n_atoms:
        raise InputError(traj_path, f"has {file_atoms} atoms per frame but topology.json has {n_atoms}")
    expected = record.get("n_frames")
    if complete and expected is not None and expected != n_frames:
        raise InputError(
            traj_path, f"has {n_frames} frames but topology.json records {expected}; file damaged?"
        )
    return n_frames


def _read_trr(path: Path, n_frames: int, chunk_size: int, timestep_fs: float) -> Iterator[FrameChunk]:
    """Yield the first ``n_frames`` frames in chunks, converted to Å, kcal/(mol·Å) and fs."""
    with TRRFile(str(path), "r") as trr:
        done = 0
        while done < n_frames:
            count = min(chunk_size, n_frames - done)
            frames = [trr.read() for _ in range(count)]
            if not all(f.hasf for f in frames):
                bad = done + next(i for i, f in enumerate(frames) if not f.hasf)
                raise InputError(path, f"frame {bad} has no forces")
            yield FrameChunk(
                positions=np.stack([f.x for f in frames]).astype(np.float64) * NM_TO_ANGSTROM,
                forces=np.stack([f.f for f in frames]).astype(np.float64) * KJ_MOL_NM_TO_KCAL_MOL_A,
                boxes=np.stack([f.box for f in frames]).astype(np.float64) * NM_TO_ANGSTROM,
                times=np.array([f.step for f in frames], dtype=np.float64) * timestep_fs,
            )
            done += count
