"""Intervals and verdicts on synthetic metrics whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cgzoo.intervals import Interval, bootstrap_interval, split_half, verdict


def _replicas(mean: float, spread: float, n_rep: int, n_blocks: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, spread, size=(n_rep, n_blocks))


def test_interval_covers_the_true_mean_at_about_the_stated_rate() -> None:
    hits = sum(
        (iv := bootstrap_interval(_replicas(1.0, 0.2, 3, 8, seed), seed=seed)).low <= 1.0 <= iv.high
        for seed in range(200)
    )
    assert 0.85 <= hits / 200 <= 0.99  # percentile bootstrap of 3 replicas under-covers a little, never wildly


def test_replica_spread_widens_the_interval() -> None:
    rng = np.random.default_rng(1)
    within = rng.normal(0.0, 0.05, size=(4, 10))
    offsets = np.array([[-0.5], [0.5], [-0.4], [0.4]])
    tight = bootstrap_interval(within + 1.0)
    wide = bootstrap_interval(within + 1.0 + offsets)
    assert (wide.high - wide.low) > 5 * (tight.high - tight.low)


def test_separated_metrics_are_better_or_worse_and_overlapping_ones_tie() -> None:
    low = bootstrap_interval(_replicas(1.0, 0.05, 3, 10, 0))
    high = bootstrap_interval(_replicas(2.0, 0.05, 3, 10, 1))
    close = bootstrap_interval(_replicas(1.01, 0.05, 3, 10, 2))
    assert verdict(low, high) == "better" and verdict(high, low) == "worse"
    assert verdict(low, high, lower_is_better=False) == "worse"
    assert verdict(low, close) == "tie" and verdict(close, low) == "tie"


def test_a_single_value_has_no_interval_and_never_wins() -> None:
    one = bootstrap_interval([[0.1]])
    assert one.estimate == pytest.approx(0.1) and not one.defined and math.isnan(one.low)
    other = bootstrap_interval(_replicas(5.0, 0.01, 3, 5, 0))
    assert verdict(one, other) == "tie"


def test_replicas_weigh_equally_and_non_finite_blocks_are_dropped() -> None:
    iv = bootstrap_interval([[1.0, 1.0, 1.0, 1.0, float("nan")], [3.0, 3.0]])
    assert iv.estimate == pytest.approx(2.0) and iv.n == 6
    assert bootstrap_interval([[float("nan")]]).n == 0


def test_bad_level_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval([[1.0, 2.0]], level=1.5)


def test_split_half_gives_equal_halves() -> None:
    a, b = split_half(np.arange(7))
    assert a.tolist() == [0, 1, 2] and b.tolist() == [4, 5, 6]
    with pytest.raises(ValueError):
        split_half(np.arange(1))


def test_interval_formats_and_serialises() -> None:
    iv = Interval(1.0, 0.5, 1.5, 0.95, 4)
    assert iv.format() == "1 [0.5, 1.5]" and iv.as_dict()["n"] == 4



def _frames(n: int = 120, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame squared-error sums whose scale varies a lot from frame to frame, as held-out MD frames do."""
    rng = np.random.default_rng(seed)
    counts = np.full(n, 300.0)
    return rng.gamma(2.0, 1.0, n) * counts, counts


def test_rmse_interval_is_over_frames_and_seeds() -> None:
    from cgzoo.intervals import rmse_interval

    squared, counts = _frames()
    one = rmse_interval(squared[None], counts)
    assert one.estimate == pytest.approx(np.sqrt(squared.sum() / counts.sum()))
    assert one.low < one.estimate < one.high  # one seed: the spread of the frames alone
    # seeds that disagree widen it; the estimate is the mean of the seeds' RMSEs
    seeds = np.stack([squared * 0.8, squared, squared * 1.2])
    spread = rmse_interval(seeds, counts)
    assert spread.estimate == pytest.approx(np.mean([np.sqrt(s.sum() / counts.sum()) for s in seeds]))
    assert spread.high - spread.low > one.high - one.low
    assert not rmse_interval(squared[:1][None], counts[:1]).defined  # one frame, one seed: nothing to resample
    with pytest.raises(ValueError, match="one squared error per frame"):
        rmse_interval(squared[None], counts[:-1])


def test_a_paired_difference_separates_what_unpaired_intervals_cannot() -> None:
    """0.1 % worse on every frame is a real difference: the frames' own spread overlaps both RMSE intervals, but the
    paired interval of the difference excludes zero; zero-mean per-frame noise stays a tie."""
    from cgzoo.intervals import difference_verdict, rmse_interval, verdict

    squared, counts = _frames()
    worse = np.stack([squared * 1.002] * 3)  # RMSE × 1.001
    prior = squared[None]
    assert verdict(rmse_interval(worse, counts), rmse_interval(prior, counts)) == "tie"
    paired = rmse_interval(worse, counts, prior)
    assert paired.estimate == pytest.approx(np.sqrt(1.002) - 1.0)
    assert difference_verdict(paired) == "worse" and paired.low > 0
    assert difference_verdict(rmse_interval(prior, counts, worse)) == "better"
    rng = np.random.default_rng(0)
    noisy = np.stack([squared * (1.0 + 0.01 * rng.standard_normal(squared.size)) for _ in range(3)])
    assert difference_verdict(rmse_interval(noisy, counts, prior)) == "tie"
    assert difference_verdict(rmse_interval(prior, counts, prior)) == "tie"  # a model against itself: exactly zero
