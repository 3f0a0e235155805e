"""Map an atomistic trajectory onto CG beads and write the CG dataset, streaming chunk by chunk.

An optimized force map (``force_map: optimized``) needs the atomistic forces before any frame is
mapped: :func:`fit_force_map` streams the chosen frames once through the mapping layer's
:class:`~cgzoo.mapping.force_map.ForceCovariance` and installs the fitted map in the mapper.
"""

from __future__ import annotations

import datetime as _dt
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cgzoo import __version__
from cgzoo.data.dataset import EXTXYZ_SUFFIXES, CGDataset, CGTopology, DatasetWriter, dataset_output
from cgzoo.data.splits import DEFAULT_SPLIT, SplitError, block_split
from cgzoo.errors import InputError
from cgzoo.hashing import file_sha256
from cgzoo.mapping.force_map import ForceCovariance, ForceMapFit, ForceMapSettings, optimize_force_map
from cgzoo.outputs import output_lock
from cgzoo.progress import progress_bar

if TYPE_CHECKING:
    from cgzoo.io.base import AtomisticSource
    from cgzoo.mapping.apply import CGMapper


def mapper_topology(mapper: "CGMapper") -> CGTopology:
    """The CG topology a mapper produces."""
    return CGTopology(
        bead_types=np.asarray(mapper.bead_types, dtype=np.int64),
        type_names=list(mapper.type_names),
        bead_names=np.asarray(mapper.bead_names),
        masses=np.asarray(mapper.masses, dtype=np.float64),
        molecule_ids=np.asarray(mapper.molecule_ids, dtype=np.int64),
        bonds=np.asarray(mapper.bonds, dtype=np.int64).reshape(-1, 2),
        angles=np.asarray(mapper.angles, dtype=np.int64).reshape(-1, 3),
        dihedrals=np.asarray(mapper.dihedrals, dtype=np.int64).reshape(-1, 4),
    )


def _file_fingerprint(path: str) -> dict[str, object]:
    """Path as given (an absolute path of the building machine would name nothing elsewhere), size and SHA-256 of a
    source file (hashing streams, so large trajectories are fine)."""
    p = Path(path)
    if not p.is_file():
        return {"path": str(path)}
    return {"path": str(path), "bytes": p.stat().st_size, "sha256": file_sha256(p)}


def provenance(source: "AtomisticSource", mapper: "CGMapper") -> dict[str, object]:
    """Where a dataset came from: source files, mapping (name, file, hash, text), command, version, time."""
    spec = mapper.spec
    return {
        "sources": [_file_fingerprint(p) for p in source.paths],
        "mapping": {"name": spec.name, "path": str(spec.source), "sha256": spec.sha256, "text": spec.text},
        "command": shlex.join(["cgzoo", *sys.argv[1:]]) if Path(sys.argv[0]).name == "cgzoo" else shlex.join(sys.argv),
        "cgzoo_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "atomistic_atoms": source.topology.n_atoms,
        "force_map": mapper.force_map_provenance(),
    }


def force_map_frames(n_frames: int, settings: ForceMapSettings) -> np.ndarray:
    """The frames an optimized force map is fitted on: the default split's training frames (or all frames),
    at most ``settings.max_frames`` of them spread evenly, so the map never sees validation or test data."""
    pool = block_split(n_frames, **DEFAULT_SPLIT)["train"] if settings.frames == "train" else np.arange(n_frames)
    if len(pool) <= settings.max_frames:
        return pool
    return pool[np.linspace(0, len(pool) - 1, settings.max_frames).round().astype(int)]


def fit_force_map(
    source: "AtomisticSource", mapper: "CGMapper", settings: ForceMapSettings, chunk_size: int = 128,
    progress: bool = True,
) -> ForceMapFit:
    """Stream the frames :func:`force_map_frames` picks, fit the optimized force map and install it in ``mapper``."""
    try:
        frames = force_map_frames(source.n_frames, settings)
    except SplitError as exc:
        raise InputError(source.paths[-1], f"{exc.problem}; fit the force map on all frames "
                                           "(--force-map-frames all)") from None
    stats = ForceCovariance(mapper.layouts)
    first = 0
    chunks = progress_bar(source.iter_chunks(chunk_size), total=-(-source.n_frames // chunk_size), unit="chunk",
                          desc="force map", show=progress)
    for chunk in chunks:
        picked = frames[(frames >= first) & (frames < first + len(chunk))] - first
        if len(picked):
            stats.add(chunk.forces[picked])
        first += len(chunk)
        if first > frames[-1]:
            break
    fit = optimize_force_map(mapper, stats, frames.tolist(), settings.ridge)
    mapper.use_force_map(fit)
    return fit


def build_dataset(
    source: "AtomisticSource",
    mapper: "CGMapper",
    out: str | Path,
    overwrite: bool = False,
    chunk_size: int = 128,
    progress: bool = True,
    force_map: ForceMapSettings | None = None,
) -> Path:
    """Map every frame of ``source`` with ``mapper`` and write the dataset to ``out`` (.h5 or .extxyz).

    ``out`` is locked from the first frame to the last and appears only when complete. A mapper that
    asks for an optimized force map gets it first, fitted with ``force_map`` (default settings if None).
    """
    if chunk_size < 1:
        raise InputError(None, f"--chunk-size must be at least 1 frame (got {chunk_size})")
    out = dataset_output(out, overwrite)
    with output_lock(out):
        if mapper.needs_force_map:
            fit_force_map(source, mapper, force_map or ForceMapSettings(), chunk_size, progress)
        topology = mapper_topology(mapper)
        meta = provenance(source, mapper)
        chunks = progress_bar(source.iter_chunks(chunk_size), total=-(-source.n_frames // chunk_size), unit="chunk",
                              desc="mapping", show=progress)
        if out.suffix.lower() in EXTXYZ_SUFFIXES:
            parts = [(*mapper.map_chunk(c), c.boxes, c.times) for c in chunks]
            pos, frc, box, time = (np.concatenate(a) for a in zip(*parts))
            dataset = CGDataset(pos, frc, box, time, topology, source.temperature, meta)
            return dataset.save(out, overwrite=overwrite)
        with DatasetWriter(out, topology, source.temperature, meta, overwrite=overwrite) as writer:
            for chunk in chunks:
                positions, forces = mapper.map_chunk(chunk)
                writer.append(positions, forces, chunk.boxes, chunk.times)
    return out
