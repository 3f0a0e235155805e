"""Force errors against reference forces — RMSE, MAE and R² overall and per bead type — for training, prior fits and MD alike.

Every statistic is over Cartesian force components (kcal/mol/Å). :class:`ForceErrors` keeps running
per-type sums, so frames can be added one batch at a time and the sums of several processes added
before the ratios are taken; numpy only, so torch-free layers can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ForceStats:
    """RMSE, MAE and R² of force components against the reference, and the reference's RMS."""

    rmse: float
    mae: float
    #: 1 − MSE / variance of the reference components (NaN when the reference does not vary)
    r2: float
    reference_rms: float
    components: int


class ForceErrors:
    """Running per-bead-type sums of force errors, one column per type in :attr:`sums`."""

    #: the rows of :attr:`sums`
    ROWS = ("squared_error", "absolute_error", "components", "reference", "reference_squared")

    def __init__(self, n_types: int = 1) -> None:
        self.sums = np.zeros((len(self.ROWS), n_types))

    @classmethod
    def from_sums(cls, sums: np.ndarray) -> ForceErrors:
        """Errors from sums already accumulated (:attr:`ROWS` × types, or :attr:`ROWS` alone for one type)."""
        sums = np.asarray(sums, dtype=np.float64)
        errors = cls(1 if sums.ndim == 1 else sums.shape[1])
        errors.sums[...] = sums.reshape(errors.sums.shape)
        return errors

    def reset(self) -> None:
        """Forget every frame seen."""
        self.sums[...] = 0.0

    def update(self, predicted: np.ndarray, reference: np.ndarray, types: np.ndarray | None = None) -> None:
        """Add the forces (N,3) of N beads with bead type indices ``types`` (N,) (default: all type 0)."""
        predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 3)
        reference = np.asarray(reference, dtype=np.float64).reshape(-1, 3)
        types = np.zeros(len(reference), dtype=np.int64) if types is None else np.asarray(types).reshape(-1)
        err = predicted - reference
        per_bead = ((err**2).sum(1), np.abs(err).sum(1), np.full(len(reference), 3.0), reference.sum(1),
                    (reference**2).sum(1))
        for row, values in enumerate(per_bead):
            self.sums[row] += np.bincount(types, weights=values, minlength=self.sums.shape[1])

    def total(self) -> ForceStats | None:
        """Statistics over every component seen (None before any)."""
        return _stats(self.sums.sum(axis=1))

    def per_type(self) -> list[ForceStats | None]:
        """Statistics per bead type (None for a type not seen)."""
        return [_stats(column) for column in self.sums.T]

    def as_dict(self, type_names: list[str]) -> dict[str, float]:
        """``force_rmse``, ``force_mae``, ``force_r2`` overall and ``…_<type>`` per type seen (empty before any frame)."""
        out: dict[str, float] = {}
        for suffix, stats in [("", self.total()), *((f"_{n}", s) for n, s in zip(type_names, self.per_type()))]:
            if stats is not None:
                out.update({f"force_rmse{suffix}": stats.rmse, f"force_mae{suffix}": stats.mae,
                            f"force_r2{suffix}": stats.r2})
        return out


def _stats(sums: np.ndarray) -> ForceStats | None:
    """:class:`ForceStats` from one column of :attr:`ForceErrors.sums` (None when it counts no component)."""
    sq, ab, n, ref, ref2 = (float(v) for v in sums)
    if n == 0:
        return None
    variance = ref2 / n - (ref / n) ** 2
    return ForceStats(rmse=math.sqrt(sq / n), mae=ab / n, r2=1.0 - (sq / n) / variance if variance > 0 else math.nan,
                      reference_rms=math.sqrt(ref2 / n), components=int(n))
