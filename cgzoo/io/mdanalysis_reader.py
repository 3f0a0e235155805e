"""Read GROMACS and LAMMPS trajectories with forces through MDAnalysis, converting to cgzoo units.

Units. MDAnalysis converts what it reads to its base units: Å, ps and kJ/(mol·Å) for forces
(a TRR force of 1 kJ/(mol·nm) comes back as 0.1), so forces are scaled by
``KJ_MOL_A_TO_KCAL_MOL_A`` and times by ``PS_TO_FS``. Its LAMMPS dump reader converts nothing:
columns come back in the file's ``units`` style, which the dump does not record, so the caller
names it (``lammps_units``: a key of :data:`cgzoo.units.LAMMPS_UNIT_STYLES`, "real" or "metal");
its time is step × ``dt``, and the step is not recorded either, so the caller gives ``timestep_fs``
and cgzoo hands the reader ``dt`` in ps. Guessing either would give silently wrong forces
(a ``metal`` dump read as ``real``: 23× too small) or times. The dump
reader sorts atoms by ``id``, shifts positions so the box starts at the origin, and turns scaled
(``xs``) coordinates into Cartesian ones; it prefers wrapped ``x y z`` over unwrapped ``xu yu zu``.
MDAnalysis keeps coordinates, forces and box lengths in float32, so values carry ~1e-7 relative error.

Molecules, in order of preference: GROMACS molecule numbers (``.tpr``, ``.top/.itp``); the
LAMMPS molecule-ID column of a data file; connected components of the bond graph (for a LAMMPS
data file without a molecule column, unbonded atoms are one-atom molecules); residues.

Constraints. MDAnalysis folds constraints into ``bonds`` without marking them. For ``.tpr``
files cgzoo records the CONSTR, CONSTRNC and SETTLE lists while MDAnalysis parses them, so
``constraints`` holds every constrained pair, including bonds that ``constraints = h-bonds``
turned into constraints and SETTLE's H–H pair (which is not in ``bonds``). For ``.top/.itp``
only ``[ settles ]`` can be told apart; ``[ constraints ]`` look like bonds and mdp-level
constraints are invisible. Other formats give no constraints.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.errors import InputError
from cgzoo.io import UNKNOWN_RESNAME, chunk_frames, dense_labels, require_exists
from cgzoo.io.base import AtomisticSource, AtomTopology, FrameChunk
from cgzoo.units import KJ_MOL_A_TO_KCAL_MOL_A, LAMMPS_UNIT_STYLES, PS_TO_FS, LammpsUnits

#: MDAnalysis format names inferred from suffixes MDAnalysis does not know itself.
_TOPOLOGY_FORMATS = {".data": "DATA", ".lmp": "DATA", ".top": "ITP"}
_TRAJECTORY_FORMATS = {".dump": "LAMMPSDUMP", ".lammpstrj": "LAMMPSDUMP", ".lammpsdump": "LAMMPSDUMP"}

#: Columns of a LAMMPS data file's Atoms section, per ``atom_style``, as MDAnalysis names them.
LAMMPS_ATOM_STYLES = {
    "full": "id resid type charge x y z",
    "molecular": "id resid type x y z",
    "bond": "id resid type x y z",
    "angle": "id resid type x y z",
    "atomic": "id type x y z",
    "charge": "id type charge x y z",
}


def read_mdanalysis(
    topology: str | Path,
    trajectory: str | Path | Sequence[str | Path],
    topology_format: str | None = None,
    format: str | None = None,
    lammps_units: str | None = None,
    atom_style: str | None = None,
    timestep_fs: float | None = None,
) -> AtomisticSource:
    """Open ``topology`` with ``trajectory`` (a file or a list read in order) as an :class:`AtomisticSource`.

    ``atom_style`` is a LAMMPS style name (``full``, ``molecular``, ...) or MDAnalysis column
    names such as ``"id resid type charge x y z"``; if omitted it is taken from the data file's
    ``Atoms # style`` comment. A LAMMPS dump needs ``lammps_units`` and ``timestep_fs`` (its MD
    time step in fs), which it does not record.
    """
    top_path = require_exists(topology)
    trajs = [trajectory] if isinstance(trajectory, (str, Path)) else list(trajectory)
    traj_paths = [require_exists(p) for p in trajs]
    if not traj_paths:
        raise InputError(top_path, "no trajectory file given")
    traj_label = ", ".join(map(str, traj_paths))
    top_fmt = topology_format or _TOPOLOGY_FORMATS.get(top_path.suffix.lower())
    traj_fmt = format or _TRAJECTORY_FORMATS.get(traj_paths[0].suffix.lower())
    is_data = (top_fmt or "").upper() == "DATA"

    traj_kwargs: dict[str, Any] = {}
    length, force = 1.0, KJ_MOL_A_TO_KCAL_MOL_A
    if (traj_fmt or "").upper() == "LAMMPSDUMP":
        style = _lammps_style(lammps_units, timestep_fs, traj_label)
        length, force = style.length, style.force
        traj_kwargs["dt"] = timestep_fs / PS_TO_FS  # the dump reader's time is step × dt
    elif (lammps_units, timestep_fs) != (None, None):
        raise InputError(traj_label, "--lammps-units and --timestep-fs apply to LAMMPS dumps only")

    top_kwargs: dict[str, Any] = {}
    has_molecule_column = False
    if is_data:
        columns = _lammps_columns(top_path, atom_style)
        has_molecule_column = columns is None or "resid" in columns.split()
        if columns is not None:
            top_kwargs["atom_style"] = columns
    universe, constraint_log = _open_topology(top_path, top_fmt, top_kwargs)
    traj = [str(p) for p in traj_paths] if len(traj_paths) > 1 else str(traj_paths[0])
    _load_trajectory(universe, traj, traj_fmt, traj_kwargs, traj_label, top_path)
    if "dt" not in traj_kwargs and universe.trajectory.units.get("force") is None:
        fmt_name = universe.trajectory.format
        raise InputError(traj_label, f"trajectory has no forces ({fmt_name} files cannot hold them)")
    if not universe.trajectory.ts.has_forces:
        raise InputError(traj_label, "trajectory has no forces (write them, e.g. GROMACS nstfout > 0, "
                                     "LAMMPS dump columns fx fy fz)")
    top = _topology_from_universe(universe, top_path, is_data, has_molecule_column, constraint_log)

    def read_chunks(chunk_size: int) -> Iterator[FrameChunk]:
        reader = universe.trajectory.copy()  # its own file handle, so several passes may overlap
        try:
            yield from chunk_frames(_frames(reader, length, force, traj_label), chunk_size)
        finally:
            reader.close()

    return AtomisticSource(
        topology=top,
        n_frames=len(universe.trajectory),
        paths=[str(top_path), *map(str, traj_paths)],
        read_chunks=read_chunks,
    )


def _lammps_style(units: str | None, timestep_fs: float | None, label: str) -> LammpsUnits:
    """The unit style of a LAMMPS dump, or a one-line :class:`InputError` naming the missing or bad option."""
    styles = ", ".join(LAMMPS_UNIT_STYLES)
    if units is None:
        raise InputError(label, f"a LAMMPS dump does not record its units style: give --lammps-units ({styles}), "
                                "the 'units' line of the LAMMPS input")
    if units not in LAMMPS_UNIT_STYLES:
        raise InputError(label, f"LAMMPS units {units!r} are not supported (use one of {styles})")
    if timestep_fs is None:
        raise InputError(label, "a LAMMPS dump does not record its time step: give --timestep-fs (the 'timestep' "
                                "of the LAMMPS input, in fs: 1 for 'timestep 1' in real units, 1000 × it in metal)")
    if not math.isfinite(timestep_fs) or timestep_fs <= 0:
        raise InputError(label, f"--timestep-fs must be a positive number of fs, got {timestep_fs}")
    return LAMMPS_UNIT_STYLES[units]


def _frames(reader: Any, length: float, force: float, label: str) -> Iterator[tuple[np.ndarray, ...]]:
    """Stream (positions, forces, box, time) from an MDAnalysis reader, scaled to cgzoo units."""
    for ts in reader:
        if not ts.has_forces:
            raise InputError(label, f"frame {ts.frame} has no forces")
        # astype copies: MDAnalysis overwrites ts arrays in place on the next frame.
        positions, forces = ts.positions.astype(np.float64), ts.forces.astype(np.float64)
        yield positions * length, forces * force, _box(ts) * length, float(ts.time) * PS_TO_FS


def _box(ts: Any) -> np.ndarray:
    """Cell vectors as rows, or zeros (rejected later as 'no periodic box') when the frame has none."""
    box = ts.triclinic_dimensions
    return np.zeros((3, 3)) if box is None else np.asarray(box, dtype=np.float64)


def _open_topology(path: Path, fmt: str | None, kwargs: dict[str, Any]) -> tuple[Any, _ConstraintLog | None]:
    """Parse ``path`` into an MDAnalysis Universe; for TPR also record its constraint lists."""
    import MDAnalysis as mda
    from MDAnalysis.topology.TPRParser import TPRParser

    try:
        if (fmt or path.suffix.lstrip(".")).upper() == "TPR":
            # Parse once ourselves: a Universe built from the file name would parse it twice.
            with _recording_tpr_constraints() as log:
                topology = TPRParser(str(path)).parse()
            return mda.Universe(topology), log
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No coordinate reader found")
            return mda.Universe(str(path), topology_format=fmt, **kwargs), None
    except Exception as exc:  # MDAnalysis raises ValueError, OSError, EOFError, ... for bad files
        raise InputError(path, f"MDAnalysis cannot read this topology: {_one_line(exc)}") from exc


def _load_trajectory(
    universe: Any, traj: str | list[str], fmt: str | None, kwargs: dict[str, Any], label: str, top: Path
) -> None:
    """Attach ``traj`` to ``universe``, turning MDAnalysis' errors into :class:`InputError`."""
    n_top = universe.atoms.n_atoms
    try:
        universe.load_new(traj, format=fmt, **kwargs)
    except Exception as exc:  # MDAnalysis raises TypeError, ValueError, OSError, ... for bad files
        # load_new attaches the reader before comparing atom counts, so a mismatch shows here.
        n_traj = getattr(getattr(universe, "trajectory", None), "n_atoms", n_top)
        if n_traj != n_top:
            raise InputError(label, f"trajectory has {n_traj} atoms but topology {top} has {n_top}") from exc
        raise InputError(label, f"MDAnalysis cannot read this trajectory: {_one_line(exc)}") from exc


def _topology_from_universe(
    universe: Any,
    path: Path,
    lammps_data: bool,
    has_molecule_column: bool,
    constraint_log: _ConstraintLog | None,
) -> AtomTopology:
    """Collect names, residues, masses, molecules, bonds and constraints from an MDAnalysis Universe."""
    atoms = universe.atoms
    n = atoms.n_atoms
    names = atoms.names if hasattr(atoms, "names") else atoms.types
    resnames = atoms.resnames if hasattr(atoms, "resnames") else np.full(n, UNKNOWN_RESNAME)
    no_pairs = np.zeros((0, 2), dtype=np.int64)
    bonds = atoms.bonds.indices.astype(np.int64) if hasattr(atoms, "bonds") else no_pairs
    # MDAnalysis marks guessed attributes only on its (private) Topology object.
    if universe._topology.masses.is_guessed:
        warnings.warn(f"{path}: masses are guessed from element names; use a topology with masses "
                      "(e.g. .tpr) if this is wrong", stacklevel=3)
    if hasattr(atoms, "molnums"):
        molecule_ids = dense_labels(atoms.molnums)
    elif lammps_data and has_molecule_column:
        molecule_ids = dense_labels(atoms.resids)
    elif len(bonds) or lammps_data:
        molecule_ids = _bond_components(n, bonds)
    else:
        molecule_ids = dense_labels(atoms.resindices)
    if constraint_log is not None:
        constraints = constraint_log.expand(molecule_ids, path)
    else:
        constraints = _settle_constraints(atoms) if len(bonds) else no_pairs
    top = AtomTopology(
        names=np.asarray(names, dtype=str),
        resnames=np.asarray(resnames, dtype=str),
        resids=np.asarray(atoms.resids, dtype=np.int64),
        masses=np.asarray(atoms.masses, dtype=np.float64),
        molecule_ids=molecule_ids,
        bonds=bonds,
        constraints=constraints,
        source=str(path),
    )
    top.validate()
    return top


def _bond_components(n_atoms: int, bonds: np.ndarray) -> np.ndarray:
    """Label atoms by connected component of the bond graph (an unbonded atom is its own molecule)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n_atoms, n_atoms))
    return dense_labels(connected_components(graph, directed=False)[1])


def _lammps_columns(path: Path, atom_style: str | None) -> str | None:
    """MDAnalysis column names for a LAMMPS data file, from ``atom_style`` or its ``Atoms # style`` line."""
    if atom_style is None:
        atom_style = _atom_style_comment(path)
        if atom_style is None:
            return None  # MDAnalysis then assumes "id resid type [charge] x y z"
    if atom_style in LAMMPS_ATOM_STYLES:
        return LAMMPS_ATOM_STYLES[atom_style]
    if {"id", "type", "x", "y", "z"} <= set(atom_style.split()):
        return atom_style
    raise InputError(path, f"LAMMPS atom_style {atom_style!r} is not supported (use one of "
                           f"{', '.join(LAMMPS_ATOM_STYLES)}, or columns like 'id resid type charge x y z')")


def _atom_style_comment(path: Path) -> str | None:
    """The style named in a data file's ``Atoms # style`` line, if there is one."""
    with open(path) as handle:
        for line in handle:
            head, _, comment = line.partition("#")
            if head.strip() == "Atoms":
                return comment.strip() or None
    return None


def _settle_constraints(atoms: Any) -> np.ndarray:
    """Pairs fixed by ITP ``[ settles ]``, whose O–H bonds MDAnalysis types 'settles', plus the H–H pair."""
    oxygens = sorted({int(b.indices[0]) for b in atoms.bonds if b.type == "settles"})
    pairs = [pair for o in oxygens for pair in _settle_pairs(o, o + 1, o + 2)]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _settle_pairs(o: int, h1: int, h2: int) -> list[tuple[int, int]]:
    """The three distances SETTLE fixes in one water."""
    return [(o, h1), (o, h2), (h1, h2)]


@dataclass
class _ConstraintLog:
    """Constrained pairs per TPR molecule type (atom indices within a molecule) and its molecule blocks."""

    per_moltype: list[list[tuple[int, int]]] = field(default_factory=list)
    molblocks: list[tuple[int, int]] = field(default_factory=list)  # (molecule type, count)

    def expand(self, molecule_ids: np.ndarray, path: Path) -> np.ndarray:
        """Global constrained pairs, placing each molecule's pairs at its first atom."""
        types = [mtype for mtype, count in self.molblocks for _ in range(count)]
        starts = np.flatnonzero(np.r_[True, np.diff(molecule_ids) != 0])
        if len(types) != len(starts):
            warnings.warn(f"{path}: could not match TPR constraints to molecules; constraints left empty",
                          stacklevel=4)
            return np.zeros((0, 2), dtype=np.int64)
        pairs = [(a + start, b + start)
                 for mtype, start in zip(types, starts, strict=True) for a, b in self.per_moltype[mtype]]
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@contextmanager
def _recording_tpr_constraints() -> Generator[_ConstraintLog, None, None]:
    """Wrap MDAnalysis' TPR parsing steps to note constraint lists, which its topology merges into bonds.

    Not thread-safe: it swaps two functions of ``MDAnalysis.topology.tpr.utils`` while active.
    """
    from MDAnalysis.topology.tpr import obj, utils

    log = _ConstraintLog()
    do_ilists, do_molblock = utils.do_ilists, utils.do_molblock

    def recording_ilists(data: Any, fver: int) -> Any:
        ilists = do_ilists(data, fver)
        pairs: list[tuple[int, int]] = []
        for ilist in ilists:
            if not ilist.nr:
                continue
            kind = obj.InteractionKind(*ilist.ik)
            if kind.name in ("CONSTR", "CONSTRNC"):
                pairs += [(int(a), int(b)) for a, b in kind.process(ilist.iatoms)]
            elif kind.name == "SETTLE":
                # Old TPR versions list only the oxygen; the hydrogens follow it.
                ias = ilist.iatoms
                triples = [(ias[1], ias[1] + 1, ias[1] + 2)] if len(ias) == 2 else kind.process(ias)
                for o, h1, h2 in triples:
                    pairs += _settle_pairs(int(o), int(h1), int(h2))
        log.per_moltype.append(pairs)
        return ilists

    def recording_molblock(data: Any) -> Any:
        block = do_molblock(data)
        log.molblocks.append((block.molb_type, block.molb_nmol))
        return block

    utils.do_ilists, utils.do_molblock = recording_ilists, recording_molblock
    try:
        yield log
    finally:
        utils.do_ilists, utils.do_molblock = do_ilists, do_molblock


def _one_line(exc: BaseException) -> str:
    """An exception's message squeezed onto one line."""
    return " ".join(str(exc).split()) or type(exc).__name__
