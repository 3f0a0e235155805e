"""The bead system an engine builds: types, masses, molecules, bonded terms and one configuration, in cgzoo units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgzoo.engines.tables import EngineModel, topology_keys
from cgzoo.neighbors import separation_table
from cgzoo.terms import FIELD_ORDER, canonical_names


@dataclass
class BeadSystem:
    """N beads: type indices into ``type_names``, masses (amu), molecule ids, bonded index lists, positions (Å),
    cell (3×3 Å, rows = lattice vectors) and optional velocities (Å/fs)."""

    type_names: list[str]
    bead_types: np.ndarray
    masses: np.ndarray
    molecule_ids: np.ndarray
    bonds: np.ndarray
    angles: np.ndarray
    dihedrals: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    velocities: np.ndarray | None = None

    @property
    def n_beads(self) -> int:
        return len(self.bead_types)

    @property
    def terms(self) -> dict[str, np.ndarray]:
        """Bonded index lists by the names cgzoo's graph builders use."""
        return {"bonds": self.bonds, "angles": self.angles, "dihedrals": self.dihedrals}

    def keys(self) -> dict[str, list[str]]:
        """Type keys of every term kind this system uses (see :func:`~cgzoo.engines.tables.topology_keys`)."""
        return topology_keys(self.type_names, self.bead_types, self.terms)

    def term_types(self, engine: EngineModel, kind: str) -> np.ndarray:
        """Index of each bonded term's table in ``engine.tables[kind].keys``."""
        terms = self.terms[kind + "s"]
        keys = engine.tables[kind].keys
        names = [[self.type_names[int(self.bead_types[i])] for i in term] for term in terms]
        return np.array([keys.index(canonical_names(n)) for n in names], dtype=np.int64)

    @classmethod
    def from_atoms(cls, atoms, type_names: list[str], bead_types: np.ndarray, topology: dict[str, np.ndarray]) -> BeadSystem:
        """An ASE ``Atoms`` (masses, ``molecule_id`` array, velocities) with its bead types and bonded lists."""
        from ase import units

        molecules = np.asarray(atoms.arrays.get("molecule_id", np.arange(len(atoms))), dtype=np.int64)
        velocities = atoms.get_velocities() * units.fs  # ASE velocity unit → Å/fs
        return cls(list(type_names), np.asarray(bead_types, dtype=np.int64), atoms.get_masses().astype(np.float64), molecules,
                   *(np.asarray(topology[k], dtype=np.int64).reshape(-1, n) for k, n in FIELD_ORDER.items()),
                   atoms.get_positions().astype(np.float64), np.asarray(atoms.cell, dtype=np.float64), velocities)

    def excluded_pairs(self, exclude: int, intramolecular: bool) -> set[tuple[int, int]]:
        """Pairs i<j an engine's pair table must skip: within ``exclude`` bonds, or any intramolecular pair."""
        if not intramolecular:
            pairs = set()
            for mol in np.unique(self.molecule_ids):
                idx = np.flatnonzero(self.molecule_ids == mol)
                pairs |= {(int(a), int(b)) for k, a in enumerate(idx) for b in idx[k + 1:]}
            return pairs
        table = separation_table(self.n_beads, self.bonds, self.molecule_ids)
        return {pair for pair, sep in table.items() if sep <= exclude}
