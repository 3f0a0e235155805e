"""Export a CG dataset to extended XYZ for ASE and other tools.

Convention (also used by cgzoo's ASE calculator): every bead is the dummy element ``X``; its
bead type is the per-bead string column ``bead_type``, with ``bead_name``, ``molecule_id`` and
``masses`` alongside. Positions and cell are in Å; forces are written in **eV/Å** (ASE's unit,
converted from kcal/mol/Å) as the calculator's ``forces`` so ``ase.io.read`` returns them from
``atoms.get_forces()``. Frame ``time`` (fs) is in ``atoms.info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cgzoo.units import KCAL_MOL_A_TO_EV_A

if TYPE_CHECKING:
    from cgzoo.data.dataset import CGDataset


def frame_to_atoms(dataset: "CGDataset", index: int):
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
    atoms.info["time"] = float(dataset.times[index])
    forces = dataset.forces[index].astype(np.float64) * KCAL_MOL_A_TO_EV_A
    atoms.calc = SinglePointCalculator(atoms, forces=forces)
    return atoms


def write_extxyz(dataset: "CGDataset", path: str | Path) -> None:
    """Write every frame of ``dataset`` to ``path`` in extended XYZ (see module docstring)."""
    from ase.io import write

    write(str(path), [frame_to_atoms(dataset, i) for i in range(dataset.n_frames)], format="extxyz")
