"""Friction of a CG run: the ``friction.json`` file, its registry of kinds (per-type Langevin, pairwise DPD) and their integrators."""

from cgzoo.md.friction.base import (
                                    FRICTION_FILE,
                                    FRICTIONS,
                                    Friction,
                                    friction_beside,
                                    friction_option,
                                    load_friction,
                                    read_friction,
)

__all__ = ["FRICTIONS", "FRICTION_FILE", "Friction", "friction_beside", "friction_option", "load_friction", "read_friction"]
