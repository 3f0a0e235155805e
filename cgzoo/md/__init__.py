"""CG molecular dynamics: the ASE calculator for cgzoo models and a guarded, restartable MD driver."""

from cgzoo.md.calculator import CGCalculator
from cgzoo.md.simulate import SimulationSettings, UnstableSimulation, simulate

__all__ = ["CGCalculator", "SimulationSettings", "UnstableSimulation", "simulate"]
