"""Scalar comparisons of a model trajectory's observables with the reference's.

* g(r) error: RMS of g_model(r) − g_ref(r) over the bins of one common r grid (dimensionless).
* Distribution error: Jensen–Shannon divergence in bits (0 for identical, 1 for disjoint
  distributions), of two densities given on one common grid; symmetric and finite even where
  one distribution is zero, so no smoothing is needed.
* Scalars (density, pressure, D): signed relative error (model − ref)/|ref|.
* Stability: the run finished ("complete") and every frame was finite.
"""

from __future__ import annotations

import numpy as np

from cgzoo.observables.trajectory import CGTrajectory


def rdf_error(g_ref: np.ndarray, g_model: np.ndarray) -> float:
    """RMS difference of two g(r) on the same r grid."""
    if g_ref.shape != g_model.shape:
        raise ValueError(f"g(r) grids differ: {g_ref.shape} vs {g_model.shape}")
    return float(np.sqrt(np.mean((g_model - g_ref) ** 2)))


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


def is_stable(traj: CGTrajectory) -> bool:
    """Whether a run finished (``run.json`` status "complete") with every saved frame finite."""
    return traj.status == "complete" and traj.finite_frames() == traj.n_frames


def _kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """Kullback–Leibler divergence Σ p log₂(p/q) over bins where p > 0 (q > 0 there by construction)."""
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / q[nz])))
