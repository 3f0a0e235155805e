"""Whether a run's molecules stayed molecules: every CG bond inside the range the reference samples, widened by a margin.

A run can finish without NaN while its molecules fall apart or fold through themselves (an ML-only
model that never learnt a bond); such a run is not stable. The allowed range of each bond type is
the reference's observed [min, max] widened on both sides by :data:`BOND_MARGIN` times the
reference's mean length of that type — wide enough for a model's honestly broader distribution,
far narrower than a broken (stretched past the cutoff) or collapsed bond.
"""

from __future__ import annotations

import numpy as np

from cgzoo.geometry import lengths, minimum_image
from cgzoo.observables.bonded import bonded_values, term_keys
from cgzoo.observables.trajectory import CGTrajectory

#: allowed bond lengths: the reference's [min, max] ± this fraction of its mean length, per bond type
BOND_MARGIN = 0.25


def bond_ranges(reference: CGTrajectory) -> dict[str, tuple[float, float]]:
    """Allowed (low, high) length in Å of every bond type key the reference has."""
    out = {}
    for key, values in bonded_values(reference, "bond").items():
        pad = BOND_MARGIN * float(values.mean())
        out[key] = (max(0.0, float(values.min()) - pad), float(values.max()) + pad)
    return out


def broken_frames(traj: CGTrajectory, ranges: dict[str, tuple[float, float]]) -> np.ndarray:
    """Per frame, whether some bond of a type in ``ranges`` lies outside its allowed range (False without bonds)."""
    broken = np.zeros(traj.n_frames, dtype=bool)
    if len(traj.bonds) == 0 or traj.n_frames == 0:
        return broken
    bonds = lengths(minimum_image(traj.positions[:, traj.bonds[:, 1]] - traj.positions[:, traj.bonds[:, 0]], traj.boxes))
    keys = term_keys(traj, "bond")
    for key, (low, high) in ranges.items():
        of_type = bonds[:, keys == key]
        broken |= ((of_type < low) | (of_type > high) | ~np.isfinite(of_type)).any(axis=1)
    return broken
