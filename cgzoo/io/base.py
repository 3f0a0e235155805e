"""In-memory form of an atomistic trajectory that every reader produces, in cgzoo units.

Readers (GROMACS, LAMMPS, extxyz, cgzoo's own generator output) return an
:class:`AtomisticSource`: a topology plus frames delivered in chunks, so that mapping a long
trajectory never needs it all in memory. Everything here is already in cgzoo units
(Å, kcal/mol/Å, amu, fs; cells as row vectors), converted by the reader at the boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cgzoo.errors import InputError


@dataclass
class AtomTopology:
    """Per-atom facts a mapping needs: names, residues, masses, molecules and bonds.

    ``molecule_ids`` are 0-based and contiguous; a molecule may span several residues.
    ``bonds`` (including constrained ones) are used to make molecules whole across the box;
    ``constraints`` are bonds whose length the engine held fixed: their constraint forces are
    absent from the written forces, which matters when such a bond crosses two CG beads.
    """

    names: np.ndarray  # (N,) str
    resnames: np.ndarray  # (N,) str
    resids: np.ndarray  # (N,) int, as numbered in the source file
    masses: np.ndarray  # (N,) float, amu
    molecule_ids: np.ndarray  # (N,) int, 0-based
    bonds: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    constraints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    source: str = ""

    @property
    def n_atoms(self) -> int:
        return len(self.names)

    def validate(self) -> None:
        """Raise :class:`InputError` naming ``source`` if the arrays disagree or masses are bad."""
        n = self.n_atoms
        for label in ("resnames", "resids", "masses", "molecule_ids"):
            if len(getattr(self, label)) != n:
                raise InputError(self.source, f"topology has {n} atom names but {len(getattr(self, label))} {label}")
        if not np.all(np.isfinite(self.masses)) or np.any(self.masses <= 0):
            bad = int(np.flatnonzero(~(np.isfinite(self.masses) & (self.masses > 0)))[0])
            raise InputError(self.source, f"atom {bad} ({self.names[bad]}) has a non-positive or missing mass")
        for label in ("bonds", "constraints"):
            arr = getattr(self, label)
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise InputError(self.source, f"{label} refer to atoms outside 0..{n - 1}")


@dataclass
class FrameChunk:
    """A run of consecutive frames: positions (F,N,3) Å, forces (F,N,3) kcal/mol/Å, boxes (F,3,3) Å, times (F,) fs."""

    positions: np.ndarray
    forces: np.ndarray
    boxes: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class AtomisticSource:
    """A topology plus a way to stream its frames; ``paths`` are the files it came from."""

    topology: AtomTopology
    n_frames: int
    paths: list[str]
    read_chunks: Callable[[int], Iterator[FrameChunk]]
    temperature: float | None = None

    def iter_chunks(self, chunk_size: int = 256) -> Iterator[FrameChunk]:
        """Yield validated frame chunks in trajectory order."""
        first = 0
        for chunk in self.read_chunks(chunk_size):
            validate_chunk(chunk, self.topology.n_atoms, self.paths[-1], first)
            first += len(chunk)
            yield chunk


def validate_chunk(chunk: FrameChunk, n_atoms: int, path: str | Path, first_frame: int) -> None:
    """Raise :class:`InputError` for wrong atom counts, missing forces, NaN/inf or unusable boxes."""
    if chunk.forces is None:
        raise InputError(path, "trajectory has no forces (write them, e.g. GROMACS nstfout > 0)")
    if chunk.positions.shape[1:] != (n_atoms, 3):
        raise InputError(path, f"trajectory has {chunk.positions.shape[1]} atoms but the topology has {n_atoms}")
    if chunk.forces.shape != chunk.positions.shape:
        raise InputError(path, f"forces have shape {chunk.forces.shape}, positions {chunk.positions.shape}")
    for label, arr in (("positions", chunk.positions), ("forces", chunk.forces), ("box", chunk.boxes)):
        finite = np.isfinite(arr).reshape(len(arr), -1).all(axis=1)
        if not finite.all():
            frame = first_frame + int(np.flatnonzero(~finite)[0])
            raise InputError(path, f"frame {frame} has NaN or infinite {label}")
    volumes = np.linalg.det(chunk.boxes)
    if np.any(volumes <= 1e-6):
        frame = first_frame + int(np.flatnonzero(volumes <= 1e-6)[0])
        raise InputError(path, f"frame {frame} has no periodic box (zero volume); cgzoo needs periodic data")
