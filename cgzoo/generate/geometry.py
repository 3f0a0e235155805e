"""Template coordinates (Å) for the built-in molecules at their force fields' equilibrium geometry."""

from __future__ import annotations

import math

import numpy as np


def bent_triatomic(r_ab: float, r_bc: float, angle_deg: float) -> np.ndarray:
    """Sites A, B, C with B at the origin, |AB| = r_ab, |BC| = r_bc (Å) and angle ABC in degrees."""
    theta = math.radians(angle_deg)
    return np.array(
        [
            [r_ab, 0.0, 0.0],
            [0.0, 0.0, 0.0],
            [r_bc * math.cos(theta), r_bc * math.sin(theta), 0.0],
        ]
    )


def zigzag_chain(n: int, bond: float, angle_deg: float) -> np.ndarray:
    """An all-trans planar chain of ``n`` sites with the given bond length (Å) and bond angle (degrees)."""
    half = math.radians(angle_deg) / 2.0
    dx = bond * math.sin(half)
    dy = bond * math.cos(half)
    return np.array([[i * dx, (i % 2) * dy, 0.0] for i in range(n)])


def chair_ring(n: int, bond: float, angle_deg: float) -> np.ndarray:
    """A chair-like ring of an even number ``n`` of sites, alternately above and below a circle.

    The circle radius R and the half-puckering h are solved so that neighbours are ``bond``
    apart and the 1-3 distance gives the bond angle ``angle_deg``: R√3 = 2·bond·sin(θ/2) holds
    for n = 6, generalised to 2R·sin(2π/n) for any even n.
    """
    if n % 2:
        raise ValueError("a chair ring needs an even number of sites")
    d13 = 2.0 * bond * math.sin(math.radians(angle_deg) / 2.0)
    radius = d13 / (2.0 * math.sin(2.0 * math.pi / n))
    chord = 2.0 * radius * math.sin(math.pi / n)
    h = math.sqrt(bond**2 - chord**2) / 2.0
    phis = 2.0 * math.pi * np.arange(n) / n
    z = np.where(np.arange(n) % 2 == 0, h, -h)
    return np.column_stack([radius * np.cos(phis), radius * np.sin(phis), z])
