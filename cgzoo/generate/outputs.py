"""The self-describing files of a generator run: ``topology.json`` and ``topology.pdb``."""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path

import numpy as np
import openmm
from openmm import app

import cgzoo
from cgzoo.generate.build import build_topology
from cgzoo.outputs import write_atomic, write_json_atomic
from cgzoo.generate.spec import SystemSpec
from cgzoo.units import DATASET_UNITS, NM_TO_ANGSTROM

#: Units of the arrays stored in ``traj.trr`` (GROMACS conventions).
TRR_UNITS = {"positions": "nm", "forces": "kJ/mol/nm", "box": "nm", "time": "ps"}


def topology_record(spec: SystemSpec, n_molecules: int, cutoff: float, options: dict) -> dict:
    """Everything needed to interpret the trajectory without cgzoo's system definitions (cgzoo units)."""
    mol = spec.molecule
    n_sites = mol.n_sites
    offsets = np.arange(n_molecules)[:, None] * n_sites
    bonds = (offsets[:, :, None] + np.array([[b.i, b.j] for b in mol.bonds])[None]).reshape(-1, 2)
    constraints = mol.constraints
    constraint_pairs = (
        (offsets[:, :, None] + np.array([[c.i, c.j] for c in constraints])[None]).reshape(-1, 2)
        if constraints
        else np.zeros((0, 2), dtype=int)
    )
    return {
        "system": spec.name,
        "force_field": spec.force_field,
        "citation": spec.citation,
        "notes": list(spec.notes),
        "n_molecules": n_molecules,
        "n_atoms": n_molecules * n_sites,
        "names": [s.name for s in mol.sites] * n_molecules,
        "elements": [s.element for s in mol.sites] * n_molecules,
        "resnames": [mol.resname] * (n_molecules * n_sites),
        "resids": np.repeat(np.arange(1, n_molecules + 1), n_sites).tolist(),
        "masses": [s.mass for s in mol.sites] * n_molecules,
        "charges": [s.charge for s in mol.sites] * n_molecules,
        "molecule_ids": np.repeat(np.arange(n_molecules), n_sites).tolist(),
        "bonds": bonds.tolist(),
        "constraints": constraint_pairs.tolist(),
        "temperature_K": options["temperature"],
        "pressure_bar": options["pressure_bar"],
        "timestep_fs": options["timestep_fs"],
        "save_every_fs": options["save_every_fs"],
        "equil_ps": options["equil_ps"],
        "prod_ps": options["prod_ps"],
        "seed": options["seed"],
        "cutoff_A": cutoff,
        "electrostatics": "PME" if spec.pme else "none (uncharged)",
        "lj": "truncated at cutoff_A, Lorentz-Berthelot mixing, analytic long-range dispersion correction",
        "ensemble": "NVT production (Langevin middle integrator) at the mean NPT volume",
        "cgzoo_version": cgzoo.__version__,
        "openmm_version": openmm.__version__,
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "options": options,
        "units": DATASET_UNITS,
        "trajectory": "traj.trr",
        "trajectory_units": TRR_UNITS,
        "status": "running",
        "n_frames": None,
    }


def write_topology_json(path: Path, record: dict) -> None:
    """Write the topology record atomically."""
    write_json_atomic(path, record)


def write_topology_pdb(
    path: Path, spec: SystemSpec, n_molecules: int, positions_nm: np.ndarray, box_nm: np.ndarray
) -> None:
    """Write a PDB with CRYST1, residues, atom names, elements and CONECT records (positions and box in nm)."""
    topology = build_topology(spec, n_molecules, float(box_nm[0, 0]) * NM_TO_ANGSTROM)
    topology.setPeriodicBoxVectors(box_nm)
    buffer = io.StringIO()
    app.PDBFile.writeFile(topology, positions_nm * NM_TO_ANGSTROM * openmm.unit.angstrom, buffer)
    write_atomic(path, buffer.getvalue().encode())
