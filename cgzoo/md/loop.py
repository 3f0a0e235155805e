"""The engine-independent MD run loop: an integrator advances the atoms, the loop calls the hooks at each state and saved frame.

ASE, OpenMM and LAMMPS runs share it (:mod:`cgzoo.md.integrators`), so the guard, the log, the
trajectory and any user hook (:mod:`cgzoo.md.hooks`) behave alike whichever engine integrates. The
thermodynamics of a saved frame come from the torch calculator attached to the atoms in every engine (the
model's, or its tables' where an engine runs tables alone: :class:`~cgzoo.md.integrators.EngineIntegrator`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
from ase import Atoms, units

from cgzoo.md.hooks import Frame, Hook, RunInfo, StepState, UnstableStep
from cgzoo.neighbors import CellTooSmall
from cgzoo.units import EV_TO_KCAL_MOL, density_g_cm3


class Integrator(Protocol):
    """What the run loop drives: ASE's dynamics or an engine's runner, advancing the run's atoms in place."""

    @property
    def step(self) -> int:
        """The step the atoms are at (the run's count, from its first step)."""

    def states(self, stop: int) -> Iterator[tuple[StepState, bool]]:
        """Advance to step ``stop``, yielding each state the hooks check and whether it is a saved frame.

        Raises :class:`UnstableStep` when the engine itself fails.
        """


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


class RunLoop:
    """Runs an integrator to the run's target calling ``hooks`` in order; ``status`` and ``steps_done`` go to ``run.json``.

    A box shrinking below twice the model's cutoff (NPT) is a failure of the model, like a hook's
    :class:`UnstableStep`: the run ends ``unstable`` at the integrator's step and the exception goes on.
    Interrupted (any other exception, or never started), the run is ``stopped`` at its last saved frame.
    """

    def __init__(self, run: RunInfo, hooks: Sequence[Hook]) -> None:
        self.info, self.hooks = run, list(hooks)
        self.status, self.steps_done = "stopped", run.first_step

    def run(self, integrator: Integrator) -> None:
        """Start the hooks, integrate to ``settings.steps`` and end the hooks that started."""
        started: list[Hook] = []
        try:
            for hook in self.hooks:
                hook.on_start(self.info)
                started.append(hook)
            self._integrate(integrator)
        except CellTooSmall as exc:
            self.status, self.steps_done = "unstable", integrator.step
            raise UnstableStep(f"the box shrank below twice the model's cutoff ({exc})") from None
        except UnstableStep:
            self.status, self.steps_done = "unstable", integrator.step
            raise
        finally:
            for hook in started:
                hook.on_end(self.status)

    def _integrate(self, integrator: Integrator) -> None:
        """Call every hook at each state and saved frame until the target step."""
        s, step = self.info.settings, self.info.first_step
        for state, save in integrator.states(s.steps):
            step = state.step
            for hook in self.hooks:
                hook.on_step(state)
            if save:
                time_fs = step * s.timestep_fs
                state.atoms.info["time_fs"] = time_fs
                frame = Frame(step, time_fs, state.atoms, thermo_row(state.atoms, step, time_fs))
                for hook in self.hooks:
                    hook.on_save(frame)
                self.steps_done = step
        self.status, self.steps_done = "complete" if step >= s.steps else "stopped", step
