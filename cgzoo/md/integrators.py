"""The integrators the run loop drives (ASE dynamics with r-RESPA MTS, OpenMM/LAMMPS runners) and the choice between them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms, units
from ase.md.md import MolecularDynamics

from cgzoo.errors import CGZooError, InputError
from cgzoo.md.calculator import CGCalculator
from cgzoo.md.hooks import StepState, UnstableStep
from cgzoo.md.settings import SimulationSettings
from cgzoo.units import WATER_COMPRESSIBILITY_PER_BAR

if TYPE_CHECKING:
    from cgzoo.engines.tables import EngineModel

#: the barostats each engine implements (ASE: isotropic MTK and Berendsen; OpenMM: Monte Carlo)
BAROSTATS = {"ase": ("mtk", "berendsen"), "lammps": ("mtk", "berendsen"), "openmm": ("montecarlo",)}


def choose_engine(s: SimulationSettings, engine: EngineModel | None) -> str:
    """The engine for ``s.engine``; ``auto`` picks the fastest that runs the model and settings exactly (measured in
    experiments/benchmarks/RESULTS.md): LAMMPS, then OpenMM, for a model pair-additive in the system at hand;
    ASE for a model with a graph network there (on the CPU the network dominates and OpenMM's Python force adds
    to it) or with parts no table holds (``engine``, the model split for the system, None), and when no engine is
    installed."""
    from cgzoo.engines.base import engine_module
    from cgzoo.engines.tables import untabulable_reason

    friction = s.friction_model()
    per_type = None if friction is None else friction.per_type_langevin()
    # a friction file runs in ASE, and in LAMMPS when it is a per-type Langevin one with every γ > 0 (fix langevin scale)
    lammps_friction = friction is None or (per_type is not None and min(per_type.values()) > 0)
    if s.engine != "auto":
        if friction is not None and (s.engine == "openmm" or (s.engine == "lammps" and not lammps_friction)):
            raise InputError(None, f"engine {s.engine} cannot run the {friction.spec.kind} friction file; use --engine ase"
                                   + ("" if s.engine == "openmm" or per_type is None else " (or every γ > 0 for lammps)"))
        if s.ensemble == "npt" and s.barostat not in BAROSTATS.get(s.engine, (s.barostat,)):
            raise InputError(None, f"engine {s.engine} has no {s.barostat} barostat; it offers {BAROSTATS[s.engine]}")
        if s.engine == "lammps" and engine is not None and engine.network is not None:
            raise InputError(None, f"engine lammps cannot run this model: {untabulable_reason(engine.network.net)}; "
                                   "use --engine openmm or ase")
        if s.engine != "ase":
            engine_module(s.engine)  # not installed: say how to install it before anything runs
        return s.engine

    if engine is None or engine.network is not None:
        return "ase"
    candidates = ["lammps", "openmm"] if friction is None else ["lammps"] if lammps_friction else []
    if s.ensemble == "npt":
        candidates = [c for c in candidates if s.barostat in BAROSTATS[c]]
    for name in candidates:
        try:
            engine_module(name)
            return name
        except CGZooError:
            continue
    return "ase"


def prepare_engine(calc: CGCalculator, atoms: Atoms, topology: dict[str, np.ndarray]):
    """The engine view of the run: its :class:`~cgzoo.engines.system.BeadSystem` and the model's tables."""
    from cgzoo.engines.system import BeadSystem
    from cgzoo.engines.tables import split_model

    system = BeadSystem.from_atoms(atoms, calc.model.type_names, calc.bead_types(atoms).numpy(), topology)
    return system, split_model(calc.model, system.keys(), system.excluded_pairs)


def make_dynamics(atoms: Atoms, s: SimulationSettings, rng: np.random.Generator, type_index: np.ndarray,
                  type_names: list[str]) -> MolecularDynamics:
    """The ASE integrator for the settings' ensemble (and friction file; beads of ``type_index`` into ``type_names``)."""
    dt = s.timestep_fs * units.fs
    friction = s.friction_model()
    if friction is not None:
        return friction.ase_dynamics(atoms, s.timestep_fs, s.temperature_K, type_index, type_names, rng)
    if s.ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, dt)
    if s.ensemble == "nvt":
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin

        atoms.set_constraint(FixCom())  # ASE's recommended way to keep the centre of mass still under Langevin
        return Langevin(atoms, dt, temperature_K=s.temperature_K, friction=s.friction_per_ps / (1000.0 * units.fs), rng=rng,
                        fixcm=False)
    if s.barostat == "mtk":
        from ase.md.nose_hoover_chain import IsotropicMTKNPT

        return IsotropicMTKNPT(atoms, dt, temperature_K=s.temperature_K, pressure_au=s.pressure_bar * units.bar,
                               tdamp=s.tdamp_fs * units.fs, pdamp=s.pdamp_fs * units.fs)
    if s.barostat == "berendsen":
        from ase.md.nptberendsen import NPTBerendsen

        return NPTBerendsen(atoms, dt, temperature_K=s.temperature_K, pressure_au=s.pressure_bar * units.bar,
                            taut=s.tdamp_fs * units.fs, taup=s.pdamp_fs * units.fs, compressibility_au=WATER_COMPRESSIBILITY_PER_BAR / units.bar)
    raise ValueError(f"barostat must be 'mtk' or 'berendsen', got {s.barostat!r}")


class AseIntegrator:
    """ASE's dynamics (``--mts k``: :class:`~cgzoo.md.mts.MultipleTimeStep`): every step and the start are checked,
    every ``save_every``-th step of this run is saved (not its start when it continues a run: that frame is saved)."""

    def __init__(self, atoms: Atoms, calc: CGCalculator, s: SimulationSettings, rng: np.random.Generator, first_step: int,
                 restart: bool) -> None:
        self.atoms, self.first_step, self.restart, self.save_every = atoms, first_step, restart, s.save_every
        self.mts = s.mts > 1
        if self.mts:
            from cgzoo.md.mts import MultipleTimeStep, split_calculators

            fast, slow = split_calculators(calc)
            friction = s.friction_per_ps / (1000.0 * units.fs) if s.ensemble == "nvt" else 0.0
            self.dyn = MultipleTimeStep(atoms, s.timestep_fs * units.fs, fast, slow, s.mts, s.temperature_K, friction, rng)
        else:
            self.dyn = make_dynamics(atoms, s, rng, calc.bead_types(atoms).numpy(), calc.model.type_names)

    @property
    def step(self) -> int:
        """The step the atoms are at: the run's first step plus the steps ASE took."""
        return self.first_step + self.dyn.nsteps

    def states(self, stop: int) -> Iterator[tuple[StepState, bool]]:
        """The start and every step to ``stop``, with the forces the integrator used (an MTS step's total force)."""
        for _ in self.dyn.irun(stop - self.first_step):
            n = self.dyn.nsteps
            forces = self.dyn.forces if self.mts else self.atoms.calc.results.get("forces")
            yield StepState(self.first_step + n, self.atoms, forces), n % self.save_every == 0 and not (self.restart and n == 0)


class EngineIntegrator:
    """OpenMM or LAMMPS, run ``save_every`` steps at a time: each saved frame (and a new run's start) is checked and saved.

    The engine runs the tables of :mod:`cgzoo.engines.tables` (and the network, in OpenMM); the saved
    frames' energy, forces and stress, for the guard and the log, come from a torch model, as in ASE, so a
    run's log means the same whatever the engine. When the tables hold the whole model, that torch model is
    the tables themselves (:meth:`~cgzoo.engines.tables.EngineModel.torch_model`): the log then describes the
    potential the engine integrates (within its spline interpolation), and a frame costs a table lookup, not a
    network evaluation (the zoo's pair_mlp on 300 water beads, one thread: 6-7 ms against 46-53 ms a frame in
    experiments/benchmarks/frame_cost.py; on the model, frames were half of a LAMMPS run saving every 50 steps).
    The engine itself stops on NaN or lost atoms, which ends the run as unstable with the last saved frame kept.
    """

    def __init__(self, atoms: Atoms, prepared: Any, s: SimulationSettings, work: Path, first_step: int,
                 threads: int | None, device: str) -> None:
        from cgzoo.engines.base import engine_module

        module = engine_module(s.engine)
        system, engine = prepared
        if engine.network is not None:
            engine.network.to(device)
        system.positions, system.cell = atoms.get_positions(), np.asarray(atoms.cell, dtype=np.float64)
        system.velocities = atoms.get_velocities() * units.fs
        if s.engine == "lammps":
            self.runner = module.Runner(engine, system, s, work, threads=threads)
        else:
            self.runner = module.Runner(engine, system, s, threads=threads)
        if engine.network is None:
            atoms.calc = CGCalculator(engine.torch_model(), system.terms["bonds"], system.terms["angles"],
                                      system.terms["dihedrals"], device=device, dtype=atoms.calc.dtype, compiled=False)
        self.atoms, self.save_every, self.step = atoms, s.save_every, first_step

    def states(self, stop: int) -> Iterator[tuple[StepState, bool]]:
        """A new run's start, then every ``save_every``-th step to ``stop`` (and ``stop``), with the torch model's forces."""
        from cgzoo.engines.base import EngineFailure

        atoms = self.atoms
        if self.step == 0:
            yield StepState(0, atoms, atoms.get_forces(apply_constraint=False)), True
        while self.step < stop:
            n = min(self.save_every, stop - self.step)
            try:
                self.runner.step(n)
            except EngineFailure as exc:
                raise UnstableStep(str(exc)) from None
            self.step += n
            state = self.runner.state(forces=False)  # the log and the guard take forces from the torch model
            if not (np.all(np.isfinite(state.positions)) and np.all(np.isfinite(state.cell))):
                raise UnstableStep("non-finite positions or box from the engine")
            atoms.set_cell(state.cell)
            atoms.set_positions(state.positions)
            atoms.set_velocities(state.velocities / units.fs)
            atoms.get_stress()  # one model evaluation gives energy, forces and stress for the guard and the log
            yield StepState(self.step, atoms, atoms.calc.results.get("forces")), True
