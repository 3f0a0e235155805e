"""Confidence intervals and verdicts that come from the data's own noise, not from a fixed margin.

A metric measured on MD is a mean over replicas (independent runs) and, within each, over time
blocks (consecutive stretches long enough to be nearly independent). :func:`bootstrap_interval`
resamples both levels — replicas with replacement, then blocks with replacement inside each drawn
replica — so the interval carries the spread between runs as well as the sampling noise within
one. A force error is measured on the same held-out frames for every model: :func:`rmse_interval` resamples
training seeds and blocks of those frames, the blocks shared by the two models it compares, so the
frame-to-frame variation common to both cancels in their difference (a paired bootstrap) and
:func:`difference_verdict` reads the difference's interval. :func:`verdict` calls one metric better than another only when their intervals separate; any
overlap is a tie. :func:`split_half` is the floor every comparison is read against: the same
metric between two halves of the reference itself. Numpy only, so every layer can use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: the level of every interval cgzoo reports unless told otherwise
LEVEL = 0.95
#: contiguous blocks the held-out frames are cut into for :func:`rmse_interval` (fewer when there are fewer frames)
FRAME_BLOCKS = 20
#: bootstrap resamples: enough for the 2.5 % / 97.5 % percentiles to move by < 1 % of the width
N_RESAMPLES = 4000

Verdict = Literal["better", "worse", "tie"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided percentile interval ``[low, high]`` at ``level``, from ``n`` values."""

    estimate: float
    low: float
    high: float
    level: float
    n: int

    @property
    def defined(self) -> bool:
        """Whether the interval has finite ends (it needs at least two values)."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def as_dict(self) -> dict[str, float | int]:
        """The interval as JSON-ready numbers."""
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level, "n": self.n}

    def format(self, digits: int = 3) -> str:
        """``estimate [low, high]``, or the estimate alone when the interval is undefined."""
        text = f"{self.estimate:.{digits}g}"
        return f"{text} [{self.low:.{digits}g}, {self.high:.{digits}g}]" if self.defined else text


def _as_groups(values: Sequence[Sequence[float]] | np.ndarray) -> list[np.ndarray]:
    """Replicas as 1-D float arrays of their finite block values; replicas with no finite value are dropped."""
    groups = [np.asarray(v, dtype=float).ravel() for v in values]
    groups = [g[np.isfinite(g)] for g in groups]
    return [g for g in groups if g.size]


def bootstrap_interval(
    values: Sequence[Sequence[float]] | np.ndarray,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Two-level (replicas, then blocks within each) percentile bootstrap interval of the grand mean.

    ``values[r][b]`` is the metric of block ``b`` of replica ``r``; replicas may have different numbers
    of blocks, and a single replica is resampled over its blocks only. The estimate is the mean of the
    replica means, so a long replica does not outweigh the others. With one value in all there is no
    spread to resample and the interval is ``[nan, nan]``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    groups = _as_groups(values)
    if not groups:
        return Interval(math.nan, math.nan, math.nan, level, 0)
    n = sum(g.size for g in groups)
    estimate = float(np.mean([g.mean() for g in groups]))
    if n < 2:
        return Interval(estimate, math.nan, math.nan, level, n)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(n_resamples, len(groups)))
    total = np.zeros(n_resamples)
    for slot in range(len(groups)):
        # each slot of a resample draws its replica and, independently of every other slot, that replica's blocks
        fresh = np.stack([g[rng.integers(0, g.size, size=(n_resamples, g.size))].mean(axis=1) for g in groups], axis=1)
        total += np.take_along_axis(fresh, picks[:, slot:slot + 1], axis=1)[:, 0]
    resampled = total / len(groups)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return Interval(estimate, float(low), float(high), level, n)


def verdict(a: Interval, b: Interval, lower_is_better: bool = True) -> Verdict:
    """``a`` against ``b``: better or worse only when the two intervals do not overlap, a tie otherwise.

    An undefined interval (one value, no spread) can never separate, so it always gives a tie: without a
    measured noise there is no evidence for a difference.
    """
    if not (a.defined and b.defined):
        return "tie"
    if a.high < b.low:
        return "better" if lower_is_better else "worse"
    if b.high < a.low:
        return "worse" if lower_is_better else "better"
    return "tie"


def rmse_interval(
    squared: Sequence[np.ndarray],
    counts: np.ndarray,
    against: Sequence[np.ndarray] | None = None,
    n_blocks: int = FRAME_BLOCKS,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Interval of a model's RMSE over frames or, with ``against``, of its relative difference to another model's.

    ``squared[s][f]`` is the summed squared error of training seed ``s`` on frame ``f`` and ``counts[f]`` the number
    of components in that frame; the frames are the same, in the same order, for every seed and for ``against``
    (whose seeds need not match). The estimate is the mean over seeds of each seed's RMSE over all frames — or
    that mean over ``against``'s, minus one. Each resample draws contiguous blocks of frames (consecutive frames
    of a trajectory are correlated) and seeds with replacement; the blocks are shared by both models, so what
    the two have in common does not widen the interval of their difference.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    models = [np.atleast_2d(np.asarray(m, dtype=float)) for m in ([squared] if against is None else [squared, against])]
    counts = np.asarray(counts, dtype=float)
    if any(m.shape[1] != counts.size for m in models):
        raise ValueError(f"every model needs one squared error per frame ({counts.size}), got "
                         f"{[m.shape[1] for m in models]}")
    if counts.size == 0:
        return Interval(math.nan, math.nan, math.nan, level, 0)

    def statistic(rmse: list[np.ndarray]) -> np.ndarray:
        return rmse[0] if against is None else rmse[0] / rmse[1] - 1.0

    estimate = float(statistic([np.sqrt(m.sum(axis=1) / counts.sum()).mean() for m in models]))
    blocks = np.array_split(np.arange(counts.size), min(n_blocks, counts.size))
    if len(blocks) < 2 and all(m.shape[0] < 2 for m in models):
        return Interval(estimate, math.nan, math.nan, level, counts.size)
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_resamples, len(blocks)))  # how often each resample draws each block
    np.add.at(weights, (np.arange(n_resamples)[:, None], rng.integers(0, len(blocks), (n_resamples, len(blocks)))), 1.0)
    n = weights @ np.array([counts[b].sum() for b in blocks])
    rmse = []
    for m in models:
        per_seed = np.sqrt((weights @ np.stack([m[:, b].sum(axis=1) for b in blocks], axis=1).T) / n[:, None])
        seeds = rng.integers(0, m.shape[0], (n_resamples, m.shape[0]))
        rmse.append(np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(statistic(rmse), [tail, 1.0 - tail])
    return Interval(estimate, float(low), float(high), level, counts.size)


def difference_verdict(difference: Interval) -> Verdict:
    """A model against another from the interval of their difference (lower is better): better when it lies below
    zero, worse when above, a tie when it contains zero or is undefined."""
    if not difference.defined:
        return "tie"
    if difference.high < 0.0:
        return "better"
    if difference.low > 0.0:
        return "worse"
    return "tie"


def split_half(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and second halves of a time series (the middle element of an odd one is dropped).

    A metric between the two halves of the reference is the noise floor of comparing anything with
    the reference over the same length of data: a model cannot be shown closer than that.
    """
    data = np.asarray(values)
    half = data.shape[0] // 2
    if half == 0:
        raise ValueError("a split-half floor needs at least two frames")
    return data[:half], data[data.shape[0] - half:]
