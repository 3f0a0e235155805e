"""One in-memory CG trajectory type read from a reference dataset or a simulation run, so every observable has one code path.

Positions of a :class:`CGTrajectory` are *unwrapped* (continuous in time) whenever
``unwrapped`` is true, which the dynamics observables require; structural observables wrap or
minimum-image them themselves. A reference dataset stores wrapped positions, so
:meth:`CGTrajectory.from_dataset` unwraps them frame to frame by the minimum-image displacement,
which is right only while no bead moves more than half a box width between saved frames.

A simulation run directory (``cgzoo simulate … --out RUN``) holds ``traj.traj`` (ASE, unwrapped
positions, velocities in ASE units, ``info["time_fs"]``), ``run.json`` and ``log.csv``. ASE's
``.traj`` format keeps no custom per-bead arrays, so the per-bead ``bead_type``/``molecule_id``
arrays come from the first of: the frame itself, ``run.json`` keys ``bead_types`` (names, or
indices into ``type_names``) and ``molecule_ids``, or the start structure named in ``run.json``
(``start``: ``DATA.h5[@FRAME]`` or an ASE-readable file, read as ``cgzoo simulate`` reads it).
Missing arrays follow the bead convention of :mod:`cgzoo.data.export`: one bead type
may omit ``bead_type``, and without ``molecule_id`` every bead is its own molecule.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.data.dataset import CGDataset
from cgzoo.data.run_record import LOG_FIELDS, read_run_json
from cgzoo.data.start import load_start
from cgzoo.errors import InputError
from cgzoo.geometry import minimum_image


@dataclass
class CGTrajectory:
    """Frames and topology of one CG trajectory in cgzoo units (Å, fs, amu, Å/fs), reference or model."""

    positions: np.ndarray
    boxes: np.ndarray
    times: np.ndarray
    bead_types: np.ndarray
    type_names: list[str]
    masses: np.ndarray
    molecule_ids: np.ndarray
    bonds: np.ndarray
    angles: np.ndarray
    dihedrals: np.ndarray
    velocities: np.ndarray | None = None
    unwrapped: bool = False
    #: ``log.csv`` columns of a run (per log row, not per frame); None for a reference dataset.
    log: dict[str, np.ndarray] | None = None
    #: Nominal temperature (K): the dataset's, or the run's thermostat target.
    temperature_K: float | None = None
    #: ``run.json`` status of a run ("complete", "unstable", …); "reference" for a dataset.
    status: str = "reference"
    source: str = ""

    @property
    def n_frames(self) -> int:
        return len(self.positions)

    @property
    def n_beads(self) -> int:
        return len(self.bead_types)

    def finite_frames(self) -> int:
        """Number of leading frames with finite positions, cell and velocities (an unstable run may end in NaN)."""
        ok = np.isfinite(self.positions).all(axis=(1, 2)) & np.isfinite(self.boxes).all(axis=(1, 2))
        if self.velocities is not None:
            ok &= np.isfinite(self.velocities).all(axis=(1, 2))
        return len(ok) if ok.all() else int(np.argmin(ok))

    def select(self, frames: np.ndarray | slice) -> CGTrajectory:
        """The same trajectory restricted to ``frames`` (the log is kept whole)."""
        vel = None if self.velocities is None else self.velocities[frames]
        return replace(self, positions=self.positions[frames], boxes=self.boxes[frames], times=self.times[frames],
                       velocities=vel)

    def with_types(self, type_names: list[str]) -> CGTrajectory:
        """Re-index bead types onto ``type_names`` (same names, other order), or raise :class:`InputError`."""
        if sorted(type_names) != sorted(self.type_names):
            raise InputError(self.source, f"bead types {sorted(self.type_names)} do not match the reference's "
                                          f"{sorted(type_names)}")
        remap = np.array([type_names.index(n) for n in self.type_names], dtype=np.int64)
        return replace(self, bead_types=remap[self.bead_types], type_names=list(type_names))

    @classmethod
    def from_dataset(cls, dataset: CGDataset | str | Path, frames: np.ndarray | None = None) -> CGTrajectory:
        """The frames of a CG dataset (object or ``.h5`` path), unwrapped in time by minimum-image steps."""
        source = "reference dataset" if isinstance(dataset, CGDataset) else str(dataset)
        ds = dataset if isinstance(dataset, CGDataset) else CGDataset.load(dataset)
        if frames is not None:
            ds = ds.subset(np.sort(np.asarray(frames, dtype=np.int64)))
        top = ds.topology
        boxes = ds.boxes.astype(np.float64)
        return cls(
            positions=unwrap(ds.positions.astype(np.float64), boxes),
            boxes=boxes,
            times=ds.times.astype(np.float64),
            bead_types=top.bead_types.astype(np.int64),
            type_names=list(top.type_names),
            masses=top.masses.astype(np.float64),
            molecule_ids=top.molecule_ids.astype(np.int64),
            bonds=top.bonds.reshape(-1, 2),
            angles=top.angles.reshape(-1, 3),
            dihedrals=top.dihedrals.reshape(-1, 4),
            unwrapped=True,
            temperature_K=ds.temperature,
            source=source,
        )

    @classmethod
    def from_run(cls, run_dir: str | Path) -> CGTrajectory:
        """A simulation run directory: ``traj.traj`` frames, ``run.json`` settings and ``log.csv`` thermo columns."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise InputError(run_dir, "run directory does not exist")
        settings = read_run_json(run_dir / "run.json")
        atoms_list = _read_ase_frames(run_dir / "traj.traj")
        first = atoms_list[0]
        n = len(first)
        if any("time_fs" not in a.info for a in atoms_list):
            raise InputError(run_dir / "traj.traj", "a frame lacks info['time_fs']")
        types, molecules = _per_bead_arrays(first, settings, run_dir)
        bead_types, type_names = _bead_types(types, [str(t) for t in settings.get("type_names", [])], n, run_dir)
        molecule_ids = np.arange(n) if molecules is None else np.asarray(molecules, dtype=np.int64)
        if len(bead_types) != n or len(molecule_ids) != n:
            raise InputError(run_dir, f"per-bead types/molecule ids do not match the trajectory's {n} beads")
        positions = np.stack([a.get_positions() for a in atoms_list])
        boxes = np.stack([np.asarray(a.get_cell()) for a in atoms_list])
        velocities = (np.stack([a.get_velocities() for a in atoms_list]) * _ase_fs()
                      if all(a.has("momenta") for a in atoms_list) else None)
        return cls(
            positions=positions,
            boxes=boxes,
            times=np.array([float(a.info["time_fs"]) for a in atoms_list]),
            bead_types=bead_types,
            type_names=type_names,
            masses=first.get_masses().astype(np.float64),
            molecule_ids=molecule_ids,
            bonds=np.asarray(settings.get("bonds", []), dtype=np.int64).reshape(-1, 2),
            angles=np.asarray(settings.get("angles", []), dtype=np.int64).reshape(-1, 3),
            dihedrals=np.asarray(settings.get("dihedrals", []), dtype=np.int64).reshape(-1, 4),
            velocities=velocities,
            unwrapped=True,
            log=read_log(run_dir / "log.csv"),
            temperature_K=settings.get("temperature_K"),
            status=str(settings.get("status", "unknown")),
            source=str(run_dir),
        )


def unwrap(positions: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Positions (F,N,3) made continuous in time by adding minimum-image displacements between consecutive frames.

    Valid when every bead moves less than half a box width between frames; the first frame is kept as is.
    """
    steps = minimum_image(np.diff(positions, axis=0), boxes[1:])
    return np.concatenate([positions[:1], positions[:1] + np.cumsum(steps, axis=0)], axis=0)


def read_log(path: Path) -> dict[str, np.ndarray]:
    """Columns of a run's ``log.csv`` as float arrays; malformed rows (a crashed run's last line) are dropped."""
    if not path.exists():
        raise InputError(path, "run log does not exist")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InputError(path, "run log is empty")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in LOG_FIELDS if c not in header]
    if missing:
        raise InputError(path, f"run log lacks columns {', '.join(missing)}")
    values = []
    for row in rows[1:]:
        if len(row) != len(header):
            continue
        try:
            values.append([float(v) for v in row])
        except ValueError:
            continue
    table = np.array(values, dtype=np.float64).reshape(-1, len(header))
    return {name: table[:, k] for k, name in enumerate(header)}


def _read_ase_frames(path: Path) -> list:
    """All frames of an ASE trajectory file, or :class:`InputError` if it is missing, unreadable or empty."""
    from ase.io.trajectory import Trajectory

    if not path.exists():
        raise InputError(path, "trajectory does not exist")
    try:
        with Trajectory(str(path), "r") as traj:
            frames = [atoms for atoms in traj]
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds for a broken file; all mean "unreadable"
        raise InputError(path, f"not a readable ASE trajectory ({exc.__class__.__name__}: {exc})") from None
    if not frames:
        raise InputError(path, "trajectory holds no frames")
    return frames


def _bead_types(values: np.ndarray | None, type_names: list[str], n: int, run_dir: Path) -> tuple[np.ndarray, list[str]]:
    """Bead type indices and type names of a run; per-bead types may be names or indices into ``type_names``."""
    if values is None:
        if len(type_names) != 1:
            raise InputError(run_dir, f"no per-bead bead types in traj.traj, run.json or the start structure "
                                      f"(types {type_names})")
        return np.zeros(n, dtype=np.int64), type_names
    if values.dtype.kind in "US":
        names = values.astype(str)
        type_names = type_names or sorted(set(names))
        unknown = sorted(set(names) - set(type_names))
        if unknown:
            raise InputError(run_dir / "run.json", f"bead types {unknown} are not in type_names {type_names}")
        return np.array([type_names.index(t) for t in names], dtype=np.int64), type_names
    if values.size and (values.min() < 0 or values.max() >= len(type_names)):
        raise InputError(run_dir / "run.json", "bead type index outside type_names")
    return values.astype(np.int64), type_names


def _per_bead_arrays(atoms, settings: dict[str, Any], run_dir: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``bead_type`` and ``molecule_id`` of a run (None where absent): from the frame, run.json or the start structure."""
    if "bead_type" not in atoms.arrays and "bead_types" in settings:
        ids = settings.get("molecule_ids")
        return np.asarray(settings["bead_types"]), None if ids is None else np.asarray(ids)
    if "bead_type" not in atoms.arrays and settings.get("start"):
        try:
            atoms = load_start(str(settings["start"]))[0]
        except InputError as exc:
            raise InputError(run_dir, f"bead types are not stored in the run, and its start structure is "
                                      f"unusable: {exc}") from None
    return atoms.arrays.get("bead_type"), atoms.arrays.get("molecule_id")


def _ase_fs() -> float:
    """One femtosecond in ASE time units: v[Å/fs] = v_ase · this."""
    from ase import units

    return units.fs
