"""Observables of CG trajectories (structure, bonded, thermodynamic, dynamic), one registered class per family.

:mod:`cgzoo.observables.base` defines the protocol, :mod:`cgzoo.observables.registry` lists the
families (:mod:`cgzoo.observables.families`), and ``cgzoo evaluate`` measures each alike on the
reference and every run.
"""

from cgzoo.observables.trajectory import CGTrajectory

__all__ = ["CGTrajectory"]
