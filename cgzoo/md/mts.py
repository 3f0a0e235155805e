"""Multiple time stepping (r-RESPA impulse splitting) for Δ-models in ASE: the prior every step, the network every k-th.

E = E_prior + E_net. One outer step of k·dt is: half kick with the network force (k·dt/2), k inner
BAOAB steps of dt with the prior force (the O step is Langevin friction and noise; left out for
NVE), half kick with the new network force. With k = 1 it is plain BAOAB Langevin (or velocity
Verlet). The network, the expensive part, is evaluated once per k inner steps; the prior, cheap
and stiff (cores, bonds), keeps the inner step small. This is the scheme of OpenMM's
``MTSLangevinIntegrator``, which :mod:`cgzoo.engines.openmm` uses for the same models.
"""

from __future__ import annotations

import numpy as np
from ase import units
from ase.md.md import MolecularDynamics

from cgzoo.md.calculator import CGCalculator
from cgzoo.models import CGModel


def split_calculators(calc: CGCalculator) -> tuple[CGCalculator, CGCalculator]:
    """Calculators of the prior alone (fast) and the network alone (slow, with the model's scale and shifts)."""
    model = calc.model
    if model.net is None or model.mode != "delta":
        raise ValueError("multiple time stepping needs a Δ-model (mode delta: prior + network)")
    fast = CGModel(model.prior, None, mode="prior_only")
    slow = CGModel(None, model.net, mode="ml_only", energy_scale=float(model.energy_scale),
                   type_shift=model.type_shift.tolist())
    bonds, angles, dihedrals = (b.T.numpy() for b in calc.bonded)
    return tuple(CGCalculator(m, bonds, angles, dihedrals, skin=calc.skin, device=str(calc.device), dtype=calc.dtype)
                 for m in (fast, slow))


class MultipleTimeStep(MolecularDynamics):
    """r-RESPA: ``k`` inner steps of ``timestep`` with ``fast`` forces inside each outer step with ``slow`` forces.

    ``temperature_K`` and ``friction`` (1/ASE time) turn the inner steps into BAOAB Langevin;
    ``friction=0`` gives NVE. One call of :meth:`step` is one outer step; ``nsteps`` counts inner
    steps, so observers and ``run(n)`` speak in the inner time step as every other driver does.
    """

    def __init__(self, atoms, timestep: float, fast: CGCalculator, slow: CGCalculator, k: int,
                 temperature_K: float = 0.0, friction: float = 0.0, rng: np.random.Generator | None = None, **kwargs):
        super().__init__(atoms, timestep, **kwargs)
        self.fast, self.slow, self.k = fast, slow, int(k)
        self.temperature_K, self.friction = float(temperature_K), float(friction)
        self.rng = rng or np.random.default_rng()
        self.fast_forces = self.slow_forces = None

    def _forces(self, calc: CGCalculator) -> np.ndarray:
        calc.calculate(self.atoms, ["energy", "forces"], ["positions"])
        return calc.results["forces"]

    def irun(self, steps: int = 50):
        """Advance ``steps`` inner steps (a whole number of outer steps), calling observers after each outer one."""
        if steps % self.k:
            raise ValueError(f"steps ({steps}) must be a multiple of the MTS factor k = {self.k}")
        self.max_steps = self.nsteps + steps
        if self.nsteps == 0:
            self.call_observers()
        yield False
        while self.nsteps < self.max_steps:
            self.step()
            self.nsteps += self.k
            self.call_observers()
            yield False

    def run(self, steps: int = 50) -> bool:
        """Run ``steps`` inner steps (see :meth:`irun`)."""
        for _ in self.irun(steps):
            pass
        return False

    def step(self, forces=None) -> None:
        """One outer step (see module docstring)."""
        atoms, dt, k = self.atoms, self.dt, self.k
        masses = atoms.get_masses()[:, None]
        p = atoms.get_momenta() + 0.5 * k * dt * self.forces_now()[1]
        c1 = np.exp(-self.friction * dt)
        kT = units.kB * self.temperature_K
        for _ in range(k):
            p = p + 0.5 * dt * self.fast_forces
            atoms.set_positions(atoms.get_positions() + 0.5 * dt * p / masses)
            if self.friction > 0:
                p = c1 * p + np.sqrt((1.0 - c1 * c1) * kT * masses) * self.rng.standard_normal(p.shape)
                p -= masses * (p.sum(0) / masses.sum())  # no drift of the centre of mass, as ASE's Langevin(fixcm)
            atoms.set_positions(atoms.get_positions() + 0.5 * dt * p / masses)
            self.fast_forces = self._forces(self.fast)
            p = p + 0.5 * dt * self.fast_forces
        self.slow_forces = self._forces(self.slow)
        atoms.set_momenta(p + 0.5 * k * dt * self.slow_forces)

    def forces_now(self) -> tuple[np.ndarray, np.ndarray]:
        """The latest fast and slow forces (eV/Å), computed at the current positions on first use."""
        if self.slow_forces is None:
            self.fast_forces, self.slow_forces = self._forces(self.fast), self._forces(self.slow)
        return self.fast_forces, self.slow_forces

    @property
    def forces(self) -> np.ndarray:
        """The latest total force (eV/Å): inner prior force plus the network force of the last outer step."""
        fast, slow = self.forces_now()
        return fast + slow
