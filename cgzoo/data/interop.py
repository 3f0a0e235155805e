"""Trajectories for VMD, OVITO and MDAnalysis: a CG dataset or a simulate run as an MDAnalysis ``Universe``, and as a
LAMMPS data topology plus a DCD trajectory written by MDAnalysis' own writers.

:func:`universe` opens a dataset (``.h5`` or cgzoo's ``.extxyz``) or a run directory in one call, with bead names
as ``names``, bead type names as ``types``, masses, molecules as residues (``resids`` 1, 2, …), bonds, angles,
dihedrals, the cell of every frame and positions in Å (a dataset's forces too, in MDAnalysis' kJ/(mol·Å)).

:func:`write_pair` writes ``topology.data`` + ``traj.dcd``, the pair every tool reads (docs/interop.md says why
this one): the data file holds numeric types 1…T in ``type_names`` order with one mass each (the type's name as a
comment, which OVITO and VMD show), molecule ids 1…M,
bonds, angles and dihedrals typed 1…K by their sorted type keys (``A-B``), and the first frame's cell; the DCD
holds every frame's positions (Å, single precision) and cell. A run directory holds no bead names, so a run's
names are its bead type names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cgzoo.data.dataset import EXTXYZ_SUFFIXES, HDF5_SUFFIXES, CGDataset, CGTopology, check_topology
from cgzoo.data.run_record import read_run_json, run_beads, run_topology
from cgzoo.errors import InputError, check_output_path
from cgzoo.outputs import atomic_dir, replace_file
from cgzoo.terms import FIELD_ORDER, canonical_key
from cgzoo.units import FS_TO_PS, KCAL_MOL_TO_KJ_MOL

if TYPE_CHECKING:
    from ase import Atoms
    from MDAnalysis import Universe

#: the topology file of the pair (LAMMPS data) and its trajectory (DCD), in a run directory or a ``convert --to`` output
TOPOLOGY_FILE = "topology.data"
TRAJECTORY_FILE = "traj.dcd"


def universe(path: str | Path) -> Universe:
    """An MDAnalysis ``Universe`` of a CG dataset file or a ``cgzoo simulate`` run directory (see module docstring)."""
    path = Path(path)
    if path.is_dir():
        top, positions, boxes, times = read_run(path)
        return cg_universe(top, positions, boxes, times)
    if path.suffix.lower() not in (*HDF5_SUFFIXES, *EXTXYZ_SUFFIXES):
        raise InputError(path, "not a CG dataset (.h5, .extxyz) or a cgzoo simulate run directory")
    ds = CGDataset.load(path)
    return cg_universe(ds.topology, ds.positions, ds.boxes, ds.times, forces=ds.forces)


def cg_universe(top: CGTopology, positions: np.ndarray, boxes: np.ndarray, times: np.ndarray,
                forces: np.ndarray | None = None) -> Universe:
    """Frames (F,N,3) Å with cells (F,3,3) Å and times (F,) fs, and forces (kcal/mol/Å) if given, as an in-memory Universe.

    MDAnalysis keeps one time step: frame ``k`` is at ``k × (times[1] - times[0])``.
    """
    from MDAnalysis.coordinates.memory import MemoryReader

    u = _topology_universe(top)
    u.add_TopologyAttr("names", np.asarray(top.bead_names, dtype=str))
    u.add_TopologyAttr("types", np.array([top.type_names[t] for t in top.bead_types], dtype=str))
    for field, n in FIELD_ORDER.items():
        u.add_TopologyAttr(field, [tuple(row) for row in np.asarray(getattr(top, field)).reshape(-1, n).tolist()])
    u.load_new(np.asarray(positions, dtype=np.float32), format=MemoryReader, dimensions=cell_dimensions(boxes),
               dt=_frame_step_ps(times),
               forces=None if forces is None else np.asarray(forces, dtype=np.float32) * KCAL_MOL_TO_KJ_MOL)
    return u


def _frame_step_ps(times: np.ndarray) -> float:
    """The time between the first two frames in ps; a single frame has none and takes MDAnalysis' default, 1 ps."""
    return float(times[1] - times[0]) * FS_TO_PS if len(times) > 1 else 1.0


def cell_dimensions(boxes: np.ndarray) -> np.ndarray:
    """Cells (F,3,3), rows the lattice vectors, as MDAnalysis' (F,6) lengths and angles (Å, degrees)."""
    from MDAnalysis.lib.mdamath import triclinic_box

    return np.array([triclinic_box(*np.asarray(box, dtype=np.float64)) for box in boxes], dtype=np.float32)


def write_pair(top: CGTopology, positions: np.ndarray, boxes: np.ndarray, times: np.ndarray,
               directory: str | Path) -> tuple[Path, Path]:
    """Write ``topology.data`` and ``traj.dcd`` (module docstring) into ``directory``, each replaced whole; returns both paths."""
    from MDAnalysis.coordinates.DCD import DCDWriter
    from MDAnalysis.coordinates.LAMMPS import DATAWriter

    directory = Path(directory)
    topology_path, trajectory_path = directory / TOPOLOGY_FILE, directory / TRAJECTORY_FILE
    check_type_masses(top, topology_path)
    lammps = _lammps_universe(top, positions[0], boxes[0])

    def write_data(tmp: Path) -> None:
        DATAWriter(str(tmp)).write(lammps.atoms)
        tmp.write_text(annotate_data(tmp.read_text(), top.type_names))

    replace_file(topology_path, write_data)

    def write_dcd(tmp: Path) -> None:
        frames = cg_universe(top, positions, boxes, times)
        with DCDWriter(str(tmp), n_atoms=top.n_beads, dt=frames.trajectory.dt) as writer:
            for _ in frames.trajectory:
                writer.write(frames.atoms)

    replace_file(trajectory_path, write_dcd)
    return topology_path, trajectory_path


def write_dataset_pair(dataset: CGDataset, out: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """``cgzoo convert --to lammps+dcd``: the pair of ``dataset`` in the directory ``out``, which appears only when complete."""
    out = check_output_path(out, overwrite)
    with atomic_dir(out, overwrite, marker=TOPOLOGY_FILE, what="topology + trajectory directory") as tmp:
        write_pair(dataset.topology, dataset.positions, dataset.boxes, dataset.times, tmp)
    return out / TOPOLOGY_FILE, out / TRAJECTORY_FILE


def annotate_data(text: str, type_names: list[str]) -> str:
    """A LAMMPS data file with its type names as comments in ``Masses`` (``1 18.0154  # W``: OVITO and VMD's TopoTools
    name the types from them; LAMMPS and MDAnalysis skip comments) and its atom style after ``Atoms``
    (``Atoms  # molecular``, which both read instead of guessing it)."""
    lines = text.splitlines()
    section = None
    for i, line in enumerate(lines):
        word = line.strip()
        if word in ("Masses", "Atoms"):
            section = word
            if word == "Atoms":
                lines[i] = "Atoms  # molecular"
        elif section == "Masses" and word:
            if not word[0].isdigit():
                section = None
                continue
            lines[i] = f"{word}  # {type_names[int(word.split()[0]) - 1]}"
    return "\n".join(lines) + "\n"


def _topology_universe(top: CGTopology) -> Universe:
    """An empty Universe of the beads, one residue per molecule (resids 1…M), with their masses."""
    import MDAnalysis as mda

    n_molecules = int(top.molecule_ids.max()) + 1
    u = mda.Universe.empty(top.n_beads, n_residues=n_molecules, atom_resindex=top.molecule_ids, trajectory=True)
    u.add_TopologyAttr("resids", np.arange(1, n_molecules + 1))
    u.add_TopologyAttr("masses", np.asarray(top.masses, dtype=np.float64))
    return u


def _lammps_universe(top: CGTopology, positions: np.ndarray, box: np.ndarray) -> Universe:
    """The first frame as LAMMPS sees it: numeric bead types, bonded terms typed by their sorted type keys, molecule tags."""
    u = _topology_universe(top)
    u.add_TopologyAttr("types", (np.asarray(top.bead_types) + 1).astype(str))
    for field, n in FIELD_ORDER.items():  # MDAnalysis' writer wants every section, empty or not
        values = np.asarray(getattr(top, field), dtype=np.int64).reshape(-1, n)
        keys = [canonical_key(top.type_names, top.bead_types[row]) for row in values]
        numbers = {key: k + 1 for k, key in enumerate(sorted(set(keys)))}
        u.add_TopologyAttr(field, [])
        getattr(u, f"add_{field}")([tuple(row) for row in values.tolist()], types=[numbers[k] for k in keys])
    u.add_TopologyAttr("impropers", [])
    u.atoms.positions = np.asarray(positions, dtype=np.float32)
    u.dimensions = cell_dimensions(np.asarray(box)[None])[0]
    u.trajectory.ts.data["molecule_tag"] = np.asarray(top.molecule_ids) + 1
    return u


def check_type_masses(top: CGTopology, path: Path) -> None:
    """A LAMMPS data file holds one mass per type: refuse a type whose beads differ in mass."""
    for t, name in enumerate(top.type_names):
        masses = np.unique(top.masses[top.bead_types == t])
        if len(masses) > 1:
            raise InputError(path, f"bead type {name} has beads of different masses ({', '.join(f'{m:g}' for m in masses)} "
                                   "amu); a LAMMPS data file holds one mass per type")


def read_run(run_dir: Path) -> tuple[CGTopology, np.ndarray, np.ndarray, np.ndarray]:
    """A run directory's bead topology (``run.json``, masses of ``traj.traj``) and frames: positions, cells (Å), times (fs)."""
    from ase.io import read

    info, traj = run_dir / "run.json", run_dir / "traj.traj"
    saved = read_run_json(info)
    if not traj.is_file():
        raise InputError(traj, "missing: the run has saved no frame")
    try:
        frames = read(str(traj), index=":")
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for a damaged file
        raise InputError(traj, f"ASE cannot read it ({type(exc).__name__})") from None
    if not frames:
        raise InputError(traj, "holds no frame")
    return (run_bead_topology(saved, frames[0], info), *frame_arrays(frames))


def run_bead_topology(saved: dict, atoms: Atoms, info: Path) -> CGTopology:
    """The :class:`CGTopology` of a run from its ``run.json`` (types, molecules, bonded lists) and a frame's masses."""
    bead_types, molecule_ids = run_beads(saved, info)
    if len(bead_types) != len(atoms):
        raise InputError(info, f"records {len(bead_types)} bead types, the trajectory has {len(atoms)} beads")
    type_names = list(saved.get("type_names") or sorted(set(bead_types)))
    unknown = sorted(set(bead_types) - set(type_names))
    if unknown:
        raise InputError(info, f"bead types {unknown} are not among its type_names {type_names}")
    bonded = run_topology(saved, info)
    top = CGTopology(
        bead_types=np.array([type_names.index(t) for t in bead_types], dtype=np.int64),
        type_names=type_names,
        bead_names=np.array(bead_types, dtype=str),
        masses=np.asarray(atoms.get_masses(), dtype=np.float64),
        molecule_ids=np.asarray(molecule_ids or np.arange(len(atoms)), dtype=np.int64),
        **bonded,
    )
    check_topology(top, info)
    return top


def frame_arrays(frames: list[Atoms]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (F,N,3) Å, cells (F,3,3) Å and times (F,) fs (``info["time_fs"]``) of ASE frames."""
    positions = np.stack([f.get_positions() for f in frames])
    boxes = np.stack([np.asarray(f.cell) for f in frames])
    times = np.array([float(f.info.get("time_fs", 0.0)) for f in frames])
    return positions, boxes, times
