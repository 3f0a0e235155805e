"""CG molecular dynamics of a cgzoo model on ASE, OpenMM or LAMMPS: NVT, NPT, NVE; guarded, restartable, MTS.

:func:`simulate` checks the inputs, prepares the model and the engine, and runs the shared run loop
(:mod:`cgzoo.md.loop`) with the standard hooks (:mod:`cgzoo.md.hooks`) plus the caller's; it writes
the run directory of :mod:`cgzoo.data.run_record`, whichever engine integrated. The guard checks
every step in ASE and every saved frame in OpenMM and LAMMPS (which stop on NaN themselves):
non-finite or runaway forces (``max_force`` kcal/mol/Å) or a temperature above
``max_temperature_factor`` × target stop the run at once with a one-line reason, and the last good
frame is kept. The logged thermodynamics of saved frames come from the torch model in every engine,
so logs mean the same whatever integrated them.

Reliability: one process at a time writes a run directory (:func:`cgzoo.outputs.output_lock`, held for
the whole run); a frame's log row is written before the frame, and ``run.json`` with status
"complete" is written last. ``restart=True`` continues a finished, stopped or killed run from its last
complete saved frame (positions and velocities) in the engine it ran on, to its recorded target unless
``steps`` is given; it refuses another model or other physics (see
:data:`~cgzoo.md.settings.RESTART_MAY_CHANGE`), rebuilds a torn ``traj.traj`` from its complete frames
and cuts ``log.csv`` back to the saved frames (:mod:`cgzoo.md.run_dir`). ``overwrite=True`` deletes
every file of the previous run before the new one starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from cgzoo.data.run_record import LAST_GOOD, write_run_json
from cgzoo.data.start import load_start
from cgzoo.errors import CGZooError, InputError
from cgzoo.md.calculator import CGCalculator, check_device
from cgzoo.md.hooks import CSVLogger, Guard, Hook, ProgressBar, RunInfo, TrajectoryWriter, UnstableStep
from cgzoo.md.inputs import model_label, model_sha256, record_inputs
from cgzoo.md.integrators import AseIntegrator, EngineIntegrator, choose_engine, prepare_engine
from cgzoo.md.loop import RunLoop
from cgzoo.md.run_dir import check_new_run_dir, new_run_dir, restart_state
from cgzoo.md.settings import SimulationSettings
from cgzoo.models import CGModel
from cgzoo.outputs import output_lock


class UnstableSimulation(CGZooError):
    """A run stopped as unstable at ``step`` (guard, engine or hook); the message says why and where the last good frame is."""

    def __init__(self, message: str, step: int = 0) -> None:
        super().__init__(message)
        self.step = step


def simulate(model: str | Path | CGModel, start: str, out: str | Path, settings: SimulationSettings | None = None,
             restart: bool = False, overwrite: bool = False, device: str = "cpu", progress: bool = True,
             threads: int | None = None, hooks: Sequence[Hook] = ()) -> Path:
    """Run MD of ``model`` (a checkpoint) from ``start``, writing the run directory ``out`` (see module docstring).

    ``settings.engine``: ``ase``, ``openmm``, ``lammps`` or ``auto`` (:func:`~cgzoo.md.integrators.choose_engine`);
    ``settings.mts``: the network every k-th step (Δ-models). ``threads``: CPU threads of OpenMM/LAMMPS (their
    default if None). ``hooks``: the caller's :class:`~cgzoo.md.hooks.Hook` objects, called after the standard ones.
    On a restart, only the settings given explicitly are compared with the run's, and ``start``, if given, must
    be the run's own (the run continues from its last frame); ``restart`` and ``overwrite`` exclude each other.
    """
    out = Path(out)
    requested = settings if settings is not None else SimulationSettings()
    device = check_device(device)
    if threads is not None and threads < 1:
        raise InputError(None, f"--threads must be at least 1, got {threads}")
    if restart and overwrite:
        raise InputError(out, "--restart continues the run and --overwrite replaces it: give one of them")
    with output_lock(out):
        if restart:
            atoms, topology, done, s = restart_state(out, requested)
            if start and str(start) != s.start:
                raise InputError(out, f"--restart continues from the run's last frame, not from --start {start} "
                                      f"(the run started from {s.start}); drop --start or start a new run")
        else:
            check_new_run_dir(out, overwrite)
            if not start:
                raise InputError(None, "a new run needs a start structure (--start)")
            atoms, topology = load_start(start)
            s, done = requested.model_copy(deep=True), 0
            s.steps = s.target_steps()
        calc, prepared = _prepare_model(model, atoms, topology, s, device)
        sha256 = model_sha256(model, calc.model)
        if restart and s.model_sha256 and s.model_sha256 != sha256:
            raise InputError(out, f"--restart with another model: the run used {s.model} (sha256 {s.model_sha256[:12]}…), "
                                  f"not {model_label(model, calc.model)} (sha256 {sha256[:12]}…); "
                                  "start a new run (another --out, or --overwrite)")
        rng = np.random.default_rng(s.seed + done)
        if not restart:
            MaxwellBoltzmannDistribution(atoms, temperature_K=s.temperature_K, rng=rng)
            Stationary(atoms)
            record_inputs(s, model, sha256, start, calc, atoms, topology)
            new_run_dir(out)  # only once every input check has passed: a refused start leaves nothing
        write_run_json(out, s.model_dump(), "running", done)
        # hooks run in order: a frame's log row before the frame, so a kill between leaves a row a restart drops, never a gap
        _run(RunInfo(out, s, atoms, done, restart), calc, prepared, rng, threads, device,
             [Guard(), CSVLogger(), TrajectoryWriter(), *([ProgressBar()] if progress else []), *hooks])
    return out


def _run(run: RunInfo, calc: CGCalculator, prepared: Any, rng: np.random.Generator, threads: int | None, device: str,
         hooks: list[Hook]) -> None:
    """Integrate from ``run.first_step`` to the target step in the run loop with ``hooks``, then write the final ``run.json``."""
    out, s, atoms, done = run.out, run.settings, run.atoms, run.first_step
    loop = RunLoop(run, hooks)
    try:
        if s.engine == "ase":
            loop.run(AseIntegrator(atoms, calc, s, rng, done, run.restart))
        else:
            loop.run(EngineIntegrator(atoms, prepared, s, out / "lammps", done, threads, device))
    except UnstableStep as exc:
        raise UnstableSimulation(f"{out}: unstable at step {loop.steps_done}: {exc}; last good frame in {out / LAST_GOOD}",
                                 step=loop.steps_done) from None
    finally:
        write_run_json(out, s.model_dump(), loop.status, loop.steps_done)


def _prepare_model(model: str | Path | CGModel, atoms: Atoms, topology: dict[str, np.ndarray], s: SimulationSettings,
                   device: str) -> tuple[CGCalculator, Any]:
    """The calculator on ``atoms`` and the engine view of the run, with every model/settings check done; sets ``s.engine``."""
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"], device=device)
    if calc.model is None:
        raise InputError(model, "a compiled model file runs in CGCalculator only; simulate takes its checkpoint (its "
                                "calculator compiles the families measured faster by itself)")
    atoms.calc = calc
    calc.bead_types(atoms)  # type-map check before anything runs
    atoms.get_forces()  # a start cell narrower than twice the model's cutoff is a bad input (ValueError), not a collapse
    label = str(model) if isinstance(model, (str, Path)) else None
    friction = s.friction_model()
    if friction is not None:
        friction.check(calc.model.type_names, label)
    if s.mts > 1 and (calc.model.net is None or calc.model.mode != "delta"):
        raise InputError(label, "multiple time stepping needs a Δ-model: a prior plus a network part")
    from cgzoo.engines.tables import NotRepresentable, graph_network

    prepared = None
    # auto runs a network no system tabulates (anything but a pair_mlp) in ASE without building tables for it
    if s.engine in ("openmm", "lammps") or (s.engine == "auto" and graph_network(calc.model, set()) is None):
        try:
            prepared = prepare_engine(calc, atoms, topology)
        except NotRepresentable as exc:
            if s.engine != "auto":
                raise InputError(label, f"engine {s.engine} cannot run this model: {exc}") from None
    s.engine = choose_engine(s, None if prepared is None else prepared[1])
    if s.engine == "ase" and s.mts > 1 and s.ensemble == "npt":
        raise InputError(None, "multiple time stepping in ASE runs NVT or NVE, not NPT (OpenMM's runs NPT too)")
    return calc, prepared
