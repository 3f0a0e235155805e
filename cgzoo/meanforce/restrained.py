"""One restrained run: atomistic MD with every CG bead held at a target position, sampling the mapped force.

The core takes any :class:`openmm.System`, atomistic positions and the mapping's two matrices
(``CGMapper.position_map`` C and ``CGMapper.force_map`` D, beads × atoms), so any force map works
unchanged. Each bead ``I`` gets one group of a :class:`openmm.CustomCentroidBondForce` whose centre
is ``R_I = Σ_i C_Ii r_i`` (C's weights, so a COM bead is restrained at its COM) and whose energy is
``K/2 |R_I − R_I⁰|²``. The restraint sits in a force group of its own; the mapped force ``D f`` is
taken from the other groups only, and OpenMM's state forces exclude constraint forces, as in the
``cgzoo generate`` trajectories. Units: cgzoo's (Å, kcal/mol, fs) in and out, OpenMM's inside.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import openmm
import scipy.sparse as sp

from cgzoo.errors import InputError
from cgzoo.generate.build import platform_and_properties
from cgzoo.meanforce.statistics import N_BLOCKS
from cgzoo.units import (
    ANGSTROM_TO_NM,
    FS_TO_PS,
    KCAL_MOL_A2_TO_KJ_MOL_NM2,
    KJ_MOL_NM_TO_KCAL_MOL_A,
    NM_TO_ANGSTROM,
)

#: OpenMM has 32 force groups; a restraint needs one no other force uses.
N_FORCE_GROUPS = 32


@dataclass(frozen=True)
class RestraintSettings:
    """How a restrained run is done: stiffness kcal/(mol·Å²), K, fs, 1/ps, ps; OpenMM platform and CPU threads."""

    stiffness: float
    temperature: float
    timestep_fs: float
    friction_per_ps: float
    equil_ps: float
    run_ps: float
    sample_every_fs: float
    platform: str = "CPU"
    threads: int | None = None

    def validate(self) -> None:
        """Raise :class:`InputError` for values a run cannot use."""
        problems = [f"{name} must be positive" for name in
                    ("stiffness", "temperature", "timestep_fs", "friction_per_ps", "run_ps", "sample_every_fs")
                    if not getattr(self, name) > 0]
        if self.equil_ps < 0:
            problems.append("equil_ps must not be negative")
        if not problems and self.n_samples < N_BLOCKS:
            problems.append(f"run_ps ({self.run_ps}) gives {self.n_samples} force samples every {self.sample_every_fs} fs;"
                            f" the standard error needs at least {N_BLOCKS}")
        if problems:
            raise InputError(None, "; ".join(problems))

    def resume_key(self) -> dict:
        """The fields that define the measurement (not where it runs)."""
        return {k: v for k, v in asdict(self).items() if k not in ("platform", "threads")}

    @property
    def sample_steps(self) -> int:
        """MD steps between two force samples (at least one)."""
        return max(1, round(self.sample_every_fs / self.timestep_fs))

    @property
    def n_samples(self) -> int:
        """Force samples in the production part of the run."""
        return max(1, round(self.run_ps * 1000.0 / (self.sample_steps * self.timestep_fs)))

    @property
    def equil_steps(self) -> int:
        """MD steps discarded before sampling."""
        return round(self.equil_ps * 1000.0 / self.timestep_fs)


@dataclass
class RestrainedSamples:
    """The mapped forces (S, B, 3) kcal/(mol·Å) of one run and how far the bead centres strayed from target (Å)."""

    forces: np.ndarray
    rms_deviation: float
    max_deviation: float


def free_force_group(system: openmm.System) -> int:
    """The highest force group no force of ``system`` uses (PME reciprocal groups included)."""
    used = {f.getForceGroup() for f in system.getForces()}
    used |= {f.getReciprocalSpaceForceGroup() for f in system.getForces()
             if isinstance(f, openmm.NonbondedForce) and f.getReciprocalSpaceForceGroup() >= 0}
    free = [g for g in range(N_FORCE_GROUPS) if g not in used]
    if not free:
        raise InputError(None, "the OpenMM system uses all 32 force groups; none is left for the restraint")
    return free[-1]


def add_restraint(system: openmm.System, position_map: sp.csr_matrix, targets: np.ndarray, stiffness: float) -> int:
    """Add ``K/2 |R_I − target_I|²`` on every bead centre (C's weights) to ``system``; return its force group."""
    group = free_force_group(system)
    force = openmm.CustomCentroidBondForce(1, "0.5*k_restraint*((x1-x0)^2+(y1-y0)^2+(z1-z0)^2)")
    force.addGlobalParameter("k_restraint", stiffness * KCAL_MOL_A2_TO_KJ_MOL_NM2)
    for name in ("x0", "y0", "z0"):
        force.addPerBondParameter(name)
    csr = sp.csr_matrix(position_map)
    for bead, target in enumerate(np.asarray(targets, dtype=np.float64) * ANGSTROM_TO_NM):
        start, stop = csr.indptr[bead], csr.indptr[bead + 1]
        force.addGroup(csr.indices[start:stop].tolist(), csr.data[start:stop].tolist())
        force.addBond([bead], target.tolist())
    force.setForceGroup(group)
    system.addForce(force)
    return group


def run_restrained(
    system: openmm.System,
    positions: np.ndarray,
    box: np.ndarray,
    position_map: sp.csr_matrix,
    force_map: sp.csr_matrix,
    settings: RestraintSettings,
    seed: int,
) -> RestrainedSamples:
    """Hold every bead at ``position_map @ positions`` and sample the mapped force ``force_map @ f``.

    ``positions`` (N, 3) Å must have every bead's atoms whole (unwrapped), since bead centres are
    weighted averages of raw coordinates; ``box`` (3, 3) Å holds the cell vectors as rows.
    ``system`` is not changed (the restraint is added to a copy). ``seed`` (nonzero) seeds
    the Langevin integrator and the initial velocities.
    """
    n_atoms = system.getNumParticles()
    if positions.shape != (n_atoms, 3) or position_map.shape[1] != n_atoms or force_map.shape != position_map.shape:
        raise InputError(None, f"positions {positions.shape}, position map {position_map.shape} and force map "
                               f"{force_map.shape} do not fit a system of {n_atoms} particles")
    targets = np.asarray(position_map @ positions)
    work = copy.deepcopy(system)
    group = add_restraint(work, position_map, targets, settings.stiffness)
    integrator = openmm.LangevinMiddleIntegrator(settings.temperature, settings.friction_per_ps,
                                                 settings.timestep_fs * FS_TO_PS)
    integrator.setRandomNumberSeed(seed)
    platform, properties = platform_and_properties(settings.platform, settings.threads)
    context = openmm.Context(work, integrator, platform, properties)
    context.setPeriodicBoxVectors(*(np.asarray(box, dtype=np.float64) * ANGSTROM_TO_NM))
    context.setPositions(positions * ANGSTROM_TO_NM)
    context.setVelocitiesToTemperature(settings.temperature, seed)
    if settings.equil_steps:
        integrator.step(settings.equil_steps)
    other_groups = ((1 << N_FORCE_GROUPS) - 1) & ~(1 << group)
    d_map = sp.csr_matrix(force_map, dtype=np.float64)
    c_map = sp.csr_matrix(position_map, dtype=np.float64)
    forces = np.empty((settings.n_samples, len(targets), 3))
    squared, worst = 0.0, 0.0
    for s in range(settings.n_samples):
        integrator.step(settings.sample_steps)
        state = context.getState(getForces=True, getPositions=True, groups=other_groups)
        atom_forces = state.getForces(asNumpy=True).value_in_unit(openmm.unit.kilojoule_per_mole / openmm.unit.nanometer)
        forces[s] = d_map @ (np.asarray(atom_forces) * KJ_MOL_NM_TO_KCAL_MOL_A)
        centres = c_map @ (np.asarray(state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer))
                           * NM_TO_ANGSTROM)
        deviation = np.linalg.norm(centres - targets, axis=1)
        squared += float(np.mean(deviation**2))
        worst = max(worst, float(deviation.max()))
    return RestrainedSamples(forces=forces, rms_deviation=float(np.sqrt(squared / settings.n_samples)),
                             max_deviation=worst)
