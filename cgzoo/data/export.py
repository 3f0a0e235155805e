"""A CG dataset as extended XYZ for ASE and other tools, and such a file read back as a dataset.

Convention (also used by cgzoo's ASE calculator): every bead is the dummy element ``X``; its
bead type is the per-bead string column ``bead_type``, with ``bead_name``, ``molecule_id``, ``resid``
(molecule id + 1: one residue per molecule, so ``cgzoo map`` reads a molecule's beads as one residue)
and ``masses`` alongside. Positions and cell are in Å; forces are written in **eV/Å** (ASE's unit,
converted from kcal/mol/Å) as the calculator's ``forces`` so ``ase.io.read`` returns them from
``atoms.get_forces()``. Frame ``time`` (fs) is in ``atoms.info``. The first frame's ``info["cgzoo"]``
(:data:`cgzoo.io.extxyz.TOPOLOGY_KEY`, percent-encoded JSON, since ASE mangles quotes and backslashes)
holds what no per-bead column can: ``type_names`` in their order,
``bonds``, ``angles``, ``dihedrals`` (0-based bead indices), ``temperature`` and ``provenance``.

Read back (:func:`read_extxyz_dataset`), a file gives the dataset it was written from: topology
exactly, frames to the 8 decimals ASE writes. A file without that record is read too: bead types
from ``bead_type`` (else the chemical symbols), names from ``bead_name`` (else the types), molecules
from ``molecule_id`` (else one per bead), no bonded terms, times from ``time`` (else the frame index);
it needs forces and a periodic cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgzoo.errors import InputError
from cgzoo.io.extxyz import TOPOLOGY_KEY, encode_record, frame_forces, topology_record
from cgzoo.terms import FIELD_ORDER
from cgzoo.units import EV_A_TO_KCAL_MOL_A, KCAL_MOL_A_TO_EV_A

if TYPE_CHECKING:
    from ase import Atoms

    from cgzoo.data.dataset import CGDataset, CGTopology


def cg_record(top: CGTopology, temperature: float | None = None,
                    provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The first frame's ``info["cgzoo"]``: type names in order, bonded index lists, temperature and provenance."""
    record: dict[str, Any] = {"type_names": list(top.type_names)}
    record.update({field: np.asarray(getattr(top, field), dtype=int).reshape(-1, n).tolist()
                   for field, n in FIELD_ORDER.items()})
    return {**record, "temperature": temperature, "provenance": provenance or {}}


def frame_to_atoms(dataset: CGDataset, index: int):
    """One frame as an ASE ``Atoms`` with the bead columns and a single-point forces result (eV/Å)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    top = dataset.topology
    atoms = Atoms(
        numbers=np.zeros(top.n_beads, dtype=int),
        positions=dataset.positions[index].astype(np.float64),
        cell=dataset.boxes[index].astype(np.float64),
        pbc=True,
    )
    atoms.set_masses(top.masses)
    atoms.new_array("bead_type", np.array([top.type_names[t] for t in top.bead_types], dtype=str))
    atoms.new_array("bead_name", np.array([str(name) for name in top.bead_names], dtype=str))
    atoms.new_array("molecule_id", top.molecule_ids.astype(int))
    atoms.new_array("resid", top.molecule_ids.astype(int) + 1)  # one residue per molecule, as cgzoo map reads residues
    atoms.info["time"] = float(dataset.times[index])
    forces = dataset.forces[index].astype(np.float64) * KCAL_MOL_A_TO_EV_A
    atoms.calc = SinglePointCalculator(atoms, forces=forces)
    return atoms


def write_extxyz(dataset: CGDataset, path: str | Path) -> None:
    """Write every frame of ``dataset`` to ``path`` in extended XYZ (see module docstring)."""
    from ase.io import write

    frames = [frame_to_atoms(dataset, i) for i in range(dataset.n_frames)]
    frames[0].info[TOPOLOGY_KEY] = encode_record(cg_record(dataset.topology, dataset.temperature, dataset.provenance))
    write(str(path), frames, format="extxyz")


def read_extxyz_dataset(path: str | Path) -> CGDataset:
    """An extended XYZ file (cgzoo's own, or any with forces and a periodic cell) as a dataset; checked by the caller."""
    from ase.io import read

    from cgzoo.data.dataset import CGDataset

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "dataset file does not exist")
    try:
        frames = read(str(path), index=":", format="extxyz")
    except Exception as exc:  # noqa: BLE001 - ASE raises XYZError, ValueError, KeyError, ... for malformed files
        raise InputError(path, f"ASE cannot read it as extxyz: {' '.join(str(exc).split())}") from None
    if not frames:
        raise InputError(path, "has no frames")
    record = topology_record(frames[0], path)
    top = extxyz_topology(frames[0], record, path)
    for index, atoms in enumerate(frames):
        if len(atoms) != top.n_beads or not atoms.pbc.all():
            raise InputError(path, f"frame {index} has {len(atoms)} beads (frame 0: {top.n_beads}) or is not periodic")
    temperature = record.get("temperature")
    return CGDataset(
        positions=np.stack([atoms.positions for atoms in frames]),
        forces=np.stack([frame_forces(atoms, index, path) for index, atoms in enumerate(frames)]) * EV_A_TO_KCAL_MOL_A,
        boxes=np.stack([atoms.cell.array for atoms in frames]),
        times=np.array([float(atoms.info.get("time", index)) for index, atoms in enumerate(frames)]),
        topology=top,
        temperature=None if temperature is None else float(temperature),
        provenance=dict(record.get("provenance") or {}),
    )


def extxyz_topology(atoms: Atoms, record: dict[str, Any], path: Path) -> CGTopology:
    """The bead topology of the first frame: its columns plus the ``cgzoo`` record (module docstring)."""
    from cgzoo.data.dataset import CGTopology

    arrays, n = atoms.arrays, len(atoms)
    types = np.asarray(arrays["bead_type"] if "bead_type" in arrays else atoms.get_chemical_symbols(), dtype=str)
    type_names = [str(t) for t in record.get("type_names") or sorted(set(types.tolist()))]
    unknown = sorted(set(types.tolist()) - set(type_names))
    if unknown:
        raise InputError(path, f"bead types {unknown} are not among the type_names {type_names} of frame 0")
    try:
        bonded = {field: np.asarray(record.get(field) or np.zeros((0, k)), dtype=np.int64).reshape(-1, k)
                  for field, k in FIELD_ORDER.items()}
    except (TypeError, ValueError):
        raise InputError(path, f"the bonded lists in info key {TOPOLOGY_KEY!r} are not lists of bead indices") from None
    return CGTopology(
        bead_types=np.array([type_names.index(t) for t in types.tolist()], dtype=np.int64),
        type_names=type_names,
        bead_names=np.asarray(arrays.get("bead_name", types), dtype=str),
        masses=np.asarray(atoms.get_masses(), dtype=np.float64),
        molecule_ids=np.asarray(arrays.get("molecule_id", np.arange(n)), dtype=np.int64),
        **bonded,
    )

