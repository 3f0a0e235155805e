"""Statistics of restrained runs: mean force per configuration, the noise floor and model scores, with error bars.

Per configuration and bead component, a run of S correlated samples gives the mean mapped force
``m̂``, the sample variance ``v̂`` (about ``m̂``) and the squared standard error of ``m̂`` from block
averages, ``ŝ²``. Because ``m̂`` is itself noisy, ``v̂`` underestimates the fluctuation variance by
``ŝ²`` on average; the fluctuation variance used is ``σ² = v̂ + ŝ²``. The noise floor of a bead type
is ``⟨σ²⟩ / Var(F)``, where ``Var(F)`` is the variance of every raw mapped-force component of that
type (pooled, as :mod:`cgzoo.metrics` defines R²): the fraction of mapped-force variance no function
of the bead positions can explain, so ``1 − floor`` is the R² ceiling against raw mapped forces.
Error bars are bootstrap standard deviations over the M configurations (beads of one configuration
are correlated, so configurations are the unit resampled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Blocks for the standard error of a run's mean (fewer when the run has fewer samples).
N_BLOCKS = 10
#: Bootstrap resamples of the M configurations.
N_BOOTSTRAP = 1000


@dataclass
class ConfigStats:
    """Mean mapped force, sample variance about it and squared SEM of the mean, each (B, 3), from S samples."""

    mean: np.ndarray
    variance: np.ndarray
    sem2: np.ndarray
    n_samples: int


def block_sem2(samples: np.ndarray, n_blocks: int = N_BLOCKS) -> np.ndarray:
    """Squared standard error of the mean over axis 0 from ``n_blocks`` contiguous block means (leftover samples dropped)."""
    blocks = min(n_blocks, len(samples))
    if blocks < 2:
        return np.full(samples.shape[1:], np.nan)
    size = len(samples) // blocks
    means = samples[: blocks * size].reshape(blocks, size, *samples.shape[1:]).mean(axis=1)
    return means.var(axis=0, ddof=1) / blocks


def config_stats(samples: np.ndarray) -> ConfigStats:
    """:class:`ConfigStats` of one run's mapped-force samples (S, B, 3)."""
    return ConfigStats(mean=samples.mean(axis=0), variance=samples.var(axis=0), sem2=block_sem2(samples),
                       n_samples=len(samples))


@dataclass
class TypeFloor:
    """One bead type's noise floor: fraction ± bootstrap SD, the MSE it stands for and the variance it is a fraction of."""

    fraction: float
    fraction_error: float
    floor_mse: float
    total_variance: float
    sem_correction: float  # ⟨ŝ²⟩ / ⟨σ²⟩: how much of the floor is the finite-run correction


def per_config_means(values: np.ndarray, beads: np.ndarray) -> np.ndarray:
    """Mean over the beads ``beads`` and the 3 components of (M, B, 3) ``values``: one number per configuration."""
    return values[:, beads].reshape(len(values), -1).mean(axis=1)


def bootstrap_sd(statistic: Callable[..., float], per_config: list[np.ndarray], seed: int = 0, n: int = N_BOOTSTRAP) -> float:
    """Bootstrap standard deviation of ``statistic(*arrays)`` over configurations resampled with replacement (NaN for one)."""
    m = len(per_config[0])
    if m < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    values = [statistic(*(a[idx] for a in per_config)) for idx in rng.integers(0, m, size=(n, m))]
    return float(np.std(values, ddof=1))


def type_floor(variance: np.ndarray, sem2: np.ndarray, beads: np.ndarray, total_variance: float) -> TypeFloor:
    """The noise floor of the beads ``beads`` of one type from per-config (M, B, 3) variances and squared SEMs."""
    fluct = per_config_means(variance + sem2, beads)
    corr = per_config_means(sem2, beads)
    return TypeFloor(
        fraction=float(fluct.mean() / total_variance),
        fraction_error=bootstrap_sd(lambda f: f.mean() / total_variance, [fluct]),
        floor_mse=float(fluct.mean()),
        total_variance=float(total_variance),
        sem_correction=float(corr.mean() / fluct.mean()),
    )


@dataclass
class ModelScore:
    """A model's forces at the M configurations against the mean force and the raw mapped force, for one bead type.

    ``r2_mean``: R² against the mean force, bias-corrected for its finite-run noise (``⟨ŝ²⟩`` is
    taken from both the MSE and the mean force's variance); ``mse_raw``: MSE against the raw mapped
    forces of the source frames the configurations are; ``excess_mse = mse_raw − floor_mse``, the
    part of the model's error that a better model could remove; ``r2_raw`` the usual R² against raw
    forces and ``r2_ceiling = 1 − floor`` the best any model can reach.
    """

    r2_mean: float
    r2_mean_error: float
    mse_mean: float
    mse_raw: float
    r2_raw: float
    r2_ceiling: float
    excess_mse: float
    excess_mse_error: float
    excess_fraction: float


def model_score(predicted: np.ndarray, mean: np.ndarray, sem2: np.ndarray, variance: np.ndarray,
                raw: np.ndarray, beads: np.ndarray, total_variance: float) -> ModelScore:
    """Score predicted forces (M, B, 3) on the beads ``beads`` of one type (all arrays (M, B, 3))."""
    sq_mean = per_config_means((predicted - mean) ** 2, beads)
    sq_raw = per_config_means((predicted - raw) ** 2, beads)
    s2 = per_config_means(sem2, beads)
    fluct = per_config_means(variance + sem2, beads)
    m1 = per_config_means(mean, beads)
    m2 = per_config_means(mean**2, beads)

    def r2_mean(sq: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - (sq.mean() - s.mean()) / (b.mean() - a.mean() ** 2 - s.mean())

    def excess(sq: np.ndarray, f: np.ndarray) -> float:
        return float(sq.mean() - f.mean())

    floor_mse = float(fluct.mean())
    return ModelScore(
        r2_mean=float(r2_mean(sq_mean, s2, m1, m2)),
        r2_mean_error=bootstrap_sd(r2_mean, [sq_mean, s2, m1, m2]),
        mse_mean=float(sq_mean.mean() - s2.mean()),
        mse_raw=float(sq_raw.mean()),
        r2_raw=float(1.0 - sq_raw.mean() / total_variance),
        r2_ceiling=float(1.0 - floor_mse / total_variance),
        excess_mse=excess(sq_raw, fluct),
        excess_mse_error=bootstrap_sd(excess, [sq_raw, fluct]),
        excess_fraction=excess(sq_raw, fluct) / total_variance,
    )
