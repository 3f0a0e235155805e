"""Per-bead-type Langevin friction: each bead feels −m γ_type v plus the matching noise (γ in 1/ps).

In ASE it is ASE's own :class:`~ase.md.langevin.Langevin` with one friction per atom (its
propagator takes an array) and the centre of mass held by :class:`~ase.constraints.FixCom`, as the
scalar run does; in LAMMPS ``fix langevin … scale TYPE RATIO`` (:mod:`cgzoo.engines.lammps`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from ase import Atoms, units
from ase.md.md import MolecularDynamics
from pydantic import Field

from cgzoo.errors import InputError
from cgzoo.md.friction.base import Friction, FrictionSpec
from cgzoo.units import PS_TO_FS

Rate = Annotated[float, Field(ge=0)]


class LangevinSpec(FrictionSpec):
    """``gamma_per_ps``: bead type name → γ (1/ps, ≥ 0)."""

    kind: Literal["langevin"]
    gamma_per_ps: dict[str, Rate]


class LangevinFriction(Friction):
    """Langevin friction with one γ per bead type."""

    Spec = LangevinSpec
    spec: LangevinSpec

    def check(self, type_names: list[str], where: str | None) -> None:
        missing = sorted(set(type_names) - set(self.spec.gamma_per_ps))
        if missing:
            raise InputError(where, f"gamma_per_ps: no friction for bead type(s) {', '.join(missing)} of the model")

    def scaled(self, factor: float) -> LangevinFriction:
        gammas = {name: g * factor for name, g in self.spec.gamma_per_ps.items()}
        return LangevinFriction(self.spec.model_copy(update={"gamma_per_ps": gammas}))

    def per_type_langevin(self) -> dict[str, float]:
        return dict(self.spec.gamma_per_ps)

    def ase_dynamics(self, atoms: Atoms, timestep_fs: float, temperature_K: float, type_index: np.ndarray,
                     type_names: list[str], rng: np.random.Generator) -> MolecularDynamics:
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin

        per_type = np.array([self.spec.gamma_per_ps[name] for name in type_names])
        friction = per_type[type_index][:, None] / (PS_TO_FS * units.fs)  # (n, 1): broadcasts over x, y, z
        atoms.set_constraint(FixCom())
        return Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K, friction=friction, rng=rng, fixcm=False)
