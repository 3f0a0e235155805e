"""Distributions of CG bond lengths (Å), bond angles and dihedrals (radians) per bonded type key, under minimum image.

Keys join bead type names with ``-`` in canonical order, the lexically smaller of the tuple and its
reverse (``"E-M"``, ``"E-M-E"``), as the priors do. Angles lie in [0, π]; dihedrals in (−π, π]
with the IUPAC sign (0 = cis): :mod:`cgzoo.geometry`, the same code the priors use.
"""

from __future__ import annotations

import numpy as np

from cgzoo.geometry import FROM_BOND_VECTORS, minimum_image
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.terms import KINDS, canonical_key


def term_keys(traj: CGTrajectory, kind: str) -> np.ndarray:
    """Canonical type key of every bonded term of ``kind`` (bonds, angles or dihedrals) in the topology."""
    return np.array([canonical_key(traj.type_names, tuple(traj.bead_types[term])) for term in _terms(traj, kind)],
                    dtype=object)


def bonded_values(traj: CGTrajectory, kind: str) -> dict[str, np.ndarray]:
    """Every sampled value (all frames, all terms) of the bonded coordinate ``kind`` per type key."""
    index = _terms(traj, kind)
    if len(index) == 0 or traj.n_frames == 0:
        return {}
    pos = traj.positions
    vectors = [minimum_image(pos[:, index[:, k + 1]] - pos[:, index[:, k]], traj.boxes) for k in range(KINDS[kind] - 1)]
    values = FROM_BOND_VECTORS[KINDS[kind]](*vectors)
    keys = term_keys(traj, kind)
    return {key: values[:, keys == key].ravel() for key in dict.fromkeys(keys)}


def default_edges(kind: str, values: np.ndarray, bins: int = 100) -> np.ndarray:
    """Histogram bin edges: the sampled bond range ± 25 % (Å); 2·``bins`` over [0, π] (angles) or [−π, π] (dihedrals)."""
    if kind == "angle":
        return np.linspace(0.0, np.pi, 2 * bins + 1)
    if kind == "dihedral":
        return np.linspace(-np.pi, np.pi, 2 * bins + 1)
    lo, hi = float(values.min()), float(values.max())
    pad = 0.25 * max(hi - lo, 0.1)
    return np.linspace(max(0.0, lo - pad), hi + pad, bins + 1)


def histogram(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and probability density (1/unit of ``values``); values outside the edges count in the end bins."""
    clipped = np.clip(values, edges[0], edges[-1])
    counts = np.histogram(clipped, bins=edges)[0].astype(np.float64)
    total = counts.sum()
    density = counts / (total * np.diff(edges)) if total else counts
    return 0.5 * (edges[1:] + edges[:-1]), density


def bonded_distributions(traj: CGTrajectory, kind: str, edges: dict[str, np.ndarray] | None = None,
                         bins: int = 100) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Probability density of ``kind`` per type key, on the given edges per key (default: :func:`default_edges`)."""
    out = {}
    for key, values in bonded_values(traj, kind).items():
        grid = edges[key] if edges is not None and key in edges else default_edges(kind, values, bins)
        out[key] = histogram(values, grid)
    return out


def _terms(traj: CGTrajectory, kind: str) -> np.ndarray:
    """Bead index tuples (M, beads) of the bonded terms of ``kind``."""
    return {"bond": traj.bonds, "angle": traj.angles, "dihedral": traj.dihedrals}[kind]
