"""Mean and block-averaged standard error of the NPT density series, and ``density.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cgzoo.outputs import write_json_atomic

#: Fraction of the equilibration series discarded as relaxation before averaging.
DISCARD_FRACTION = 0.25
#: Blocking levels with fewer blocks than this are too noisy to trust.
MIN_BLOCKS = 8


@dataclass
class BlockAverage:
    """Mean, its standard error (the largest over blocking levels with ≥ MIN_BLOCKS blocks) and that level's block length."""

    mean: float
    sem: float
    block_length: int
    n_blocks: int


def block_average(series: np.ndarray) -> BlockAverage:
    """Flyvbjerg–Petersen blocking: halve the series repeatedly into block means; report the largest error estimate.

    Taking the maximum over levels is conservative: the estimate grows with block length until
    blocks are longer than the correlation time and then plateaus (with noise).
    """
    x = np.asarray(series, dtype=float)
    if len(x) < 2:
        return BlockAverage(float(x.mean()) if len(x) else float("nan"), float("nan"), 1, len(x))
    best = BlockAverage(float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))), 1, len(x))
    length = 2
    while len(x) // length >= MIN_BLOCKS:
        n_blocks = len(x) // length
        means = x[: n_blocks * length].reshape(n_blocks, length).mean(axis=1)
        sem = float(means.std(ddof=1) / np.sqrt(n_blocks))
        if sem > best.sem:
            best = BlockAverage(best.mean, sem, length, n_blocks)
        length *= 2
    return best


def analysed_part(times_ps: np.ndarray) -> np.ndarray:
    """Boolean mask of the samples kept for averaging (the last 1 - DISCARD_FRACTION of the series)."""
    n = len(times_ps)
    keep = np.zeros(n, dtype=bool)
    keep[int(np.floor(DISCARD_FRACTION * n)) :] = True
    return keep


def write_density_json(
    path: Path,
    times_ps: np.ndarray,
    densities: np.ndarray,
    volumes_a3: np.ndarray,
    temperature: float,
    pressure_bar: float,
) -> tuple[BlockAverage, float]:
    """Write the NPT density series (g/cm³), its analysed window and mean ± SE to ``path``.

    Returns the density average and the mean volume (Å³) over the analysed window.
    """
    keep = analysed_part(times_ps)
    avg = block_average(densities[keep])
    mean_volume = float(volumes_a3[keep].mean())
    write_json_atomic(
        path,
        {
            "temperature_K": temperature,
            "pressure_bar": pressure_bar,
            "density_g_cm3": {
                **asdict(avg),
                "method": "mean over the analysed window; SE by block averaging",
            },
            "mean_volume_A3": mean_volume,
            "analysed_from_ps": float(times_ps[keep][0]),
            "discard_fraction": DISCARD_FRACTION,
            "time_ps": [float(t) for t in times_ps],
            "density_series_g_cm3": [float(d) for d in densities],
            "volume_series_A3": [float(v) for v in volumes_a3],
        },
    )
    return avg, mean_volume
