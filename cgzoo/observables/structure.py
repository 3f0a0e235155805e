"""Pair and triplet structure of a CG trajectory: g(r) per bead-type pair, and the angles j–i–k between neighbours.

g(r) normalisation: for a type pair A-B the histogram of pair distances (every unordered pair
once) is divided, frame by frame, by ``n_pairs / V · 4π/3 (r₊³ − r₋³)`` and averaged over frames.
``n_pairs`` counts the distinct pairs that can contribute: N_A·N_B for A ≠ B, N_A(N_A−1)/2 for
A = B, less the pairs inside one molecule when ``intermolecular`` is set. Uncorrelated points (an
ideal gas, or randomly placed molecules for the intermolecular g) therefore give g = 1 at every r,
for like and unlike pairs alike. ``intermolecular=False`` is the *total* g(r) including
intramolecular pairs. Key ``"all"`` (only when there is more than one type) pools every pair.

Pair distances come from vesin's periodic neighbour list (:func:`cgzoo.neighbors.structure_pairs`),
so ``r_max`` may be at most half the smallest cell width.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from cgzoo.errors import InputError
from cgzoo.geometry import angles, half_width, wrap
from cgzoo.neighbors import structure_pairs
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.terms import canonical_key

#: Key of the g(r) pooled over every type pair.
ALL_PAIRS = "all"


def max_rdf_range(traj: CGTrajectory) -> float:
    """Largest usable r_max (Å): just under half the smallest cell width over all frames."""
    return float(0.998 * half_width(traj.boxes).min())


def frame_pairs(traj: CGTrajectory, frame: int, r_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs i<j closer than ``r_max`` (Å) in one frame: indices i, j and vectors r_j − r_i (E,3) under PBC."""
    box = traj.boxes[frame]
    pos = wrap(traj.positions[frame], box)
    try:
        pairs, shifts = structure_pairs(torch.from_numpy(pos), torch.from_numpy(box), r_max)
    except ValueError as exc:
        raise InputError(traj.source, f"r_max: {exc}") from None
    i, j = pairs.numpy()
    vec = pos[j] - pos[i] + shifts.numpy() @ box
    keep = np.einsum("ek,ek->e", vec, vec) < r_max**2
    return i[keep], j[keep], vec[keep]


def rdf(traj: CGTrajectory, r_max: float, bins: int = 200, pairs: list[str] | None = None,
        intermolecular: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """g(r) per type-pair key ``"A-B"`` (bin centres in Å, g dimensionless), normalised as in the module docstring.

    ``pairs`` limits the keys (either order); type pairs with no countable pair are left out.
    """
    n_types = len(traj.type_names)
    key_of = _pair_key_matrix(traj.type_names)
    keys = [key_of[a, b] for a in range(n_types) for b in range(a, n_types)]
    n_pairs = _countable_pairs(traj, intermolecular)
    with_all = n_types > 1
    if with_all:
        keys.append(ALL_PAIRS)
        n_pairs[ALL_PAIRS] = sum(n_pairs[k] for k in keys[:-1])
    slot = {k: s for s, k in enumerate(keys)}
    slot_of = np.vectorize(slot.get)(key_of)
    edges = np.linspace(0.0, r_max, bins + 1)
    weighted = np.zeros((len(keys), bins))
    for f in range(traj.n_frames):
        i, j, vec = frame_pairs(traj, f, r_max)
        if intermolecular:
            other = traj.molecule_ids[i] != traj.molecule_ids[j]
            i, j, vec = i[other], j[other], vec[other]
        b = np.minimum((np.linalg.norm(vec, axis=1) / r_max * bins).astype(np.int64), bins - 1)
        s = slot_of[traj.bead_types[i], traj.bead_types[j]]
        hist = np.bincount(s * bins + b, minlength=len(keys) * bins).reshape(len(keys), bins)
        if with_all:
            hist[-1] = hist[:-1].sum(axis=0)
        weighted += hist * abs(np.linalg.det(traj.boxes[f]))
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    centres = 0.5 * (edges[1:] + edges[:-1])
    wanted = None if pairs is None else {p if p == ALL_PAIRS else canonical_key(p.split("-"), (0, 1)) for p in pairs}
    out = {}
    for k in keys:
        if n_pairs[k] > 0 and (wanted is None or k in wanted):
            out[k] = (centres, weighted[slot[k]] / (max(traj.n_frames, 1) * n_pairs[k] * shell))
    return out


def first_minimum(r: np.ndarray, g: np.ndarray, window: float = 0.5) -> float:
    """Radius (Å) of the first minimum of g(r) after its highest peak: the first coordination shell's edge.

    g is lightly smoothed (Gaussian, σ = one bin); a minimum must be the lowest point within ±``window`` Å,
    and on a flat stretch (a lattice's empty gap) its middle is returned. Without a minimum: ``r[-1]``.
    """
    dr = r[1] - r[0]
    kernel = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    smooth = np.convolve(np.pad(g, 3, mode="edge"), kernel / kernel.sum(), mode="valid")
    peak = int(np.argmax(smooth))
    w = max(1, round(window / dr))
    for k in range(peak + 1, len(smooth) - w):
        if smooth[k] < smooth[peak] and smooth[k] <= smooth[max(peak, k - w):k + w + 1].min():
            end = k
            while end + 1 < len(smooth) and smooth[end + 1] <= smooth[k] + 1e-12:
                end += 1
            return float(r[(k + end) // 2])
    return float(r[-1])


def shell_radii(traj: CGTrajectory, r_max: float | None = None, bins: int = 200) -> dict[str, float]:
    """First-shell radius (Å) per type pair from the first minimum of the *intermolecular* g(r)."""
    r_max = max_rdf_range(traj) if r_max is None else r_max
    return {k: first_minimum(r, g) for k, (r, g) in rdf(traj, r_max, bins, intermolecular=True).items()
            if k != ALL_PAIRS}


def triplet_angles(traj: CGTrajectory, r_shell: float | dict[str, float] | None = None,
                   bins: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of angles θ = ∠ j–i–k (radians, [0, π]) over all pairs of neighbours j, k of every bead i.

    Neighbours are beads (bonded or not) closer than ``r_shell`` Å: one radius, one per type-pair key,
    or None for :func:`shell_radii` of this trajectory (give the reference's radii to compare two
    trajectories on one definition). ``p`` is a probability density in 1/rad, without a sin θ
    correction, so isotropic neighbours give p ∝ sin θ.
    """
    radii = shell_radii(traj) if r_shell is None else r_shell
    key_of = _pair_key_matrix(traj.type_names)
    if isinstance(radii, dict):
        cut = np.vectorize(lambda k: float(radii.get(k, 0.0)))(key_of)
    else:
        cut = np.full(key_of.shape, float(radii))
    counts = np.zeros(bins)
    for f in range(traj.n_frames):
        i, j, vec = frame_pairs(traj, f, float(cut.max()))
        near = np.linalg.norm(vec, axis=1) < cut[traj.bead_types[i], traj.bead_types[j]]
        centre = np.concatenate([i[near], j[near]])
        bond = np.concatenate([vec[near], -vec[near]])
        first, second = _neighbour_pairs(centre, traj.n_beads)
        theta = angles(-bond[first], bond[second])
        counts += np.histogram(theta, bins=bins, range=(0.0, np.pi))[0]
    width = np.pi / bins
    centres = (np.arange(bins) + 0.5) * width
    return centres, counts / max(counts.sum() * width, 1e-300)


def _neighbour_pairs(centre: np.ndarray, n_beads: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (e, e') of distinct directed edges that share their centre bead, each unordered pair once."""
    order = np.argsort(centre, kind="stable")
    per_bead = np.bincount(centre, minlength=n_beads)
    start = np.concatenate([[0], np.cumsum(per_bead)[:-1]])
    rank = np.arange(len(order)) - start[centre[order]]
    later = per_bead[centre[order]] - 1 - rank
    first = np.repeat(np.arange(len(order)), later)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later)
    return order[first], order[first + 1 + offset]


def _pair_key_matrix(type_names: list[str]) -> np.ndarray:
    """(T,T) array of canonical pair keys, symmetric."""
    n = len(type_names)
    keys = np.empty((n, n), dtype=object)
    for a, b in itertools.product(range(n), repeat=2):
        keys[a, b] = canonical_key(type_names, (a, b))
    return keys


def _countable_pairs(traj: CGTrajectory, intermolecular: bool) -> dict[str, float]:
    """Number of distinct pairs per type-pair key, less same-molecule pairs when ``intermolecular``."""
    n_types = len(traj.type_names)
    _, mol = np.unique(traj.molecule_ids, return_inverse=True)
    per_mol = np.zeros((mol.max() + 1 if mol.size else 0, n_types))
    np.add.at(per_mol, (mol, traj.bead_types), 1.0)
    total = per_mol.sum(axis=0)
    out: dict[str, float] = {}
    for a in range(n_types):
        for b in range(a, n_types):
            if a == b:
                count = total[a] * (total[a] - 1) / 2
                same = (per_mol[:, a] * (per_mol[:, a] - 1) / 2).sum()
            else:
                count = total[a] * total[b]
                same = (per_mol[:, a] * per_mol[:, b]).sum()
            out[canonical_key(traj.type_names, (a, b))] = count - same if intermolecular else count
    return out
