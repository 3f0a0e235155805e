"""Train/validation/test splits by contiguous time blocks, so correlated neighbouring frames never straddle splits."""

from __future__ import annotations

import math

import numpy as np

from cgzoo.errors import InputError

SPLIT_NAMES = ("train", "val", "test")
#: The split training uses by default (``cgzoo fit`` data module, prior specs); evaluation reuses it
#: to find the frames no model was trained on.
DEFAULT_SPLIT = {"fractions": (0.8, 0.1, 0.1), "n_blocks": 10, "gap": 2, "seed": 0}


class SplitError(InputError, ValueError):
    """Split settings that would overlap the splits or leave one of them empty (a ``ValueError`` for older callers)."""

    def __init__(self, problem: str) -> None:
        super().__init__(None, f"split: {problem}")


def block_split(
    n_frames: int,
    fractions: tuple[float, float, float] = DEFAULT_SPLIT["fractions"],
    n_blocks: int = DEFAULT_SPLIT["n_blocks"],
    gap: int = DEFAULT_SPLIT["gap"],
    seed: int = DEFAULT_SPLIT["seed"],
) -> dict[str, np.ndarray]:
    """Cut ``n_frames`` into ``n_blocks`` contiguous blocks and deal whole blocks to train/val/test.

    Each split gets a number of blocks proportional to its fraction (at least one); which blocks go
    where is drawn with ``seed``. ``gap`` frames are dropped at the start of every block that follows
    a block of another split, to decorrelate the two. Returns sorted frame indices per split; raises
    :class:`SplitError` for settings that would make splits overlap or leave one empty.
    """
    _check_settings(n_frames, fractions, n_blocks, gap, seed)
    counts = _blocks_per_split(np.asarray(fractions, dtype=float), n_blocks)
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(3), counts))
    edges = np.linspace(0, n_frames, n_blocks + 1).round().astype(int)
    out: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for b, label in enumerate(labels):
        start = edges[b]
        if b > 0 and labels[b - 1] != label:
            start = min(edges[b + 1], start + gap)
        out[SPLIT_NAMES[label]].append(np.arange(start, edges[b + 1]))
    splits = {k: (np.concatenate(v) if v else np.zeros(0, dtype=int)) for k, v in out.items()}
    empty = [name for name, frames in splits.items() if len(frames) == 0]
    if empty:
        raise SplitError(f"{' and '.join(empty)} would be empty: the dataset has {n_frames} frames, and {n_blocks} "
                         f"blocks with gap {gap} need at least {n_blocks * (gap + 1)} (use fewer blocks or a smaller gap)")
    return splits


def _check_settings(n_frames: int, fractions: tuple[float, float, float], n_blocks: int, gap: int, seed: int) -> None:
    """Reject split settings that cannot give three disjoint, non-empty splits."""
    values = list(fractions)
    if len(values) != 3 or not all(isinstance(f, (int, float, np.number)) and math.isfinite(f) for f in values):
        raise SplitError(f"fractions must be three numbers (train, val, test), got {values}")
    if min(values) <= 0 or abs(sum(values) - 1.0) > 1e-6:
        raise SplitError(f"fractions must be positive and sum to 1, got {values} (sum {sum(values):g})")
    for name, value, least in (("gap", gap, 0), ("blocks", n_blocks, 3), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise SplitError(f"{name} must be an integer >= {least}, got {value!r}")
    if n_frames < n_blocks:
        raise SplitError(f"the dataset has {n_frames} frames, fewer than the {n_blocks} blocks")


def _blocks_per_split(fractions: np.ndarray, n_blocks: int) -> np.ndarray:
    """Largest-remainder apportionment of ``n_blocks`` blocks to the three (positive) fractions, at least one each."""
    share = fractions / fractions.sum() * n_blocks
    counts = np.floor(share).astype(int)
    counts[(fractions > 0) & (counts == 0)] = 1
    while counts.sum() > n_blocks:
        counts[np.argmax(counts)] -= 1
    order = np.argsort(-(share - counts))
    i = 0
    while counts.sum() < n_blocks:
        counts[order[i % 3]] += 1
        i += 1
    return counts
