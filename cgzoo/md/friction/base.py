"""The friction protocol, the registry of friction kinds and the ``friction.json`` file that names one.

A CG model loses the friction of the degrees of freedom its mapping removed, so it diffuses too fast;
a friction model puts it back in the thermostat. ``friction.json`` holds ``kind`` (a registry name),
that kind's parameters (every rate γ in 1/ps, lengths in Å), ``units`` (written for the reader,
checked) and ``fitted_to`` (a free-form record of what the values were fitted to). A kind is one file
defining a :class:`Friction` subclass with its pydantic ``Spec`` plus one line in :data:`FRICTIONS`,
so a memory-kernel (generalised Langevin) friction can follow the per-type Langevin and DPD ones.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.md.md import MolecularDynamics
from pydantic import Field

from cgzoo.errors import InputError
from cgzoo.plugins import Registry
from cgzoo.schema import Strict, read_text, validate

#: the file a fitted friction is written to, beside a model or prior (``--friction auto`` looks for it there)
FRICTION_FILE = "friction.json"
#: units of every friction file's parameters
UNITS = {"gamma": "1/ps", "cutoff": "angstrom"}
#: friction kind → the ``module:Class`` implementing it, imported on first use
FRICTIONS: dict[str, str] = {
    "langevin": "cgzoo.md.friction.langevin:LangevinFriction",
    "dpd": "cgzoo.md.friction.dpd:DPDFriction",
}


class FrictionSpec(Strict):
    """What every friction file holds besides its kind's parameters."""

    kind: str
    units: dict[str, str] = Field(default_factory=lambda: dict(UNITS))
    fitted_to: dict[str, Any] = Field(default_factory=dict)


class Friction(ABC):
    """A friction model: built from its validated spec, it checks a model's bead types and makes the integrators."""

    #: the spec model of this kind (a :class:`FrictionSpec` subclass with the kind's parameters)
    Spec: ClassVar[type[FrictionSpec]]

    def __init__(self, spec: FrictionSpec) -> None:
        self.spec = spec

    @abstractmethod
    def check(self, type_names: list[str], where: str | None) -> None:
        """Raise a one-line :class:`InputError` (naming ``where``) if a bead type or type pair of the model has no γ."""

    @abstractmethod
    def scaled(self, factor: float) -> Friction:
        """The same friction with every γ multiplied by ``factor`` (the fit's one free parameter per molecule type)."""

    @abstractmethod
    def ase_dynamics(self, atoms: Atoms, timestep_fs: float, temperature_K: float, type_index: np.ndarray,
                     type_names: list[str], rng: np.random.Generator) -> MolecularDynamics:
        """The ASE NVT integrator of this friction for ``atoms`` (bead ``type_index`` into ``type_names``)."""

    def per_type_langevin(self) -> dict[str, float] | None:
        """γ (1/ps) per bead type if the friction is a per-type Langevin one (what LAMMPS' ``fix langevin`` runs), else None."""
        return None

    def to_json(self) -> dict[str, Any]:
        """The friction file's content (what ``run.json`` records)."""
        return self.spec.model_dump(mode="json")


_REGISTRY = Registry("friction", Friction, FRICTIONS)


def load_friction(data: Any, where: str | Path | None) -> Friction:
    """A :class:`Friction` from friction-file content (``where`` names the file in errors)."""
    if not isinstance(data, dict):
        raise InputError(where, "a friction file must be a JSON object with a 'kind'")
    kind = data.get("kind")
    if kind not in FRICTIONS:
        raise InputError(where, f"kind: unknown friction kind {kind!r} (known: {', '.join(FRICTIONS)})")
    cls = _REGISTRY.resolve(kind)
    spec = validate(cls.Spec, data, where if where is not None else "friction")
    if dict(spec.units) != UNITS:
        raise InputError(where, f"units: friction files are in {UNITS}, got {dict(spec.units)}")
    return cls(spec)


def read_friction(path: str | Path) -> Friction:
    """The friction file ``path`` read and validated."""
    text = read_text(path, "friction file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return load_friction(data, path)


def friction_beside(model: str | Path) -> Path:
    """The ``friction.json`` beside a model (checkpoint or ``prior.json``) or in its directory (``--friction auto``)."""
    model = Path(model)
    folder = model if model.is_dir() else model.parent
    path = folder / FRICTION_FILE
    if not path.is_file():
        raise InputError(path, f"--friction auto needs a fitted friction file beside the model (cgzoo fit-friction "
                               f"--out {folder}), and there is none")
    return path


def friction_option(value: str, model: str | Path) -> dict[str, float | dict[str, Any]]:
    """The simulation settings of ``--friction VALUE``: a number is the global Langevin γ (1/ps), ``auto`` the
    ``friction.json`` beside ``model``, anything else a friction file."""
    try:
        return {"friction_per_ps": float(value)}
    except ValueError:
        path = friction_beside(model) if value == "auto" else Path(value)
        return {"friction": read_friction(path).to_json()}
