"""Simulate a built-in liquid with OpenMM and write a resumable atomistic reference dataset.

Stages (each a run of fixed-length *blocks*; one log row per block):

1. ``squeeze``: molecules on a dilute lattice (random orientations) are energy-minimised, then
   NVT Langevin MD in 100 fs blocks, after each of which the box and the molecules' centres of
   mass are scaled so the volume shrinks by 2 %, until the guessed liquid density is reached.
   This replaces a high-pressure barostat stage: the Monte Carlo barostat's small volume moves
   take tens of ps to condense a dilute start, the deterministic squeeze about 10 ps.
2. ``equilibrate``: NPT (Langevin middle integrator + Monte Carlo barostat) at the requested
   T and P for ``equil_ps``; the density series and its mean ± block-averaged standard error
   over the last 75 % go to ``density.json``.
3. ``production``: the box is set to the mean equilibrated volume (molecule centres scaled),
   then NVT for ``prod_ps``, saving positions, forces and box every ``save_every_fs``.

Output directory::

    topology.json   atoms (names, elements, resnames, resids, masses amu, charges e,
                    molecule_ids, bonds, constraints), force field, citation, cutoff,
                    T, P, timestep, save interval, seed, versions, command, options,
                    units, status ("running"/"complete") and n_frames
    topology.pdb    first production frame (Å), CRYST1, residues, atom names, CONECT
    traj.trr        production frames: positions nm, forces kJ/(mol·nm), box nm, time ps
                    (time 0 = start of production; forces exclude constraint forces)
    density.json    NPT density series and mean ± SE (g/cm³)
    log.csv         stage, step, time, temperature, potential energy, volume, density per block
    progress.json   resume point: stage, block, checkpoint file, traj/log sizes, frames
    checkpoint_<stage>_<block>.chk   OpenMM checkpoint of the last resume point
    state.xml       final OpenMM state (portable), written on completion
    DONE            marker written last, when the run is complete

Re-running the same command on a directory without ``DONE`` resumes from the last checkpoint
(``traj.trr`` and ``log.csv`` are cut back to the sizes recorded then); a complete directory is
refused unless ``overwrite``. Checkpoints are platform-specific: resume on the same platform.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import openmm

from cgzoo.errors import InputError, OutputExistsError
from cgzoo.generate.build import build_system, effective_cutoff, liquid_box_edge, platform_and_properties
from cgzoo.generate.density import write_density_json
from cgzoo.generate.files import append_text, truncate_to
from cgzoo.generate.outputs import topology_record, write_topology_json, write_topology_pdb
from cgzoo.generate.packing import lattice_edge, pack_lattice, scale_molecule_centres
from cgzoo.generate.progress import PROGRESS_FILE, Progress
from cgzoo.generate.registry import get_system
from cgzoo.generate.trajectory import TrrSegments
from cgzoo.outputs import output_lock, write_atomic
from cgzoo.progress import progress_bar
from cgzoo.units import (
    ANGSTROM_TO_NM,
    ATM_TO_BAR,
    FS_TO_PS,
    KB,
    KJ_MOL_TO_KCAL_MOL,
    NM_TO_ANGSTROM,
    PS_TO_FS,
    density_g_cm3,
)

STAGES = ("squeeze", "equilibrate", "production")
#: Length of one squeeze/equilibration block, i.e. the log and density sampling interval (fs).
LOG_INTERVAL_FS = 100.0
#: Fractional volume decrease per squeeze block.
SQUEEZE_VOLUME_STEP = 0.02
#: Langevin friction (1/ps) and Monte Carlo barostat attempt interval (steps).
FRICTION_PER_PS = 1.0
BAROSTAT_FREQUENCY = 25
#: Energy minimisation of the lattice start: tolerance (kJ/(mol·nm), OpenMM's unit) and iterations.
MINIMIZE_TOLERANCE = 10.0
MINIMIZE_MAX_ITERATIONS = 2000
#: Blocks between checkpoints unless the caller says otherwise.
CHECKPOINT_EVERY = 50
LOG_HEADER = "stage,step,time_ps,temperature_K,potential_energy_kcal_mol,volume_A3,density_g_cm3\n"
#: Files a run owns; ``overwrite`` removes exactly these (plus checkpoints and temporaries).
OWNED_FILES = (
    "topology.json",
    "topology.pdb",
    "traj.trr",
    "traj.segment.trr",
    "density.json",
    "log.csv",
    PROGRESS_FILE,
    "state.xml",
    "DONE",
    ".traj.trr_offsets.npz",
    ".traj.trr_offsets.lock",
)


@dataclass(frozen=True)
class GenerateOptions:
    """What to simulate and how; every field except ``platform`` and ``threads`` must match to resume a run."""

    system: str
    n_molecules: int
    temperature: float  # K
    pressure_bar: float
    equil_ps: float
    prod_ps: float
    save_every_fs: float
    timestep_fs: float
    seed: int
    platform: str
    threads: int | None

    def resume_key(self) -> dict:
        """The fields that define the trajectory (not where it runs)."""
        key = asdict(self)
        del key["platform"], key["threads"]
        return key

    def validate(self) -> None:
        """Raise :class:`InputError` for values the generator cannot run."""
        problems = []
        if self.n_molecules < 2:
            problems.append("n_molecules must be at least 2")
        for label in ("temperature", "pressure_bar", "equil_ps", "prod_ps", "save_every_fs", "timestep_fs"):
            if not getattr(self, label) > 0:
                problems.append(f"{label} must be positive")
        if not problems:
            ratio = self.save_every_fs / self.timestep_fs
            if abs(ratio - round(ratio)) > 1e-6:
                problems.append(
                    f"save_every_fs ({self.save_every_fs}) must be a multiple of timestep_fs ({self.timestep_fs})"
                )
            if self.prod_ps * PS_TO_FS < self.save_every_fs:
                problems.append("prod_ps is shorter than one save interval")
        if problems:
            raise InputError(None, "; ".join(problems))


def run_generate(
    system: str,
    out: str | Path,
    n_molecules: int | None = None,
    temperature: float = 298.15,
    pressure_bar: float = ATM_TO_BAR,
    equil_ps: float = 50.0,
    prod_ps: float = 100.0,
    save_every_fs: float = 500.0,
    timestep_fs: float = 2.0,
    seed: int = 0,
    platform: str = "CPU",
    threads: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    *,
    checkpoint_every: int = CHECKPOINT_EVERY,
    stop_after_frames: int | None = None,
) -> Path:
    """Simulate ``system`` and write the dataset directory ``out``; resume it if it holds an unfinished run.

    ``n_molecules`` defaults to the system's validated size. ``checkpoint_every`` is the number
    of blocks (100 fs in squeeze/equilibration, one saved frame in production) between
    checkpoints. ``stop_after_frames`` is a test hook: return, as if killed, once that many
    production frames exist in total (committed or not). Returns ``out`` as a Path.
    """
    spec = get_system(system)
    options = GenerateOptions(
        system=system,
        n_molecules=spec.default_n_molecules if n_molecules is None else int(n_molecules),
        temperature=float(temperature),
        pressure_bar=float(pressure_bar),
        equil_ps=float(equil_ps),
        prod_ps=float(prod_ps),
        save_every_fs=float(save_every_fs),
        timestep_fs=float(timestep_fs),
        seed=int(seed),
        platform=platform,
        threads=threads,
    )
    options.validate()
    out = Path(out)
    with output_lock(out):  # one generator per directory; DONE is written last
        resume = _prepare_output(out, overwrite)
        run = _Run(options, out, progress, max(1, int(checkpoint_every)), stop_after_frames)
        run.execute(resume)
    return out


def _prepare_output(out: Path, overwrite: bool) -> bool:
    """Make ``out`` ready; return True if it holds an unfinished run to resume.

    A directory with ``topology.json`` but no ``DONE`` is one of ours that did not finish: it
    resumes from ``progress.json``, or restarts if it was killed before its first checkpoint.
    A complete run, or a non-empty directory that is not ours, is refused unless ``overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise InputError(out, "output path exists and is not a directory")
    complete = (out / "DONE").exists()
    started = (out / "topology.json").exists() and not complete
    unfinished = started and (out / PROGRESS_FILE).exists()
    foreign = out.exists() and any(out.iterdir()) and not started and not complete
    if (complete or foreign) and not overwrite:
        raise OutputExistsError(out)
    if overwrite or (started and not unfinished):
        _remove_owned_files(out)
        unfinished = False
    out.mkdir(parents=True, exist_ok=True)
    return unfinished


def _remove_owned_files(out: Path) -> None:
    """Delete the files a previous run wrote (never anything else in ``out``)."""
    if not out.is_dir():
        return
    for name in OWNED_FILES:
        (out / name).unlink(missing_ok=True)
    for pattern in ("checkpoint_*.chk", ".*.tmp-*"):
        for path in out.glob(pattern):
            path.unlink()


def _stage_seed(seed: int, stage: str) -> int:
    """A nonzero OpenMM random seed per (run seed, stage); OpenMM treats 0 as 'pick one at random'."""
    index = STAGES.index(stage) if stage in STAGES else len(STAGES)
    return 1 + (seed * 1_000_003 + index) % (2**31 - 2)


class _Run:
    """One generator run: builds contexts per stage, steps blocks, writes outputs and checkpoints."""

    def __init__(
        self,
        options: GenerateOptions,
        out: Path,
        show_progress: bool,
        checkpoint_every: int,
        stop_after_frames: int | None,
    ) -> None:
        self.options = options
        self.out = out
        self.show_progress = show_progress
        self.checkpoint_every = checkpoint_every
        self.stop_after_frames = stop_after_frames
        self.spec = get_system(options.system)
        n = options.n_molecules
        mol = self.spec.molecule
        liquid_edge = liquid_box_edge(self.spec, n)
        self.cutoff = effective_cutoff(self.spec, n)
        if self.cutoff < self.spec.cutoff:
            warnings.warn(
                f"{n} molecules fill a {liquid_edge:.1f} Å box: cutoff reduced from {self.spec.cutoff} Å "
                f"to {self.cutoff:.2f} Å; use more molecules for production data",
                stacklevel=3,
            )
        self.base_system = build_system(self.spec, n, self.cutoff, liquid_edge)
        self.masses = np.tile([s.mass for s in mol.sites], n)
        self.total_mass = float(self.masses.sum())
        self.dof = 3 * len(self.masses) - self.base_system.getNumConstraints() - 3
        dt = options.timestep_fs
        self.block_steps = {
            "squeeze": max(1, round(LOG_INTERVAL_FS / dt)),
            "equilibrate": max(1, round(LOG_INTERVAL_FS / dt)),
            "production": round(options.save_every_fs / dt),
        }
        start_volume = lattice_edge(mol, n) ** 3
        n_squeeze = max(1, math.ceil(math.log(start_volume / liquid_edge**3) / SQUEEZE_VOLUME_STEP))
        self.squeeze_factor = (liquid_edge**3 / start_volume) ** (1.0 / (3 * n_squeeze))
        self.n_blocks = {
            "squeeze": n_squeeze,
            "equilibrate": max(
                1, round(options.equil_ps * PS_TO_FS / (self.block_steps["equilibrate"] * dt))
            ),
            "production": round(options.prod_ps * PS_TO_FS / options.save_every_fs),
        }
        self.traj = TrrSegments(out / "traj.trr", out / "traj.segment.trr")
        self.log_rows: list[str] = []
        self.frames_done = 0
        self.progress: Progress | None = None
        self.platform, self.platform_properties = platform_and_properties(options.platform, options.threads)

    # --- contexts -------------------------------------------------------------------------
    def _context(self, stage: str) -> openmm.Context:
        """A fresh Context for ``stage``: NVT Langevin, plus the barostat while equilibrating."""
        o = self.options
        system = copy.deepcopy(self.base_system)
        if stage == "equilibrate":
            barostat = openmm.MonteCarloBarostat(o.pressure_bar, o.temperature, BAROSTAT_FREQUENCY)
            barostat.setRandomNumberSeed(_stage_seed(o.seed, stage))
            system.addForce(barostat)
        integrator = openmm.LangevinMiddleIntegrator(o.temperature, FRICTION_PER_PS, o.timestep_fs * FS_TO_PS)
        integrator.setRandomNumberSeed(_stage_seed(o.seed, stage))
        return openmm.Context(system, integrator, self.platform, self.platform_properties)

    # --- top level ------------------------------------------------------------------------
    def execute(self, resume: bool) -> None:
        """Run (or resume) every stage, then mark the directory complete."""
        context = self._resume() if resume else self._start()
        for stage in STAGES[STAGES.index(self.progress.stage) :]:
            if stage != self.progress.stage:
                context = self._begin_stage(stage, context)
            if not self._run_stage(stage, context):
                return
        self._finish(context)

    def _start(self) -> openmm.Context:
        """Write the static files, build the lattice, minimise, and checkpoint squeeze block 0."""
        o = self.options
        record = topology_record(self.spec, o.n_molecules, self.cutoff, asdict(o))
        write_topology_json(self.out / "topology.json", record)
        (self.out / "traj.trr").write_bytes(b"")
        (self.out / "log.csv").write_text(LOG_HEADER)
        positions, edge = pack_lattice(self.spec.molecule, o.n_molecules, np.random.default_rng(o.seed))
        context = self._context("squeeze")
        context.setPeriodicBoxVectors(*np.diag([edge * ANGSTROM_TO_NM] * 3))
        context.setPositions(positions * ANGSTROM_TO_NM)
        openmm.LocalEnergyMinimizer.minimize(context, MINIMIZE_TOLERANCE, MINIMIZE_MAX_ITERATIONS)
        context.setVelocitiesToTemperature(o.temperature, _stage_seed(o.seed, "velocities"))
        self.progress = Progress(
            options=o.resume_key(), stage="squeeze", block=0, checkpoint="", log_bytes=len(LOG_HEADER)
        )
        self._checkpoint(context, "squeeze", 0)
        return context

    def _resume(self) -> openmm.Context:
        """Load progress.json, cut files back to the last checkpoint and restore its Context."""
        progress = Progress.load(self.out)
        if progress.options != self.options.resume_key():
            raise InputError(
                self.out / PROGRESS_FILE,
                f"unfinished run with different options {progress.options}; rerun with those or pass overwrite",
            )
        truncate_to(self.out / "traj.trr", progress.traj_bytes)
        truncate_to(self.out / "log.csv", progress.log_bytes)
        (self.out / "traj.segment.trr").unlink(missing_ok=True)
        for stale in self.out.glob("checkpoint_*.chk"):
            if stale.name != progress.checkpoint:
                stale.unlink()
        context = self._context(progress.stage)
        checkpoint = self.out / progress.checkpoint
        try:
            context.loadCheckpoint(checkpoint.read_bytes())
        except (OSError, openmm.OpenMMException) as exc:
            raise InputError(
                checkpoint, f"cannot load checkpoint ({exc}); resume on the same platform or pass overwrite"
            ) from exc
        self.progress = progress
        self.frames_done = progress.n_frames
        return context

    def _begin_stage(self, stage: str, previous: openmm.Context) -> openmm.Context:
        """Move the final state of the previous stage into a new Context for ``stage`` and checkpoint it."""
        state = previous.getState(getPositions=True, getVelocities=True)
        positions = state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer)
        box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(openmm.unit.nanometer)
        if stage == "production":
            factor = self._production_scale(box)
            positions = scale_molecule_centres(positions, self.masses, self.spec.molecule.n_sites, factor)
            box = box * factor
        context = self._context(stage)
        context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
        context.setVelocities(state.getVelocities())
        context.setTime(state.getTime())
        context.setStepCount(state.getStepCount())
        self._checkpoint(context, stage, 0)
        return context

    def _production_scale(self, box_nm: np.ndarray) -> float:
        """Write density.json and return the length factor taking the box to the mean equilibrated volume."""
        series = np.array(self.progress.density_series)
        o = self.options
        _, mean_volume = write_density_json(
            self.out / "density.json", series[:, 0], series[:, 1], series[:, 2], o.temperature, o.pressure_bar
        )
        volume = float(np.linalg.det(box_nm)) * NM_TO_ANGSTROM**3
        return (mean_volume / volume) ** (1.0 / 3.0)

    # --- blocks ---------------------------------------------------------------------------
    def _run_stage(self, stage: str, context: openmm.Context) -> bool:
        """Step the remaining blocks of ``stage``; False if the test hook stopped the run."""
        n_blocks = self.n_blocks[stage]
        steps = self.block_steps[stage]
        bar = progress_bar(total=n_blocks, initial=self.progress.block, desc=f"{self.options.system} {stage}",
                           unit="block", show=self.show_progress)
        started = time.perf_counter()
        done_here = 0
        block = self.progress.block
        try:
            while block < n_blocks:
                context.getIntegrator().step(steps)
                block += 1
                done_here += 1
                self._after_block(stage, context)
                elapsed_days = (time.perf_counter() - started) / 86400.0
                simulated_ns = done_here * steps * self.options.timestep_fs * 1e-6
                bar.set_postfix(ns_day=f"{simulated_ns / elapsed_days:.1f}", refresh=False)
                bar.update(1)
                if self.stop_after_frames is not None and self.frames_done >= self.stop_after_frames:
                    self.traj.abandon()
                    return False
                if block % self.checkpoint_every == 0 and block < n_blocks:
                    self._checkpoint(context, stage, block)
        finally:
            bar.close()
        if stage == STAGES[-1]:
            self._checkpoint(context, stage, block)
        return True

    def _after_block(self, stage: str, context: openmm.Context) -> None:
        """Log the block; squeeze the box, record the density or save a frame depending on the stage."""
        production = stage == "production"
        state = context.getState(
            getEnergy=True,
            getPositions=stage != "equilibrate",
            getForces=production,
            enforcePeriodicBox=production,
        )
        box_nm = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(openmm.unit.nanometer)
        volume = float(np.linalg.det(box_nm)) * NM_TO_ANGSTROM**3
        density = density_g_cm3(self.total_mass, volume)
        time_ps = state.getTime().value_in_unit(openmm.unit.picosecond)
        self._log(stage, state, time_ps, volume, density)
        if stage == "squeeze":
            positions = state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer)
            f = self.squeeze_factor
            context.setPeriodicBoxVectors(*(box_nm * f))
            context.setPositions(
                scale_molecule_centres(positions, self.masses, self.spec.molecule.n_sites, f)
            )
        elif stage == "equilibrate":
            self.progress.density_series.append([time_ps, density, volume])
        else:
            self._save_frame(state, box_nm)

    def _save_frame(self, state: openmm.State, box_nm: np.ndarray) -> None:
        """Append one production frame (OpenMM units = TRR units); the first also becomes topology.pdb."""
        positions = state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer)
        forces = state.getForces(asNumpy=True).value_in_unit(
            openmm.unit.kilojoule_per_mole / openmm.unit.nanometer
        )
        index = self.frames_done + 1
        step = index * self.block_steps["production"]
        self.traj.write(positions, forces, box_nm, step, index * self.options.save_every_fs * FS_TO_PS)
        if index == 1:
            write_topology_pdb(
                self.out / "topology.pdb", self.spec, self.options.n_molecules, positions, box_nm
            )
        self.frames_done = index

    def _log(self, stage: str, state: openmm.State, time_ps: float, volume: float, density: float) -> None:
        """Buffer one log.csv row; rows reach the file at the next checkpoint."""
        kinetic = state.getKineticEnergy().value_in_unit(openmm.unit.kilojoule_per_mole) * KJ_MOL_TO_KCAL_MOL
        potential = (
            state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole) * KJ_MOL_TO_KCAL_MOL
        )
        temperature = 2.0 * kinetic / (self.dof * KB)
        self.log_rows.append(
            f"{stage},{state.getStepCount()},{time_ps:.3f},{temperature:.2f},{potential:.4f},{volume:.3f},{density:.5f}\n"
        )

    # --- persistence ----------------------------------------------------------------------
    def _checkpoint(self, context: openmm.Context, stage: str, block: int) -> None:
        """Commit pending frames and log rows, write an OpenMM checkpoint, then point progress.json at it."""
        progress = self.progress
        progress.traj_bytes = self.traj.commit()
        if self.log_rows:
            progress.log_bytes = append_text(self.out / "log.csv", "".join(self.log_rows))
            self.log_rows.clear()
        progress.n_frames = self.frames_done
        name = f"checkpoint_{stage}_{block:07d}.chk"
        write_atomic(self.out / name, context.createCheckpoint())
        previous = progress.checkpoint
        progress.stage, progress.block, progress.checkpoint = stage, block, name
        progress.save(self.out)
        if previous and previous != name:
            (self.out / previous).unlink(missing_ok=True)

    def _finish(self, context: openmm.Context) -> None:
        """Write the final state, mark topology.json complete and drop the DONE marker."""
        state = context.getState(getPositions=True, getVelocities=True, getParameters=True)
        write_atomic(self.out / "state.xml", openmm.XmlSerializer.serialize(state).encode())
        record = topology_record(self.spec, self.options.n_molecules, self.cutoff, asdict(self.options))
        record.update(status="complete", n_frames=self.frames_done)
        write_topology_json(self.out / "topology.json", record)
        (self.out / "DONE").write_text(f"complete: {self.frames_done} frames\n")
