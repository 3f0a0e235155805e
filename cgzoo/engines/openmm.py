"""A cgzoo model as an OpenMM ``System``: tabulated custom forces, the graph network as a Python force, MTS.

Force group 0 holds every tabulated term: a ``CustomNonbondedForce`` (one ``Continuous1DFunction``
per type pair and exclusion rule, chosen by the beads' type indices; the exclusions; a periodic
cutoff at the table end, where tables are 0), ``CustomCompoundBondForce`` per bonded kind
with one function per bonded type key (dihedrals periodic). Outside a table's grid the energy
expressions continue it exactly as :class:`~cgzoo.priors.tabulated.Tabulated` does (r⁻¹² core
for pairs, harmonic walls for bonds), so no configuration leaves the model. Force group 1 holds a
graph network (SchNet, equivariant…) as an ``openmm.PythonForce`` evaluating the torch model with
cgzoo's Verlet list: openmm-torch's ``TorchForce`` would need TorchScript and a CUDA build of
torch, which PyPI's wheels are. With ``mts = k`` the ``MTSLangevinIntegrator`` evaluates group 1
once per outer step of k·dt and group 0 every dt (r-RESPA impulse splitting).

OpenMM's units (nm, kJ/mol, ps) are converted here and nowhere else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import openmm
import torch

from cgzoo.engines.base import EngineFailure, EngineState
from cgzoo.engines.system import BeadSystem
from cgzoo.engines.tables import EngineModel, NotRepresentable
from cgzoo.neighbors import TopologyCache, VerletList
from cgzoo.priors.tabulated import Tabulated
from cgzoo.terms import BONDED, KINDS
from cgzoo.units import (
    ANGSTROM_TO_NM,
    FS_TO_PS,
    KCAL_MOL_A_TO_KJ_MOL_NM,
    KCAL_MOL_TO_KJ_MOL,
    KJ_MOL_NM_TO_KCAL_MOL_A,
    KJ_MOL_TO_KCAL_MOL,
    NM_PS_TO_A_FS,
    NM_TO_ANGSTROM,
)

#: force group of the tabulated terms and of the network
TABLE_GROUP, NETWORK_GROUP = 0, 1


def _function(x: np.ndarray, u: np.ndarray, x_scale: float, periodic: bool = False) -> openmm.Continuous1DFunction:
    """A natural-spline ``Continuous1DFunction`` of table values ``u`` (kcal/mol) on the uniform grid ``x``."""
    return openmm.Continuous1DFunction((u * KCAL_MOL_TO_KJ_MOL).tolist(), float(x[0] * x_scale), float(x[-1] * x_scale),
                                       periodic)


def _select(index: str, branches: list[str]) -> str:
    """An expression equal to ``branches[k]`` when the variable ``index`` is k."""
    expr = branches[-1]
    for k in range(len(branches) - 2, -1, -1):
        expr = f"select(delta({index}-{k}), {branches[k]}, {expr})"
    return expr


def _pair_branches(table: Tabulated, t: int) -> list[str]:
    """Energy expression (kJ/mol, r in nm) of each type key of pair table ``t``: the table, and below its grid the
    r⁻¹² core :class:`~cgzoo.priors.tabulated.Tabulated` continues it with."""
    branches = []
    for k, key in enumerate(table.keys):
        x, u, du = table.grid(key)
        x0, u0 = float(x[0]) * ANGSTROM_TO_NM, float(u[0]) * KCAL_MOL_TO_KJ_MOL
        f0 = max(-float(du[0]), table.min_wall_force) * KCAL_MOL_A_TO_KJ_MOL_NM
        core = f"{u0!r}+{x0 * f0 / 12.0!r}*(({x0!r}/r)^12-1)"
        branches.append(f"select(step({x0!r}-r), {core}, pair{t}_{k}(r))")
    return branches


def _add_pair_functions(force: openmm.Force, engine: EngineModel) -> None:
    for t, table in enumerate(engine.pairs):
        for k, key in enumerate(table.keys):
            x, u, _ = table.grid(key)
            force.addTabulatedFunction(f"pair{t}_{k}", _function(x, u, ANGSTROM_TO_NM))


def _pair_forces(engine: EngineModel, system: BeadSystem) -> list[openmm.Force]:
    """Every pair table as one ``CustomNonbondedForce`` (OpenMM wants one exclusion list for all nonbonded forces).

    It skips the pairs every table's rule excludes; a pair only some rules exclude is computed by it
    and taken back out by a ``CustomCompoundBondForce`` holding −table(r) for those pairs.
    """
    n_types = len(engine.type_names)
    keys = engine.pairs[0].keys  # every table covers the system's type pairs, in the same order
    ids = {}
    for k, key in enumerate(keys):
        a, b = (engine.type_names.index(n) for n in key.split("-"))
        ids[(a, b)] = ids[(b, a)] = k
    # pid: the key of the pair of bead types (t1, t2), looked up in a per-type-pair index table
    lookup = [float(ids.get((a, b), -1)) for b in range(n_types) for a in range(n_types)]
    branches = [_pair_branches(table, t) for t, table in enumerate(engine.pairs)]
    force = openmm.CustomNonbondedForce(" + ".join(f"({_select('pid', b)})" for b in branches) + "; pid = pairid(t1, t2)")
    force.addTabulatedFunction("pairid", openmm.Discrete2DFunction(n_types, n_types, lookup))
    _add_pair_functions(force, engine)
    force.addPerParticleParameter("t")
    for t in system.bead_types:
        force.addParticle([float(t)])
    excluded = [system.excluded_pairs(t.exclude, t.intramolecular) for t in engine.pairs]
    everywhere = set.intersection(*excluded)
    for i, j in sorted(everywhere):
        force.addExclusion(i, j)
    cutoff = engine.cutoff * ANGSTROM_TO_NM
    force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(cutoff)
    force.setUseLongRangeCorrection(False)
    force.setName("cgzoo pair tables")
    forces: list[openmm.Force] = [force]
    if any(ex - everywhere for ex in excluded):
        flat = [b for table_branches in branches for b in table_branches]
        back = openmm.CustomCompoundBondForce(2, f"-step({cutoff!r}-r)*({_select('cid', flat)}); r = distance(p1, p2)")
        _add_pair_functions(back, engine)
        back.addPerBondParameter("cid")
        for t, ex in enumerate(excluded):
            for i, j in sorted(ex - everywhere):
                key = ids[(int(system.bead_types[i]), int(system.bead_types[j]))]
                back.addBond([i, j], [float(t * len(keys) + key)])
        back.setUsesPeriodicBoundaryConditions(True)
        back.setName("cgzoo pair tables: pairs only some exclusion rules skip")
        forces.append(back)
    return forces


#: the internal coordinate of each bonded kind in a CustomCompoundBondForce expression
COORDINATE = {"bond": "distance(p1, p2)", "angle": "angle(p1, p2, p3)", "dihedral": "dihedral(p1, p2, p3, p4)"}


def _bonded_force(engine: EngineModel, system: BeadSystem, kind: str) -> openmm.CustomCompoundBondForce:
    """One ``CustomCompoundBondForce`` per bonded kind (the form of bonded force that accepts tabulated functions)."""
    table = engine.tables[kind]
    scale = ANGSTROM_TO_NM if kind == "bond" else 1.0
    branches = []
    for k, key in enumerate(table.keys):
        x, u, du = (a.tolist() for a in table.grid(key))  # python floats: their repr is what the expression parser reads
        if kind == "bond":  # harmonic walls beyond the grid, as Tabulated (wall in kcal/mol/Å² → kJ/mol/nm²)
            wall = table.wall * KCAL_MOL_TO_KJ_MOL / ANGSTROM_TO_NM**2
            lo, hi = x[0] * scale, x[-1] * scale
            u_lo, u_hi = u[0] * KCAL_MOL_TO_KJ_MOL, u[-1] * KCAL_MOL_TO_KJ_MOL
            s_lo, s_hi = du[0] * KCAL_MOL_A_TO_KJ_MOL_NM, du[-1] * KCAL_MOL_A_TO_KJ_MOL_NM
            low = f"{u_lo!r}+{s_lo!r}*(q-{lo!r})+{0.5 * wall!r}*(q-{lo!r})^2"
            high = f"{u_hi!r}+{s_hi!r}*(q-{hi!r})+{0.5 * wall!r}*(q-{hi!r})^2"
            branches.append(f"select(step({lo!r}-q), {low}, select(step(q-{hi!r}), {high}, {kind}{k}(q)))")
        else:
            branches.append(f"{kind}{k}(q)")
    force = openmm.CustomCompoundBondForce(KINDS[kind], f"{_select('tid', branches)}; q = {COORDINATE[kind]}")
    for k, key in enumerate(table.keys):
        x, u, _ = table.grid(key)
        force.addTabulatedFunction(f"{kind}{k}", _function(x, u, scale, periodic=kind == "dihedral"))
    force.addPerBondParameter("tid")
    for term, tid in zip(system.terms[kind + "s"], system.term_types(engine, kind)):
        force.addBond([int(i) for i in term], [float(tid)])
    force.setUsesPeriodicBoundaryConditions(True)
    force.setName(f"cgzoo {kind} tables")
    return force


class NetworkForce:
    """The torch network part of a model as an OpenMM ``PythonForce`` computation (kJ/mol, kJ/mol/nm)."""

    def __init__(self, engine: EngineModel, system: BeadSystem, skin: float = 1.0, dtype: torch.dtype = torch.float64):
        assert engine.network is not None
        self.model = engine.network.to(dtype).eval()
        self.dtype = dtype
        self.types = torch.as_tensor(system.bead_types, dtype=torch.long)
        self.bonded = [torch.as_tensor(a, dtype=torch.long).reshape(-1, k).T
                       for a, k in ((system.bonds, 2), (system.angles, 3), (system.dihedrals, 4))]
        self.verlet = VerletList(self.model.cutoff, skin, TopologyCache(system.n_beads, system.bonds, system.molecule_ids))

    def __call__(self, state: openmm.State) -> tuple[float, np.ndarray]:
        device = self.model.energy_scale.device  # the network runs where the caller put it (CPU or GPU)
        pos = torch.as_tensor(state.getPositions(asNumpy=True)._value * NM_TO_ANGSTROM, dtype=self.dtype, device=device)
        cell = torch.as_tensor(state.getPeriodicBoxVectors(asNumpy=True)._value * NM_TO_ANGSTROM, dtype=self.dtype,
                               device=device)
        graph = self.verlet.graph(pos, self.types.to(device), cell, *(b.to(device) for b in self.bonded))
        out = self.model(graph, forces=True)
        energy = float(out["energy"].detach()[0]) * KCAL_MOL_TO_KJ_MOL
        return energy, out["forces"].detach().cpu().numpy().astype(np.float64) * KCAL_MOL_A_TO_KJ_MOL_NM

    def force(self) -> openmm.Force:
        force = openmm.PythonForce(self)
        force.setUsesPeriodicBoundaryConditions(True)
        force.setForceGroup(NETWORK_GROUP)
        force.setName("cgzoo network")
        return force


def build_system(engine: EngineModel, system: BeadSystem, network: bool = True) -> openmm.System:
    """The OpenMM ``System`` of ``engine`` on ``system``; ``network=False`` leaves the graph network out (for export)."""
    omm = openmm.System()
    for mass in system.masses:
        omm.addParticle(float(mass))
    omm.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(row * ANGSTROM_TO_NM)) for row in _reduced(system.cell)))
    if engine.pairs:
        for force in _pair_forces(engine, system):
            omm.addForce(force)
    for kind in BONDED:
        if kind in engine.tables and len(system.terms[kind + "s"]):
            omm.addForce(_bonded_force(engine, system, kind))
    if network and engine.network is not None:
        omm.addForce(NetworkForce(engine, system).force())
    return omm


def _reduced(cell: np.ndarray) -> np.ndarray:
    """OpenMM wants a lower-triangular cell (a along x, b in the xy plane); cgzoo's datasets and runs are orthorhombic."""
    if np.any(np.abs(cell[np.triu_indices(3, 1)]) > 1e-9):
        raise NotRepresentable("OpenMM needs a reduced (lower-triangular) cell; rotate the box so a ∥ x and b lies in xy")
    return cell


def velocity_verlet(dt_ps: float) -> openmm.CustomIntegrator:
    """Velocity Verlet, whose velocities are at the same time as the positions (OpenMM's ``VerletIntegrator`` is
    leapfrog: its reported velocities lag half a step, which shows as a spurious total-energy fluctuation)."""
    integ = openmm.CustomIntegrator(dt_ps)
    integ.addUpdateContextState()
    integ.addComputePerDof("v", "v + 0.5*dt*f/m")
    integ.addComputePerDof("x", "x + dt*v")
    integ.addComputePerDof("v", "v + 0.5*dt*f/m")
    return integ


def make_integrator(settings: Any, has_network: bool) -> openmm.Integrator:
    """The integrator for ``settings`` (ensemble, temperature_K, timestep_fs, friction_per_ps, mts)."""
    dt = settings.timestep_fs * FS_TO_PS
    mts = int(getattr(settings, "mts", 1) or 1)
    if mts > 1:
        if not has_network:
            raise NotRepresentable("multiple time stepping in OpenMM needs a graph network part; this model's network "
                                   "is tabulated with the prior, so every step costs the same: run without --mts")
        if settings.ensemble == "nve":
            integ = openmm.MTSIntegrator(dt * mts, [(NETWORK_GROUP, 1), (TABLE_GROUP, mts)])
        else:
            integ = openmm.MTSLangevinIntegrator(settings.temperature_K, settings.friction_per_ps, dt * mts,
                                                 [(NETWORK_GROUP, 1), (TABLE_GROUP, mts)])
    elif settings.ensemble == "nve":
        integ = velocity_verlet(dt)
    else:
        integ = openmm.LangevinMiddleIntegrator(settings.temperature_K, settings.friction_per_ps, dt)
    if hasattr(integ, "setRandomNumberSeed"):
        integ.setRandomNumberSeed(int(settings.seed) + 1)  # OpenMM reads 0 as "pick a seed"
    return integ


class Runner:
    """An OpenMM ``Context`` on the CPU platform (or ``platform``) running ``engine`` on ``system``.

    ``settings`` supplies ensemble (``nvt``, ``npt`` with a Monte Carlo barostat every 25 steps,
    ``nve``), temperature_K, pressure_bar, timestep_fs, friction_per_ps, seed and ``mts``. With
    ``mts = k`` one :meth:`step` is one inner step of dt; the integrator advances k of them at once.
    """

    def __init__(self, engine: EngineModel, system: BeadSystem, settings: Any, platform: str = "CPU",
                 threads: int | None = None) -> None:
        self.system = build_system(engine, system)
        self.mts = int(getattr(settings, "mts", 1) or 1)
        if settings.ensemble == "npt":
            self.system.addForce(openmm.MonteCarloBarostat(settings.pressure_bar, settings.temperature_K, 25))
        self.integrator = make_integrator(settings, engine.network is not None)
        props = {"Threads": str(threads)} if threads and platform == "CPU" else {}
        self.context = openmm.Context(self.system, self.integrator, openmm.Platform.getPlatformByName(platform), props)
        self.context.setPeriodicBoxVectors(*(openmm.Vec3(*(row * ANGSTROM_TO_NM)) for row in _reduced(system.cell)))
        self.context.setPositions(system.positions * ANGSTROM_TO_NM)
        if system.velocities is not None:
            self.context.setVelocities(system.velocities / NM_PS_TO_A_FS)
        self.offset = engine.offset(system.bead_types)
        self._pending = 0

    def step(self, n: int) -> None:
        self._pending += n
        outer, self._pending = divmod(self._pending, self.mts)
        try:
            self.integrator.step(outer)
        except openmm.OpenMMException as exc:
            raise EngineFailure(f"OpenMM: {str(exc).splitlines()[0]}") from None
        state = self.context.getState(positions=True)
        if not np.all(np.isfinite(state.getPositions(asNumpy=True)._value)):
            raise EngineFailure("OpenMM: non-finite positions")

    def state(self, forces: bool = True) -> EngineState:
        st = self.context.getState(positions=True, velocities=True, forces=forces, energy=forces)
        return EngineState(
            positions=st.getPositions(asNumpy=True)._value * NM_TO_ANGSTROM,
            velocities=st.getVelocities(asNumpy=True)._value * NM_PS_TO_A_FS,
            cell=st.getPeriodicBoxVectors(asNumpy=True)._value * NM_TO_ANGSTROM,
            forces=st.getForces(asNumpy=True)._value * KJ_MOL_NM_TO_KCAL_MOL_A if forces else None,
            energy=st.getPotentialEnergy()._value * KJ_MOL_TO_KCAL_MOL + self.offset if forces else None,
        )


def export(engine: EngineModel, system: BeadSystem, out: Path, settings: Any) -> list[Path]:
    """``system.xml`` (the serialized System of a pair-additive model), ``topology.json`` (bead types, masses,
    molecules, bonded terms) and ``state.xml`` (positions, velocities, box)."""
    written = []
    omm = build_system(engine, system, network=False)
    (out / "system.xml").write_text(openmm.XmlSerializer.serialize(omm))
    topology = {"format": "cgzoo-openmm", "type_names": engine.type_names,
                "bead_types": [engine.type_names[int(t)] for t in system.bead_types], "masses_amu": system.masses.tolist(),
                "molecule_ids": system.molecule_ids.tolist(), "bonds": system.bonds.tolist(),
                "angles": system.angles.tolist(), "dihedrals": system.dihedrals.tolist(),
                "energy_offset_kcal_mol": engine.offset(system.bead_types), "units": "OpenMM: nm, kJ/mol, ps, amu"}
    (out / "topology.json").write_text(json.dumps(topology, indent=1))
    integ = openmm.VerletIntegrator(settings.timestep_fs * FS_TO_PS)
    context = openmm.Context(omm, integ, openmm.Platform.getPlatformByName("Reference"))
    context.setPeriodicBoxVectors(*(openmm.Vec3(*(row * ANGSTROM_TO_NM)) for row in _reduced(system.cell)))
    context.setPositions(system.positions * ANGSTROM_TO_NM)
    if system.velocities is not None:
        context.setVelocities(system.velocities / NM_PS_TO_A_FS)
    state = context.getState(positions=True, velocities=system.velocities is not None)
    (out / "state.xml").write_text(openmm.XmlSerializer.serialize(state))
    written += [out / "system.xml", out / "topology.json", out / "state.xml"]
    return written


def load_exported(directory: str | Path) -> tuple[openmm.System, openmm.State]:
    """The System and State written by :func:`export`, ready for ``openmm.Context``."""
    directory = Path(directory)
    return (openmm.XmlSerializer.deserialize((directory / "system.xml").read_text()),
            openmm.XmlSerializer.deserialize((directory / "state.xml").read_text()))

