"""The error measures observables compare a run with the reference by, so every observable scores alike.

* Curve error: RMS of f_model − f_ref over the points of one common grid (g(r): dimensionless).
* Distribution error: Jensen–Shannon divergence in bits (0 for identical, 1 for disjoint
  distributions), of two densities given on one common grid; symmetric and finite even where
  one distribution is zero, so no smoothing is needed.
* Scalars: signed relative error (model − ref)/|ref|.
* Stability: the run finished ("complete"), every frame was finite and no molecule broke (every CG bond inside
  the reference's range, :mod:`cgzoo.observables.integrity`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cgzoo.observables.integrity import broken_frames
from cgzoo.observables.trajectory import CGTrajectory


def rms_difference(ref: np.ndarray, model: np.ndarray) -> float:
    """RMS difference of two curves (such as g(r)) on the same grid."""
    if ref.shape != model.shape:
        raise ValueError(f"grids differ: {ref.shape} vs {model.shape}")
    return float(np.sqrt(np.mean((model - ref) ** 2)))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (bits, in [0, 1]) of two non-negative histograms or densities on one grid."""
    if p.shape != q.shape:
        raise ValueError(f"distribution grids differ: {p.shape} vs {q.shape}")
    p = p / p.sum() if p.sum() > 0 else p
    q = q / q.sum() if q.sum() > 0 else q
    if not (p.sum() > 0 and q.sum() > 0):
        return float("nan")
    m = 0.5 * (p + q)
    return float(0.5 * _kl_bits(p, m) + 0.5 * _kl_bits(q, m))


def relative_error(value: float | None, reference: float | None) -> float | None:
    """(value − reference)/|reference|, or None if either is missing, not finite or the reference is 0."""
    if value is None or reference is None or not np.isfinite(value) or not np.isfinite(reference) or reference == 0:
        return None
    return float((value - reference) / abs(reference))


def mean_finite(values: Iterable[float | None]) -> float | None:
    """Mean of the finite values (an error averaged over type keys), None if there are none."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def is_stable(traj: CGTrajectory, bond_ranges: dict[str, tuple[float, float]] | None = None) -> bool:
    """Whether a run finished (``run.json`` status "complete") with every saved frame finite and, given the reference's
    ``bond_ranges``, every bond of every frame inside them."""
    if traj.status != "complete" or traj.finite_frames() != traj.n_frames:
        return False
    return bond_ranges is None or not broken_frames(traj, bond_ranges).any()


def _kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """Kullback–Leibler divergence Σ p log₂(p/q) over bins where p > 0 (q > 0 there by construction)."""
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / q[nz])))
