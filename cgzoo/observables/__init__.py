"""Observables of CG trajectories (structure, bonded, thermodynamic, dynamic), one function each for reference and model."""

from cgzoo.observables.trajectory import CGTrajectory

__all__ = ["CGTrajectory"]
