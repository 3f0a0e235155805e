"""Train/validation/test splits by contiguous time blocks, so correlated neighbouring frames never straddle splits."""

from __future__ import annotations

import numpy as np

SPLIT_NAMES = ("train", "val", "test")
#: The split training uses by default (``cgzoo fit`` data module, prior specs); evaluation reuses it
#: to find the frames no model was trained on.
DEFAULT_SPLIT = {"fractions": (0.8, 0.1, 0.1), "n_blocks": 10, "gap": 2, "seed": 0}


def block_split(
    n_frames: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    n_blocks: int = 10,
    gap: int = 0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Cut ``n_frames`` into ``n_blocks`` contiguous blocks and deal whole blocks to train/val/test.

    Each split gets a number of blocks proportional to its fraction (at least one where the
    fraction is positive); which blocks go where is drawn with ``seed``. ``gap`` frames are dropped
    at the start of every block that follows a block of another split, to decorrelate the two.
    Returns sorted frame indices per split.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise ValueError(f"fractions must be three non-negative numbers, got {fractions}")
    wanted = sum(1 for f in fractions if f > 0)
    if n_blocks < wanted:
        raise ValueError(f"n_blocks={n_blocks} is fewer than the {wanted} non-empty splits")
    if n_frames < n_blocks:
        raise ValueError(f"cannot cut {n_frames} frames into {n_blocks} blocks")
    counts = _blocks_per_split(np.asarray(fractions, dtype=float), n_blocks)
    labels = np.repeat(np.arange(3), counts)
    labels = np.random.default_rng(seed).permutation(labels)
    edges = np.linspace(0, n_frames, n_blocks + 1).round().astype(int)
    out: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for b, label in enumerate(labels):
        start = edges[b]
        if b > 0 and labels[b - 1] != label:
            start = min(edges[b + 1], start + gap)
        out[SPLIT_NAMES[label]].append(np.arange(start, edges[b + 1]))
    return {k: (np.concatenate(v) if v else np.zeros(0, dtype=int)) for k, v in out.items()}


def _blocks_per_split(fractions: np.ndarray, n_blocks: int) -> np.ndarray:
    """Largest-remainder apportionment of blocks, giving every positive fraction at least one."""
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
