"""The settings of a simulation run (what ``run.json`` records), their validation, and which of them a restart may change."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cgzoo.errors import InputError
from cgzoo.units import ATM_TO_BAR

if TYPE_CHECKING:
    from cgzoo.md.friction import Friction

#: run length of a new run that names none
DEFAULT_STEPS = 10_000
#: settings a restart may change: the run's length and the guard's thresholds (they change no physics)
RESTART_MAY_CHANGE = frozenset({"steps", "max_force", "max_temperature_factor"})
#: settings simulate fills in itself from the model and the start structure, never compared on a restart
RECORDED = frozenset({"model", "model_sha256", "start", "bonds", "angles", "dihedrals", "type_names", "bead_types",
                      "molecule_ids", "force_rmse_test", "force_rmse_frames"})
#: the command-line flag of each setting, for error messages
FLAGS = {"temperature_K": "--temperature", "pressure_bar": "--pressure", "timestep_fs": "--timestep-fs",
         "steps": "--steps", "save_every": "--save-every", "friction_per_ps": "--friction", "friction": "--friction",
         "max_force": "--max-force",
         "ensemble": "--ensemble", "barostat": "--barostat", "engine": "--engine", "mts": "--mts", "seed": "--seed"}

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


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
    #: a friction file's content (:mod:`cgzoo.md.friction`), which replaces ``friction_per_ps`` in NVT; None: the scalar
    friction: dict[str, Any] | None = None
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

    @model_validator(mode="after")
    def _friction_file_is_valid(self) -> SimulationSettings:
        if self.friction is not None:
            from cgzoo.md.friction import load_friction

            try:
                load_friction(self.friction, None)
            except InputError as exc:
                raise ValueError(f"friction file: {exc}") from None
            if self.ensemble != "nvt" or self.mts != 1:
                raise ValueError("a friction file drives NVT runs without --mts (use --friction <number> otherwise)")
        return self

    def friction_model(self) -> Friction | None:
        """The run's :class:`~cgzoo.md.friction.Friction` from its friction file, or None for the scalar friction."""
        from cgzoo.md.friction import load_friction

        return None if self.friction is None else load_friction(self.friction, None)

    def per_type_friction(self) -> dict[str, float] | None:
        """γ (1/ps) per bead type when the friction file is a per-type Langevin one (what LAMMPS runs), else None."""
        model = self.friction_model()
        return None if model is None else model.per_type_langevin()

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


def continued_settings(recorded: SimulationSettings, requested: SimulationSettings, info: Path) -> SimulationSettings:
    """The settings of a restart: the run's own, with the length and guard thresholds asked for; other physics is refused.

    Only settings given explicitly are compared (see :data:`RESTART_MAY_CHANGE`); ``info`` names the run's ``run.json``.
    """
    differ = [f"{FLAGS.get(name, name)} {getattr(recorded, name)!r} → {getattr(requested, name)!r}"
              for name in sorted(requested.model_fields_set - RESTART_MAY_CHANGE - RECORDED)
              if getattr(requested, name) != getattr(recorded, name) and not (name == "engine" and requested.engine == "auto")]
    if differ:
        raise InputError(info, "--restart continues a run with its own settings, and these differ: " + ", ".join(differ)
                         + "; start a new run (another --out, or --overwrite) to change them")
    s = recorded.model_copy(deep=True)
    for name in (RESTART_MAY_CHANGE - {"steps"}) & requested.model_fields_set:
        setattr(s, name, getattr(requested, name))
    s.steps = requested.target_steps(recorded.steps)
    return s
