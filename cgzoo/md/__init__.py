"""CG molecular dynamics: the ASE calculator for cgzoo models and a guarded, restartable MD driver with user hooks."""

from cgzoo.md.calculator import CGCalculator
from cgzoo.md.hooks import Frame, Hook, RunInfo, StepState, UnstableStep
from cgzoo.md.settings import SimulationSettings
from cgzoo.md.simulate import UnstableSimulation, simulate

__all__ = ["CGCalculator", "Frame", "Hook", "RunInfo", "SimulationSettings", "StepState", "UnstableSimulation", "UnstableStep",
           "simulate"]
