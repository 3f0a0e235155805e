"""Plain-data description of a one-component liquid: one molecule's force field plus run defaults.

Everything is in cgzoo units (Å, kcal/mol, amu, e, degrees for equilibrium angles); the
conversion to OpenMM's units happens only in :mod:`cgzoo.generate.build`. Keeping the
parameters as data lets each force-field module state them next to their literature source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Site:
    """One interaction site: name in the PDB, element for readers, mass (amu), charge (e), LJ σ (Å), ε (kcal/mol)."""

    name: str
    element: str
    mass: float
    charge: float
    sigma: float
    epsilon: float


@dataclass(frozen=True)
class Bond:
    """A bond of ``length`` Å: harmonic ``E = k/2 (r - length)²`` with k in kcal/(mol·Å²), or a constraint if k is None."""

    i: int
    j: int
    length: float
    k: float | None


@dataclass(frozen=True)
class Angle:
    """Harmonic angle ``E = k/2 (θ - theta0)²``: theta0 in degrees, k in kcal/(mol·rad²)."""

    i: int
    j: int
    k_atom: int
    theta0: float
    k: float


@dataclass(frozen=True)
class Torsion:
    """Cosine series ``E = Σ k_n [1 + cos(n φ - phase_n)]`` over ``terms`` = ((n, k_n kcal/mol, phase_n degrees), ...).

    φ follows the IUPAC/OpenMM convention: 180° is trans.
    """

    i: int
    j: int
    k_atom: int
    l_atom: int
    terms: tuple[tuple[int, float, float], ...]


@dataclass(frozen=True)
class RBTorsion:
    """Ryckaert–Bellemans torsion ``E = Σ_n C_n cos^n ψ`` (n = 0..5, C_n kcal/mol) with ψ = φ - 180° (ψ = 0 is trans).

    This is OpenMM's RBTorsionForce convention; it keeps the constant C_0, so energies match
    force fields written as cosine series in ψ.
    """

    i: int
    j: int
    k_atom: int
    l_atom: int
    coefficients: tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Constraint:
    """A fixed distance (Å) between two sites that are not necessarily bonded (e.g. water's H–H)."""

    i: int
    j: int
    length: float


@dataclass(frozen=True, eq=False)
class MoleculeSpec:
    """One molecule type: sites, template coordinates (Å), bonded terms and constraints.

    Nonbonded pairs within one molecule that are 1, 2 or 3 bonds apart are excluded (both LJ
    and Coulomb); farther pairs interact like intermolecular ones. That is the TraPPE rule and,
    for SPC/E, excludes every intramolecular pair.
    """

    resname: str
    sites: tuple[Site, ...]
    coordinates: np.ndarray  # (n_sites, 3) Å
    bonds: tuple[Bond, ...]
    angles: tuple[Angle, ...] = ()
    torsions: tuple[Torsion, ...] = ()
    rb_torsions: tuple[RBTorsion, ...] = ()
    extra_constraints: tuple[Constraint, ...] = ()

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def mass(self) -> float:
        """Molecular mass in amu."""
        return float(sum(s.mass for s in self.sites))

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        """Every fixed distance: constrained bonds plus the extra constraints."""
        from_bonds = tuple(Constraint(b.i, b.j, b.length) for b in self.bonds if b.k is None)
        return from_bonds + self.extra_constraints


@dataclass(frozen=True, eq=False)
class SystemSpec:
    """A built-in liquid: its molecule, force field, nonbonded settings, provenance and reference densities.

    ``cutoff`` (Å) is the force field's own; the generator shrinks it for boxes too small to hold
    it. ``guess_density`` (g/cm³) sizes the box and the cutoff before the density is known.
    ``model_density`` is the published density of this model at 298 K and 1 atm, if known,
    ``experimental_density`` the measured one at 298.15 K and 1 atm.
    """

    name: str
    molecule: MoleculeSpec
    force_field: str
    citation: str
    cutoff: float
    pme: bool
    default_n_molecules: int
    guess_density: float
    experimental_density: float
    model_density: float | None = None
    model_density_source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
