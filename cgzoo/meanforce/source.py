"""A ``cgzoo generate`` run directory as the input of restrained runs: its OpenMM system, mapped frames and configurations.

The system is rebuilt from ``topology.json`` (system name, molecule count, cutoff) with
:func:`cgzoo.generate.build.build_system`, in the box of the chosen frame; frames are read with
:func:`cgzoo.io.native.read_native` (cgzoo units). The M configurations are frames evenly spaced
over the run, the first and last included, so they are as far apart in time as the run allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openmm

from cgzoo.errors import InputError
from cgzoo.generate.build import build_system
from cgzoo.generate.registry import get_system
from cgzoo.io.native import read_native
from cgzoo.mapping import CGMapper, load_mapping
from cgzoo.units import ANGSTROM_TO_NM

#: Frames mapped at a time while streaming the source trajectory.
CHUNK_FRAMES = 100
#: The key of every bead, whatever its type, next to the type names.
ALL = "all"


@dataclass
class SourceFrames:
    """The chosen frames of a run, made whole (positions (M, N, 3) Å, boxes (M, 3, 3) Å), with all frames' mapped forces."""

    frame_indices: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    raw_forces: np.ndarray  # (M, B, 3) mapped forces of the chosen frames, kcal/(mol·Å)
    total_variance: dict[str, float]  # per bead type and ALL: variance of every mapped-force component of every frame
    n_frames: int


def choose_frames(n_frames: int, n_configs: int, where: str | Path) -> np.ndarray:
    """Indices of ``n_configs`` frames evenly spaced over ``n_frames``; :class:`InputError` when there are too few."""
    if n_configs < 1:
        raise InputError(None, f"--configs must be at least 1, got {n_configs}")
    if n_configs > n_frames:
        raise InputError(where, f"asked for {n_configs} configurations but the run has only {n_frames} frames")
    return np.unique(np.linspace(0, n_frames - 1, n_configs).round().astype(np.int64))


def load_mapper(source: str | Path, mapping: str | Path, force_map: str | None = None) -> CGMapper:
    """The mapper of ``mapping`` on the run's topology (a one-line :class:`MappingError` when they do not fit).

    An optimized force map (the mapping's ``force_map``, or ``force_map`` here) is fitted on the run's own training
    frames first, as ``cgzoo map`` does: the mean force is the same for every consistent map, the floor is not.
    """
    from cgzoo.data.build import fit_force_map
    from cgzoo.mapping.force_map import ForceMapSettings

    reader = read_native(source)
    mapper = CGMapper(load_mapping(mapping), reader.topology, force_map=force_map)
    if mapper.needs_force_map:
        fit_force_map(reader, mapper, ForceMapSettings(), progress=False)
    return mapper


def read_source_frames(source: str | Path, mapper: CGMapper, n_configs: int) -> SourceFrames:
    """Stream the run once: keep the chosen frames (made whole) and the per-type variance of all mapped forces."""
    reader = read_native(source)
    chosen = choose_frames(reader.n_frames, n_configs, Path(source) / "traj.trr")
    want = set(chosen.tolist())
    n_types = len(mapper.type_names)
    sums = np.zeros((3, n_types))  # components, Σ f, Σ f² per type
    positions, boxes, raw = [], [], []
    first = 0
    for chunk in reader.iter_chunks(CHUNK_FRAMES):
        _, forces = mapper.map_chunk(chunk)
        for row, values in enumerate((np.full(forces.shape[:2], 3.0), forces.sum(axis=2), (forces**2).sum(axis=2))):
            sums[row] += np.bincount(np.tile(mapper.bead_types, len(forces)), weights=values.ravel(), minlength=n_types)
        local = [i - first for i in range(first, first + len(chunk)) if i in want]
        if local:
            positions.append(mapper.make_whole(chunk.positions[local], chunk.boxes[local]))
            boxes.append(chunk.boxes[local])
            raw.append(forces[local].astype(np.float64))
        first += len(chunk)
    columns = {name: sums[:, t] for t, name in enumerate(mapper.type_names)} | {ALL: sums.sum(axis=1)}
    variance = {name: float(s2 / n - (s1 / n) ** 2) for name, (n, s1, s2) in columns.items()}
    return SourceFrames(frame_indices=chosen, positions=np.concatenate(positions), boxes=np.concatenate(boxes),
                        raw_forces=np.concatenate(raw), total_variance=variance, n_frames=reader.n_frames)


def source_record(source: str | Path) -> dict:
    """The run's ``topology.json``, with the fields a rebuild needs checked."""
    path = Path(source) / "topology.json"
    if not path.exists():
        raise InputError(path, "missing; --source must be a cgzoo generate run directory")
    record = json.loads(path.read_text())
    missing = [k for k in ("system", "n_molecules", "cutoff_A", "temperature_K", "timestep_fs") if record.get(k) is None]
    if missing:
        raise InputError(path, f"missing fields: {', '.join(missing)}")
    return record


def rebuild_system(record: dict, box: np.ndarray) -> openmm.System:
    """The run's OpenMM system (force field, molecules, cutoff) in the periodic cell ``box`` (3, 3) Å."""
    spec = get_system(record["system"])
    system = build_system(spec, int(record["n_molecules"]), float(record["cutoff_A"]), float(box[0, 0]))
    system.setDefaultPeriodicBoxVectors(*(np.asarray(box, dtype=np.float64) * ANGSTROM_TO_NM))
    return system
