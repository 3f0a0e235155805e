"""Starting configurations: molecules on a cubic lattice with random orientations, and box rescaling.

The lattice spacing is the molecule's largest extent plus a clearance of its largest LJ σ, so
no two molecules overlap whatever their orientation; the resulting dilute box (for hexane about
a fifth of liquid density) is then compressed by the runner.
"""

from __future__ import annotations

import numpy as np

from cgzoo.generate.spec import MoleculeSpec


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A 3×3 rotation matrix drawn uniformly from SO(3) (via a random unit quaternion)."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def lattice_spacing(mol: MoleculeSpec) -> float:
    """Centre-to-centre distance (Å) at which randomly oriented copies cannot overlap."""
    centred = mol.coordinates - mol.coordinates.mean(axis=0)
    radius = float(np.linalg.norm(centred, axis=1).max())
    clearance = max(s.sigma for s in mol.sites if s.epsilon > 0)
    return 2.0 * radius + clearance


def _sites_per_edge(n_molecules: int) -> int:
    """Smallest lattice edge (in sites) whose cube holds ``n_molecules``."""
    per_edge = max(1, round(n_molecules ** (1.0 / 3.0)))
    while per_edge**3 < n_molecules:
        per_edge += 1
    return per_edge


def lattice_edge(mol: MoleculeSpec, n_molecules: int) -> float:
    """Edge (Å) of the cubic box :func:`pack_lattice` builds for ``n_molecules``."""
    return _sites_per_edge(n_molecules) * lattice_spacing(mol)


def pack_lattice(mol: MoleculeSpec, n_molecules: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Positions (n_molecules·n_sites, 3) Å of randomly rotated copies on a simple cubic lattice, and the box edge (Å).

    When the lattice has more sites than molecules, the occupied sites are drawn at random so
    the vacancies are spread evenly; an empty slab would survive the affine squeeze.
    """
    per_edge = _sites_per_edge(n_molecules)
    spacing = lattice_spacing(mol)
    cells = np.sort(rng.choice(per_edge**3, size=n_molecules, replace=False))
    centred = mol.coordinates - mol.coordinates.mean(axis=0)
    positions = np.empty((n_molecules, mol.n_sites, 3))
    for m, c in enumerate(cells):
        cell = np.array([c % per_edge, (c // per_edge) % per_edge, c // per_edge**2])
        positions[m] = centred @ random_rotation(rng).T + (cell + 0.5) * spacing
    return positions.reshape(-1, 3), per_edge * spacing


def scale_molecule_centres(
    positions: np.ndarray, masses: np.ndarray, n_sites: int, factor: float
) -> np.ndarray:
    """Scale each molecule's centre of mass by ``factor`` keeping its internal geometry (positions in any length unit)."""
    xyz = positions.reshape(-1, n_sites, 3)
    w = masses.reshape(-1, n_sites, 1)
    centres = (xyz * w).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
    return (xyz + (factor - 1.0) * centres).reshape(-1, 3)
