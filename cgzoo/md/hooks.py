"""Hooks of the MD run loop: what happens at a run's start, at each checked step, at each saved frame and at its end.

The run loop (:mod:`cgzoo.md.loop`) integrates; everything else a run does is a :class:`Hook`, as in
schnetpack's simulator: the stability :class:`Guard`, the :class:`CSVLogger` of ``log.csv``, the
:class:`TrajectoryWriter` of ``traj.traj``/``traj.extxyz``/``topology.data``/``traj.dcd`` and the :class:`ProgressBar`. Users add their
own with ``simulate(..., hooks=[MyHook()])``: subclass :class:`Hook` and override what you need; raise
:class:`UnstableStep` from :meth:`Hook.on_step` to stop the run as unstable.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import Trajectory, read, write

from cgzoo.data.export import cg_record
from cgzoo.data.interop import TOPOLOGY_FILE, check_type_masses, frame_arrays, run_bead_topology, write_pair
from cgzoo.data.run_record import LAST_GOOD, LOG_FIELDS
from cgzoo.data.start import label_beads
from cgzoo.errors import CGZooError
from cgzoo.io.extxyz import TOPOLOGY_KEY, encode_record
from cgzoo.md.settings import SimulationSettings
from cgzoo.outputs import replace_file
from cgzoo.progress import progress_bar
from cgzoo.units import EV_TO_KCAL_MOL


class UnstableStep(CGZooError):
    """A state the run cannot continue from; the message is the one-line reason (a hook or an integrator raises it)."""


@dataclass
class RunInfo:
    """What a hook learns at a run's start: its directory, settings, atoms, first step and whether it continues a run."""

    out: Path
    settings: SimulationSettings
    atoms: Atoms
    first_step: int
    restart: bool


@dataclass
class StepState:
    """A state the integrator reached: the step, the run's atoms (model calculator attached) and the forces it used (eV/Å).

    ASE reports every step (and the start); OpenMM and LAMMPS report every saved frame, whose forces come from the torch model.
    """

    step: int
    atoms: Atoms
    forces: np.ndarray | None


@dataclass
class Frame:
    """A saved frame: its step, its time, the atoms (``info["time_fs"]`` set) and its ``log.csv`` row (:data:`LOG_FIELDS`)."""

    step: int
    time_fs: float
    atoms: Atoms
    thermo: dict[str, float]


class Hook:
    """A part of a run called by the run loop; every method does nothing unless overridden."""

    def on_start(self, run: RunInfo) -> None:
        """The run starts (or continues) at ``run.first_step``."""

    def on_step(self, state: StepState) -> None:
        """The integrator reached ``state`` (before it is saved, if it is); raise :class:`UnstableStep` to stop the run."""

    def on_save(self, frame: Frame) -> None:
        """``frame`` is saved."""

    def on_end(self, status: str) -> None:
        """The run ended: ``complete``, ``stopped`` (interrupted, or short of its target) or ``unstable``."""


class Guard(Hook):
    """The stability guard: stops the run on non-finite forces or positions, runaway forces or a runaway temperature.

    It keeps the last state it passed and writes it to ``last_good.extxyz`` when the run ends unstable.
    """

    def on_start(self, run: RunInfo) -> None:
        self.settings, self.path = run.settings, run.out / LAST_GOOD
        self.last_good = run.atoms.copy()

    def on_step(self, state: StepState) -> None:
        s, atoms, forces = self.settings, state.atoms, state.forces
        reason = None
        if forces is None or not np.all(np.isfinite(forces)) or not np.all(np.isfinite(atoms.positions)):
            reason = "non-finite forces or positions"
        elif np.abs(forces).max() * EV_TO_KCAL_MOL > s.max_force:
            reason = f"force {np.abs(forces).max() * EV_TO_KCAL_MOL:.3g} kcal/mol/Å above {s.max_force}"
        elif atoms.get_temperature() > s.max_temperature_factor * s.temperature_K:
            reason = f"temperature {atoms.get_temperature():.0f} K above {s.max_temperature_factor} × target"
        if reason:
            raise UnstableStep(reason)
        self.last_good = atoms.copy()

    def on_end(self, status: str) -> None:
        if status == "unstable":
            good = self.last_good.copy()
            good.calc = None
            replace_file(self.path, lambda tmp: write(str(tmp), good, format="extxyz"))


class CSVLogger(Hook):
    """Writes each saved frame's thermodynamics to ``log.csv``, one row per frame, flushed at once."""

    def on_start(self, run: RunInfo) -> None:
        self.handle = (run.out / "log.csv").open("a" if run.restart else "w", newline="")
        self.writer = csv.DictWriter(self.handle, LOG_FIELDS)
        if not run.restart:
            self.writer.writeheader()

    def on_save(self, frame: Frame) -> None:
        self.writer.writerow(frame.thermo)
        self.handle.flush()

    def on_end(self, status: str) -> None:
        self.handle.close()


class TrajectoryWriter(Hook):
    """Writes saved frames to ``traj.traj`` and, at the end, all of them as ``traj.extxyz`` and as the
    ``topology.data`` + ``traj.dcd`` pair of VMD, OVITO and MDAnalysis (:mod:`cgzoo.data.interop`).

    ASE's ``.traj`` keeps no custom per-atom arrays, so ``traj.extxyz`` labels the frames from the run's settings,
    and its first frame carries the bonded topology as a dataset's extxyz does (:mod:`cgzoo.data.export`).
    """

    def on_start(self, run: RunInfo) -> None:
        self.path, self.settings = run.out / "traj.traj", run.settings
        # the bead topology is checked before the first step: a run whose pair could not be written does not start
        self.topology = run_bead_topology(run.settings.model_dump(), run.atoms, run.out / "run.json")
        check_type_masses(self.topology, run.out / TOPOLOGY_FILE)
        self.traj = Trajectory(str(self.path), "a" if run.restart else "w", run.atoms)

    def on_save(self, frame: Frame) -> None:
        self.traj.write(frame.atoms)

    def on_end(self, status: str) -> None:
        self.traj.close()
        frames = read(str(self.path), index=":")
        for frame in frames:
            label_beads(frame, self.settings.bead_types, self.settings.molecule_ids)
        if frames:
            frames[0].info[TOPOLOGY_KEY] = encode_record(cg_record(self.topology, self.settings.temperature_K))
        replace_file(self.path.with_suffix(".extxyz"), lambda tmp: write(str(tmp), frames, format="extxyz"))
        if frames:
            write_pair(self.topology, *frame_arrays(frames), self.path.parent)


class ProgressBar(Hook):
    """A tqdm bar of the steps done, with the speed in ns/day, updated at each saved frame."""

    def on_start(self, run: RunInfo) -> None:
        s = run.settings
        self.bar = progress_bar(total=s.steps - run.first_step, unit="step", desc=f"md ({s.engine})", show=True)
        self.timestep_fs, self.first = s.timestep_fs, run.first_step
        self.started, self.last = time.perf_counter(), run.first_step

    def on_save(self, frame: Frame) -> None:
        self.bar.update(frame.step - self.last)
        self.last = frame.step
        elapsed = time.perf_counter() - self.started
        if elapsed > 0 and frame.step > self.first:
            self.bar.set_postfix(ns_per_day=f"{(frame.step - self.first) * self.timestep_fs * 1e-6 / (elapsed / 86400):.2f}")

    def on_end(self, status: str) -> None:
        self.bar.close()
