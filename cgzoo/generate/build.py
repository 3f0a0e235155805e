"""Turn a :class:`SystemSpec` into OpenMM objects, converting cgzoo units to OpenMM's (nm, kJ/mol, rad)."""

from __future__ import annotations

import math

import numpy as np
import openmm
from openmm import app

from cgzoo.errors import InputError
from cgzoo.generate.spec import SystemSpec
from cgzoo.units import AMU_A3_TO_G_CM3, ANGSTROM_TO_NM, KCAL_MOL_A2_TO_KJ_MOL_NM2, KCAL_MOL_TO_KJ_MOL

#: Largest cutoff as a fraction of the box edge: OpenMM needs cutoff < edge/2, and the 10 %
#: margin below that absorbs NPT fluctuations and a model slightly denser than the guess.
CUTOFF_BOX_FRACTION = 0.45


def liquid_box_edge(spec: SystemSpec, n_molecules: int) -> float:
    """Edge (Å) of the cubic box holding ``n_molecules`` at the spec's guessed liquid density."""
    volume = n_molecules * spec.molecule.mass * AMU_A3_TO_G_CM3 / spec.guess_density
    return volume ** (1.0 / 3.0)


def effective_cutoff(spec: SystemSpec, n_molecules: int) -> float:
    """The force field's cutoff (Å), shrunk to fit the liquid box of ``n_molecules``."""
    return min(spec.cutoff, CUTOFF_BOX_FRACTION * liquid_box_edge(spec, n_molecules))


def build_system(spec: SystemSpec, n_molecules: int, cutoff: float, box_edge: float) -> openmm.System:
    """An OpenMM System of ``n_molecules`` copies in a cubic box of ``box_edge`` Å, LJ/real-space cutoff ``cutoff`` Å.

    LJ uses Lorentz–Berthelot mixing (OpenMM's NonbondedForce rule), plain truncation plus the
    analytic long-range dispersion correction; Coulomb uses PME when the spec asks for it.
    Pairs up to three bonds apart inside a molecule are excluded.
    """
    mol = spec.molecule
    system = openmm.System()
    nonbonded = openmm.NonbondedForce()
    nonbonded.setNonbondedMethod(
        openmm.NonbondedForce.PME if spec.pme else openmm.NonbondedForce.CutoffPeriodic
    )
    nonbonded.setCutoffDistance(cutoff * ANGSTROM_TO_NM)
    nonbonded.setUseSwitchingFunction(False)
    nonbonded.setUseDispersionCorrection(True)
    bonds = openmm.HarmonicBondForce()
    angles = openmm.HarmonicAngleForce()
    torsions = openmm.PeriodicTorsionForce()
    rb_torsions = openmm.RBTorsionForce()
    bonded_pairs = []
    for m in range(n_molecules):
        first = m * mol.n_sites
        for site in mol.sites:
            system.addParticle(site.mass)
            nonbonded.addParticle(site.charge, site.sigma * ANGSTROM_TO_NM, site.epsilon * KCAL_MOL_TO_KJ_MOL)
        for b in mol.bonds:
            bonded_pairs.append((first + b.i, first + b.j))
            if b.k is not None:
                bonds.addBond(
                    first + b.i, first + b.j, b.length * ANGSTROM_TO_NM, b.k * KCAL_MOL_A2_TO_KJ_MOL_NM2
                )
        for c in mol.constraints:
            system.addConstraint(first + c.i, first + c.j, c.length * ANGSTROM_TO_NM)
        for a in mol.angles:
            angles.addAngle(
                first + a.i, first + a.j, first + a.k_atom, math.radians(a.theta0), a.k * KCAL_MOL_TO_KJ_MOL
            )
        for t in mol.torsions:
            for n, k, phase in t.terms:
                torsions.addTorsion(
                    first + t.i,
                    first + t.j,
                    first + t.k_atom,
                    first + t.l_atom,
                    n,
                    math.radians(phase),
                    k * KCAL_MOL_TO_KJ_MOL,
                )
        for t in mol.rb_torsions:
            rb_torsions.addTorsion(
                first + t.i,
                first + t.j,
                first + t.k_atom,
                first + t.l_atom,
                *(c * KCAL_MOL_TO_KJ_MOL for c in t.coefficients),
            )
    nonbonded.createExceptionsFromBonds(bonded_pairs, 0.0, 0.0)
    system.addForce(nonbonded)
    for force, n_terms in (
        (bonds, bonds.getNumBonds()),
        (angles, angles.getNumAngles()),
        (torsions, torsions.getNumTorsions()),
        (rb_torsions, rb_torsions.getNumTorsions()),
    ):
        if n_terms:
            system.addForce(force)
    system.addForce(openmm.CMMotionRemover())
    edge_nm = box_edge * ANGSTROM_TO_NM
    system.setDefaultPeriodicBoxVectors(*np.diag([edge_nm] * 3))
    return system


def build_topology(spec: SystemSpec, n_molecules: int, box_edge: float) -> app.Topology:
    """An OpenMM Topology (one chain, one residue per molecule, bonds) for writing PDB files."""
    mol = spec.molecule
    topology = app.Topology()
    chain = topology.addChain()
    for m in range(n_molecules):
        residue = topology.addResidue(mol.resname, chain, id=str(m + 1))
        atoms = [topology.addAtom(s.name, app.Element.getBySymbol(s.element), residue) for s in mol.sites]
        for b in mol.bonds:
            topology.addBond(atoms[b.i], atoms[b.j])
    topology.setPeriodicBoxVectors(np.diag([box_edge * ANGSTROM_TO_NM] * 3))
    return topology


def platform_and_properties(name: str, threads: int | None) -> tuple[openmm.Platform, dict[str, str]]:
    """The OpenMM platform ``name`` and its properties (CPU threads; mixed precision on GPUs)."""
    try:
        platform = openmm.Platform.getPlatformByName(name)
    except openmm.OpenMMException:
        have = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
        raise InputError(None, f"OpenMM platform {name!r} is not available; have {', '.join(have)}") from None
    properties = {"Threads": str(threads)} if name == "CPU" and threads else {}
    if name in ("CUDA", "OpenCL", "HIP"):
        properties["Precision"] = "mixed"
    return platform, properties
