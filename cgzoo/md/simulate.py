"""CG molecular dynamics of a cgzoo model on ASE, OpenMM or LAMMPS: NVT, NPT, NVE; guarded, restartable, MTS.

A run directory holds ``traj.traj`` (ASE trajectory: unwrapped positions in Å, velocities, cell,
``info["time_fs"]``), ``traj.extxyz`` (the same frames with ``bead_type``/``molecule_id`` arrays),
``log.csv`` (step, time_fs, temperature_K, pressure_bar, density_g_cm3, epot/ekin/etot in
kcal/mol; one row per saved frame), ``run.json`` (settings, the model file's sha256, engine, bonded
topology, per-bead types and molecule ids, status) and, if the stability guard stopped the run,
``last_good.extxyz``, whichever engine integrated. The guard checks every step in ASE and every saved
frame in OpenMM and LAMMPS (which stop on NaN themselves): non-finite or runaway forces (``max_force``
kcal/mol/Å) or a temperature above ``max_temperature_factor`` × target stop the run at once with a
one-line reason, and the last good frame is kept. The logged thermodynamics of saved frames come from
the torch model in every engine, so logs mean the same whatever integrated them.

Reliability: one process at a time writes a run directory (:func:`cgzoo.outputs.output_lock`, held for
the whole run); a frame's log row is written before the frame, and ``run.json`` with status
"complete" is written last. ``restart=True`` continues a finished, stopped or killed run from its last
complete saved frame (positions and velocities) in the engine it ran on, to its recorded target unless
``steps`` is given; it refuses another model or other physics (see :data:`RESTART_MAY_CHANGE`),
rebuilds a torn ``traj.traj`` from its complete frames and cuts ``log.csv`` back to the saved frames.
``overwrite=True`` deletes every file of the previous run before the new one starts.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from ase import Atoms, units
from ase.io import Trajectory, read, write
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tqdm.auto import tqdm

from cgzoo.data.start import label_beads, load_start, read_run_json, run_topology
from cgzoo.errors import CGZooError, InputError, check_output_path
from cgzoo.hashing import file_sha256
from cgzoo.md.calculator import CGCalculator, check_device
from cgzoo.metrics import ForceErrors
from cgzoo.models import CGModel
from cgzoo.neighbors import CellTooSmall
from cgzoo.outputs import output_lock, remove_stale_temporaries, replace_path, temp_sibling
from cgzoo.units import ATM_TO_BAR, EV_TO_KCAL_MOL, WATER_COMPRESSIBILITY_PER_BAR, density_g_cm3

LOG_FIELDS = ["step", "time_fs", "temperature_K", "pressure_bar", "density_g_cm3", "epot_kcal_mol", "ekin_kcal_mol",
              "etot_kcal_mol"]
#: run length of a new run that names none
DEFAULT_STEPS = 10_000
#: settings a restart may change: the run's length and the guard's thresholds (they change no physics)
RESTART_MAY_CHANGE = frozenset({"steps", "max_force", "max_temperature_factor"})
#: settings simulate fills in itself from the model and the start structure, never compared on a restart
RECORDED = frozenset({"model", "model_sha256", "start", "bonds", "angles", "dihedrals", "type_names", "bead_types",
                      "molecule_ids", "force_rmse_test", "force_rmse_frames"})
#: the command-line flag of each setting, for error messages
FLAGS = {"temperature_K": "--temperature", "pressure_bar": "--pressure", "timestep_fs": "--timestep-fs",
         "steps": "--steps", "save_every": "--save-every", "friction_per_ps": "--friction", "max_force": "--max-force",
         "ensemble": "--ensemble", "barostat": "--barostat", "engine": "--engine", "mts": "--mts", "seed": "--seed"}

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class UnstableSimulation(CGZooError):
    """The stability guard stopped a run at ``step``; the message says why and where the last good frame is."""

    def __init__(self, message: str, step: int = 0) -> None:
        super().__init__(message)
        self.step = step


class SimulationSettings(BaseModel):
    """Everything that defines a run (written to ``run.json``), checked when built: a bad value is a one-line :class:`InputError`.

    ``steps`` None means :data:`DEFAULT_STEPS` for a new run and the recorded target on a restart
    (:meth:`target_steps`); ``model_fields_set`` tells a restart which settings were asked for.
    """

    model_config = ConfigDict(extra="forbid")

    ensemble: Literal["nvt", "npt", "nve"] = "nvt"
    temperature_K: Positive = 298.15
    pressure_bar: Finite = ATM_TO_BAR
    timestep_fs: Positive = 2.0
    steps: Annotated[int, Field(ge=1)] | None = None
    save_every: Annotated[int, Field(ge=1)] = 50
    friction_per_ps: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    barostat: Literal["mtk", "berendsen", "montecarlo"] = "mtk"
    tdamp_fs: Positive = 100.0
    pdamp_fs: Positive = 1000.0
    seed: Annotated[int, Field(ge=0)] = 0
    max_force: Positive = 1000.0
    max_temperature_factor: Annotated[float, Field(gt=1, allow_inf_nan=False)] = 5.0
    model: str = ""
    model_sha256: str = ""
    start: str = ""
    bonds: list[list[int]] = Field(default_factory=list)
    angles: list[list[int]] = Field(default_factory=list)
    dihedrals: list[list[int]] = Field(default_factory=list)
    type_names: list[str] = Field(default_factory=list)
    bead_types: list[str] = Field(default_factory=list)
    molecule_ids: list[int] = Field(default_factory=list)
    engine: Literal["auto", "ase", "openmm", "lammps"] = "auto"
    mts: Annotated[int, Field(ge=1)] = 1
    force_rmse_test: float | None = None
    force_rmse_frames: int = 0

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InputError(None, f"bad simulation settings: {settings_problems(exc)}") from None

    @model_validator(mode="after")
    def _mts_divides_save_every(self) -> SimulationSettings:
        if self.save_every % self.mts:
            raise ValueError(f"--mts must divide --save-every ({self.save_every}), got {self.mts}")
        return self

    def target_steps(self, recorded: int | None = None) -> int:
        """The run's length: the steps asked for, else a restarted run's recorded target, else :data:`DEFAULT_STEPS`."""
        if self.steps is not None:
            return self.steps
        return DEFAULT_STEPS if recorded is None else recorded


def settings_problems(exc: ValidationError) -> str:
    """Pydantic's errors on one line, each naming the setting and its flag."""
    problems = []
    for err in exc.errors():
        name = ".".join(map(str, err["loc"]))
        flag = f" ({FLAGS[name]})" if name in FLAGS else ""
        got = f", got {err['input']!r}" if err["loc"] else ""
        problems.append(f"{name}{flag}: {err['msg'].removeprefix('Value error, ')}{got}")
    return "; ".join(problems)


def held_out_force_rmse(model: CGModel, dataset: Path, max_frames: int = 20) -> dict[str, float | None]:
    """The model's force RMSE (kcal/mol/Å per component) on up to ``max_frames`` test-split frames of ``dataset``.

    The split is the training default (:data:`cgzoo.data.splits.DEFAULT_SPLIT`), so these are frames
    no model trained with the defaults has seen; recorded in ``run.json`` for ``cgzoo evaluate``.
    """
    from cgzoo.data.dataset import CGDataset
    from cgzoo.data.splits import DEFAULT_SPLIT, SplitError, block_split
    from cgzoo.neighbors import TopologyCache, batch_graph

    ds = CGDataset.load(dataset)
    try:
        test = block_split(ds.n_frames, **DEFAULT_SPLIT)["test"]
    except SplitError:  # a dataset too short to hold out frames: no held-out error to report
        return {"force_rmse_test": None, "force_rmse_frames": 0}
    test = test[np.linspace(0, len(test) - 1, min(max_frames, len(test))).round().astype(int)]
    top = ds.topology
    cache = TopologyCache(top.n_beads, top.bonds, top.molecule_ids)
    if model.energy_scale.device.type != "cpu":  # the graphs below are built on the CPU
        model = copy.deepcopy(model).cpu()
    dtype = model.energy_scale.dtype
    errors = ForceErrors()
    for f in test:
        graph = batch_graph(ds.positions[f][None], ds.boxes[f][None], top.bead_types, cache, model.cutoff, top.bonds,
                            top.angles, top.dihedrals, dtype=dtype)
        errors.update(model(graph, forces=True)["forces"].detach().double().cpu().numpy(), ds.forces[f])
    return {"force_rmse_test": errors.total().rmse, "force_rmse_frames": len(test)}


def make_dynamics(atoms: Atoms, s: SimulationSettings, rng: np.random.Generator):
    """The ASE integrator for the settings' ensemble."""
    dt = s.timestep_fs * units.fs
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


def thermo_row(atoms: Atoms, step: int, time_fs: float) -> dict[str, float]:
    """One log row in cgzoo units (pressure includes the kinetic term; ASE's stress is virial only)."""
    epot = atoms.get_potential_energy() * EV_TO_KCAL_MOL
    ekin = atoms.get_kinetic_energy() * EV_TO_KCAL_MOL
    volume = atoms.get_volume()
    stress = atoms.get_stress(include_ideal_gas=True)
    return {"step": step, "time_fs": time_fs, "temperature_K": atoms.get_temperature(),
            "pressure_bar": -float(np.mean(stress[:3])) / units.bar,
            "density_g_cm3": density_g_cm3(float(atoms.get_masses().sum()), volume),
            "epot_kcal_mol": epot, "ekin_kcal_mol": ekin, "etot_kcal_mol": epot + ekin}


class Guard:
    """The stability guard: raises :class:`UnstableSimulation` on NaN, runaway forces or temperature.

    ``step_of()`` gives the current step for messages; forces are the calculator's latest.
    """

    def __init__(self, atoms: Atoms, s: SimulationSettings, out: Path, step_of: Callable[[], int]) -> None:
        self.atoms, self.s, self.out, self.step_of = atoms, s, out, step_of
        self.last_good = atoms.copy()

    def __call__(self, forces: np.ndarray | None = None) -> None:
        forces = self.atoms.calc.results.get("forces") if forces is None else forces
        reason = None
        if forces is None or not np.all(np.isfinite(forces)) or not np.all(np.isfinite(self.atoms.positions)):
            reason = "non-finite forces or positions"
        elif np.abs(forces).max() * EV_TO_KCAL_MOL > self.s.max_force:
            reason = f"force {np.abs(forces).max() * EV_TO_KCAL_MOL:.3g} kcal/mol/Å above {self.s.max_force}"
        elif self.atoms.get_temperature() > self.s.max_temperature_factor * self.s.temperature_K:
            reason = f"temperature {self.atoms.get_temperature():.0f} K above {self.s.max_temperature_factor} × target"
        if reason:
            self.stop(reason)
        self.last_good = self.atoms.copy()

    def stop(self, reason: str) -> None:
        """Write the last good frame and raise :class:`UnstableSimulation` with ``reason``."""
        path = self.out / "last_good.extxyz"
        good = self.last_good.copy()
        good.calc = None
        _replace_file(path, lambda tmp: write(str(tmp), good, format="extxyz"))
        raise UnstableSimulation(f"{self.out}: unstable at step {self.step_of()}: {reason}; last good frame in {path}",
                                 step=self.step_of())


class Recorder:
    """Writes saved frames to ``traj.traj`` and their thermodynamics to ``log.csv`` (one row per frame), whichever engine integrates."""

    def __init__(self, out: Path, atoms: Atoms, s: SimulationSettings, restart: bool, done: int, progress: bool) -> None:
        self.s, self.done = s, done
        self.traj = Trajectory(str(out / "traj.traj"), "a" if restart else "w", atoms)
        self.log_fh = (out / "log.csv").open("a" if restart else "w", newline="")
        self.writer = csv.DictWriter(self.log_fh, LOG_FIELDS)
        if not restart:
            self.writer.writeheader()
        self.bar = tqdm(total=s.steps - done, unit="step", disable=not progress, desc=f"md ({s.engine})")
        self.started, self.last = time.perf_counter(), done

    def record(self, atoms: Atoms, step: int) -> None:
        """Save ``atoms`` as the frame of ``step`` (thermo from the calculator attached to ``atoms``)."""
        atoms.info["time_fs"] = step * self.s.timestep_fs
        row = thermo_row(atoms, step, step * self.s.timestep_fs)
        self.writer.writerow(row)  # the row before its frame: a kill between leaves a row a restart drops, never a gap
        self.log_fh.flush()
        self.traj.write(atoms)
        self.bar.update(step - self.last)
        self.last = step
        elapsed = time.perf_counter() - self.started
        if elapsed > 0 and step > self.done:
            self.bar.set_postfix(ns_per_day=f"{(step - self.done) * self.s.timestep_fs * 1e-6 / (elapsed / 86400):.2f}")

    def close(self) -> None:
        self.bar.close()
        self.traj.close()
        self.log_fh.close()


#: the barostats each engine implements (ASE: isotropic MTK and Berendsen; OpenMM: Monte Carlo)
BAROSTATS = {"ase": ("mtk", "berendsen"), "lammps": ("mtk", "berendsen"), "openmm": ("montecarlo",)}


def choose_engine(s: SimulationSettings, model: CGModel, tabulated: bool) -> str:
    """The engine for ``s.engine``; ``auto`` picks the fastest that runs the model and settings exactly (measured in
    experiments/benchmarks/RESULTS.md): LAMMPS, then OpenMM, for a pair-additive model; ASE for a model with a graph
    network (on the CPU the network dominates and OpenMM's Python force adds to it) or with parts no table holds
    (``tabulated`` False), and when no engine is installed."""
    from cgzoo.engines.base import engine_module
    from cgzoo.engines.tables import graph_network

    if s.engine != "auto":
        if s.ensemble == "npt" and s.barostat not in BAROSTATS.get(s.engine, (s.barostat,)):
            raise InputError(None, f"engine {s.engine} has no {s.barostat} barostat; it offers {BAROSTATS[s.engine]}")
        if s.engine == "lammps" and graph_network(model) is not None:
            raise InputError(None, f"engine lammps cannot run the {type(model.net).__name__} network (not pair-additive); "
                                   "use --engine openmm or ase")
        if s.engine != "ase":
            engine_module(s.engine)  # not installed: say how to install it before anything runs
        return s.engine

    if not tabulated or graph_network(model) is not None:
        return "ase"
    candidates = ["lammps", "openmm"]
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


def run_ase(atoms: Atoms, calc: CGCalculator, s: SimulationSettings, out: Path, rng: np.random.Generator,
            recorder: Recorder, done: int, restart: bool) -> int:
    """Integrate with ASE (``--mts k``: :class:`~cgzoo.md.mts.MultipleTimeStep`); returns the steps done."""
    if s.mts > 1:
        from cgzoo.md.mts import MultipleTimeStep, split_calculators

        fast, slow = split_calculators(calc)
        friction = s.friction_per_ps / (1000.0 * units.fs) if s.ensemble == "nvt" else 0.0
        dyn = MultipleTimeStep(atoms, s.timestep_fs * units.fs, fast, slow, s.mts, s.temperature_K, friction, rng)
    else:
        dyn = make_dynamics(atoms, s, rng)
    guard = Guard(atoms, s, out, lambda: done + dyn.nsteps)
    dyn.attach(lambda: guard(dyn.forces if s.mts > 1 else None), interval=1)

    def save() -> None:
        if restart and dyn.nsteps == 0:
            return  # ASE calls observers before the first step; that frame is already the run's last
        recorder.record(atoms, done + dyn.nsteps)

    dyn.attach(save, interval=s.save_every)
    try:
        dyn.run(s.steps - done)
    except CellTooSmall as exc:  # NPT: the box collapsed below the model's range, a failure of the model
        guard.stop(f"the box shrank below twice the model's cutoff ({exc})")
    return done + dyn.nsteps


def run_engine(atoms: Atoms, prepared, s: SimulationSettings, out: Path, recorder: Recorder, done: int,
               threads: int | None, device: str = "cpu") -> int:
    """Integrate with OpenMM or LAMMPS, saving every ``save_every`` steps; returns the steps done.

    The engine runs the tables of :mod:`cgzoo.engines.tables` (and the network, in OpenMM); the saved
    frames' thermodynamics and the guard use the torch model, as the ASE driver does, so a run's
    log means the same whatever the engine. The guard checks saved frames; the engine itself stops
    on NaN or lost atoms, which ends the run as unstable with the last saved frame kept.
    """
    from cgzoo.engines.base import EngineFailure, engine_module

    module = engine_module(s.engine)
    system, engine = prepared
    if engine.network is not None:
        engine.network.to(device)
    system.positions, system.cell = atoms.get_positions(), np.asarray(atoms.cell, dtype=np.float64)
    system.velocities = atoms.get_velocities() * units.fs
    if s.engine == "lammps":
        runner = module.Runner(engine, system, s, out / "lammps", threads=threads)
    else:
        runner = module.Runner(engine, system, s, threads=threads)
    step = done
    guard = Guard(atoms, s, out, lambda: step)
    if done == 0:
        recorder.record(atoms, 0)
    while step < s.steps:
        n = min(s.save_every, s.steps - step)
        try:
            runner.step(n)
        except EngineFailure as exc:
            guard.stop(str(exc))
        step += n
        state = runner.state(forces=False)  # the log and the guard take forces from the torch model
        if not (np.all(np.isfinite(state.positions)) and np.all(np.isfinite(state.cell))):
            guard.stop("non-finite positions or box from the engine")
        atoms.set_cell(state.cell)
        atoms.set_positions(state.positions)
        atoms.set_velocities(state.velocities / units.fs)
        try:
            atoms.get_stress()  # one model evaluation gives energy, forces and stress for the guard and the log
        except CellTooSmall as exc:
            guard.stop(f"the box shrank below twice the model's cutoff ({exc})")
        guard()
        recorder.record(atoms, step)
    return step


def simulate(model: str | Path | CGModel, start: str, out: str | Path, settings: SimulationSettings | None = None,
             restart: bool = False, overwrite: bool = False, device: str = "cpu", progress: bool = True,
             threads: int | None = None) -> Path:
    """Run MD of ``model`` (a checkpoint) from ``start``, writing the run directory ``out`` (see module docstring).

    ``settings.engine``: ``ase``, ``openmm``, ``lammps`` or ``auto`` (:func:`choose_engine`); ``settings.mts``:
    the network every k-th step (Δ-models). ``threads``: CPU threads of OpenMM/LAMMPS (their default if None).
    On a restart, only the settings given explicitly are compared with the run's (``start`` is not used).
    """
    out = Path(out)
    requested = settings if settings is not None else SimulationSettings()
    device = check_device(device)
    if threads is not None and threads < 1:
        raise InputError(None, f"--threads must be at least 1, got {threads}")
    with output_lock(out):
        if restart:
            atoms, topology, done, s = _restart_state(out, requested)
        else:
            _check_new_run_dir(out, overwrite)
            if not start:
                raise InputError(None, "a new run needs a start structure (--start)")
            atoms, topology = load_start(start)
            s, done = requested.model_copy(deep=True), 0
            s.steps = s.target_steps()
        calc, prepared = _prepare_model(model, atoms, topology, s, device)
        sha256 = model_sha256(model, calc.model)
        if restart and s.model_sha256 and s.model_sha256 != sha256:
            raise InputError(out, f"--restart with another model: the run used {s.model} (sha256 {s.model_sha256[:12]}…), "
                                  f"not {_model_label(model, calc.model)} (sha256 {sha256[:12]}…); "
                                  "start a new run (another --out, or --overwrite)")
        rng = np.random.default_rng(s.seed + done)
        if not restart:
            MaxwellBoltzmannDistribution(atoms, temperature_K=s.temperature_K, rng=rng)
            Stationary(atoms)
            _record_inputs(s, model, sha256, start, calc, atoms, topology)
            _new_run_dir(out)  # only once every input check has passed: a refused start leaves nothing
        _write_run_json(out, s, "running", done)
        return _run(atoms, calc, prepared, s, out, rng, done, restart, progress, threads, device)


def _prepare_model(model: str | Path | CGModel, atoms: Atoms, topology: dict[str, np.ndarray], s: SimulationSettings,
                   device: str) -> tuple[CGCalculator, Any]:
    """The calculator on ``atoms`` and the engine view of the run, with every model/settings check done; sets ``s.engine``."""
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"], device=device)
    atoms.calc = calc
    calc.bead_types(atoms)  # type-map check before anything runs
    atoms.get_forces()  # a start cell narrower than twice the model's cutoff is a bad input (ValueError), not a collapse
    label = str(model) if isinstance(model, (str, Path)) else None
    if s.mts > 1 and (calc.model.net is None or calc.model.mode != "delta"):
        raise InputError(label, "multiple time stepping needs a Δ-model: a prior plus a network part")
    from cgzoo.engines.tables import NotRepresentable, graph_network

    prepared = None
    if s.engine in ("openmm", "lammps") or (s.engine == "auto" and graph_network(calc.model) is None):
        try:
            prepared = prepare_engine(calc, atoms, topology)
        except NotRepresentable as exc:
            if s.engine != "auto":
                raise InputError(label, f"engine {s.engine} cannot run this model: {exc}") from None
    s.engine = choose_engine(s, calc.model, prepared is not None)
    if s.engine == "ase" and s.mts > 1 and s.ensemble == "npt":
        raise InputError(None, "multiple time stepping in ASE runs NVT or NVE, not NPT (OpenMM's runs NPT too)")
    return calc, prepared


def _record_inputs(s: SimulationSettings, model: str | Path | CGModel, sha256: str, start: str, calc: CGCalculator,
                   atoms: Atoms, topology: dict[str, np.ndarray]) -> None:
    """Fill the settings a new run records about its model and start structure (``run.json``)."""
    s.model, s.model_sha256 = _model_label(model, calc.model), sha256
    s.start = s.start or str(start)
    s.bonds, s.angles, s.dihedrals = (np.asarray(topology[k]).tolist() for k in ("bonds", "angles", "dihedrals"))
    s.type_names = list(calc.model.type_names)
    s.bead_types = [s.type_names[int(t)] for t in calc.bead_types(atoms)]
    start_path = Path(str(start).partition("@")[0])
    if start_path.suffix.lower() in (".h5", ".hdf5"):
        s.force_rmse_test, s.force_rmse_frames = held_out_force_rmse(calc.model, start_path).values()
    s.molecule_ids = np.asarray(atoms.arrays.get("molecule_id", np.arange(len(atoms))), dtype=int).tolist()


def _run(atoms: Atoms, calc: CGCalculator, prepared: Any, s: SimulationSettings, out: Path, rng: np.random.Generator,
         done: int, restart: bool, progress: bool, threads: int | None, device: str) -> Path:
    """Integrate from step ``done`` to ``s.steps``, then write ``traj.extxyz`` and, last, the final ``run.json``."""
    recorder = Recorder(out, atoms, s, restart, done, progress)
    status, steps_done = "complete", done
    try:
        if s.engine == "ase":
            steps_done = run_ase(atoms, calc, s, out, rng, recorder, done, restart)
        else:
            steps_done = run_engine(atoms, prepared, s, out, recorder, done, threads, device)
    except UnstableSimulation as exc:
        status, steps_done = "unstable", exc.step
        raise
    finally:
        recorder.close()
        if status != "unstable":  # stopped from outside: the last saved frame is where a restart continues
            steps_done = max(steps_done, recorder.last)
        _write_extxyz(out, s)
        _write_run_json(out, s, status if status != "complete" or steps_done >= s.steps else "stopped", steps_done)
    return out


def model_sha256(model: str | Path | CGModel, loaded: CGModel) -> str:
    """What a restart must match: the sha256 of the model file (a prior directory's ``prior.json``), or of the weights of an in-memory model."""
    if isinstance(model, CGModel):
        digest = hashlib.sha256()
        for name, tensor in loaded.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().double().cpu().numpy().tobytes())
        return digest.hexdigest()
    path = Path(model)
    return file_sha256(path / "prior.json" if path.is_dir() else path)


def _model_label(model: str | Path | CGModel, loaded: CGModel) -> str:
    """How ``run.json`` names the model: its file, or the network class (``prior`` for a prior alone)."""
    if isinstance(model, (str, Path)):
        return str(model)
    return type(loaded.net).__name__ if loaded.net is not None else "prior"


#: files of a run directory (a restart removes temporaries of them left by a killed run)
RUN_FILES = ("run.json", "traj.extxyz", "log.csv", "traj.traj", "last_good.extxyz")


def _replace_file(path: Path, write_to: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write_to`` on a temporary sibling renamed onto it when complete."""
    tmp = temp_sibling(path)
    try:
        write_to(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    replace_path(tmp, path)


def _write_run_json(out: Path, s: SimulationSettings, status: str, steps_done: int) -> None:
    payload: dict[str, Any] = {**s.model_dump(), "status": status, "steps_done": steps_done}
    _replace_file(out / "run.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


def _write_extxyz(out: Path, s: SimulationSettings) -> None:
    """``traj.extxyz``: every frame of ``traj.traj`` with its bead types (ASE's .traj keeps no custom per-atom arrays)."""
    frames = read(str(out / "traj.traj"), index=":")
    for frame in frames:
        label_beads(frame, s.bead_types, s.molecule_ids)
    _replace_file(out / "traj.extxyz", lambda tmp: write(str(tmp), frames, format="extxyz"))


def _check_new_run_dir(out: Path, overwrite: bool) -> None:
    """Refuse an existing ``out`` unless ``overwrite``, and then anything but a run directory or an empty one."""
    check_output_path(out, overwrite)
    if out.exists() and not (out.is_dir() and ((out / "run.json").exists() or not any(out.iterdir()))):
        raise InputError(out, "is not a cgzoo simulate run directory, so --overwrite will not delete it; choose another --out")


def _new_run_dir(out: Path) -> None:
    """An empty ``out``: every file of a previous run (``last_good.extxyz``, the engine's work files, …) deleted."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def _run_record(info: Path) -> tuple[SimulationSettings, dict[str, np.ndarray]]:
    """A run's settings and bonded topology from its ``run.json``."""
    saved = read_run_json(info)
    s = SimulationSettings(**{k: saved[k] for k in SimulationSettings.model_fields if k in saved})
    return s, run_topology(saved, info)


def _restart_state(out: Path, requested: SimulationSettings) -> tuple[Atoms, dict[str, np.ndarray], int, SimulationSettings]:
    """Last complete saved frame (positions, velocities, cell) and settings of an existing run, to its new target."""
    info = out / "run.json"
    if not info.exists() or not (out / "traj.traj").exists():
        raise InputError(out, "nothing to restart (no run.json / traj.traj)")
    s, topology = _run_record(info)
    _check_restart_settings(s, requested, info)
    for name in (RESTART_MAY_CHANGE - {"steps"}) & requested.model_fields_set:
        setattr(s, name, getattr(requested, name))
    s.steps = requested.target_steps(s.steps)
    for name in RUN_FILES:
        remove_stale_temporaries(out / name)
    frames = recover_trajectory(out / "traj.traj")
    atoms = frames[-1]
    if len(s.bead_types) != len(atoms):
        raise InputError(info, "run.json lacks the bead types of its trajectory; cannot restart")
    label_beads(atoms, s.bead_types, s.molecule_ids)
    steps = [round(f.info.get("time_fs", 0.0) / s.timestep_fs) for f in frames]
    if steps[-1] >= s.steps:
        raise InputError(out, f"run already has {steps[-1]} of its {s.steps} steps; ask for more with --steps")
    _truncate_log(out / "log.csv", steps)
    return atoms, topology, steps[-1], s


def _check_restart_settings(recorded: SimulationSettings, requested: SimulationSettings, info: Path) -> None:
    """Refuse a restart asking for other physics than the run's (settings given explicitly only; see :data:`RESTART_MAY_CHANGE`)."""
    differ = [f"{FLAGS.get(name, name)} {getattr(recorded, name)!r} → {getattr(requested, name)!r}"
              for name in sorted(requested.model_fields_set - RESTART_MAY_CHANGE - RECORDED)
              if getattr(requested, name) != getattr(recorded, name) and not (name == "engine" and requested.engine == "auto")]
    if differ:
        raise InputError(info, "--restart continues a run with its own settings, and these differ: " + ", ".join(differ)
                         + "; start a new run (another --out, or --overwrite) to change them")


def recover_trajectory(path: Path) -> list[Atoms]:
    """The complete frames of a run's ``traj.traj``; a torn file (cut mid-frame) is rewritten with them, with a warning naming it."""
    try:
        traj = Trajectory(str(path), "r")
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for a damaged file
        raise InputError(path, f"torn or unreadable ({type(exc).__name__}), no frame to continue from; "
                               "start again with --overwrite") from None
    with traj:
        total, frames = len(traj), []
        for i in range(total):
            try:
                frames.append(traj[i])
            except Exception:  # noqa: BLE001 - the first damaged frame ends what can be recovered
                break
    if not frames:
        raise InputError(path, "torn: no complete frame to continue from; start again with --overwrite")
    if len(frames) < total:
        warnings.warn(f"{path}: torn after {len(frames)} of {total} frames; continuing from the last complete frame "
                      f"(t = {frames[-1].info.get('time_fs', 0.0):g} fs)", stacklevel=2)
        _replace_file(path, lambda tmp: _write_traj(tmp, frames))
    return frames


def _write_traj(path: Path, frames: list[Atoms]) -> None:
    """An ASE trajectory holding ``frames``."""
    with Trajectory(str(path), "w") as traj:
        for frame in frames:
            traj.write(frame)


def _truncate_log(path: Path, frame_steps: list[int]) -> None:
    """Keep exactly one log row per saved frame, in order: rows after the last frame and torn, NUL or repeated lines go."""
    rows: dict[int, dict[str, str]] = {}
    if path.exists():
        lines = [line for line in path.read_text(errors="replace").splitlines() if "\0" not in line]
        for row in csv.DictReader(lines):
            step = _row_step(row)
            if step is not None:
                rows.setdefault(step, row)
    keep = [rows[step] for step in frame_steps if step in rows]

    def write_rows(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, LOG_FIELDS)
            writer.writeheader()
            writer.writerows(keep)

    _replace_file(path, write_rows)


def _row_step(row: dict[str | None, Any]) -> int | None:
    """The step of a complete, numeric log row, or None for a torn or foreign line."""
    if None in row or any(row.get(name) in (None, "") for name in LOG_FIELDS):
        return None
    try:
        values = [float(row[name]) for name in LOG_FIELDS]
    except ValueError:
        return None
    return int(values[0]) if values[0].is_integer() else None
