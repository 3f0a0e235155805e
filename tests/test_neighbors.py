"""Neighbour lists: agreement with brute force (orthorhombic and triclinic), bond separations, Verlet reuse."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cgzoo.neighbors import FAR, TopologyCache, VerletList, separation_table, structure_pairs


def brute_force_pairs(pos: np.ndarray, cell: np.ndarray, cutoff: float) -> set[tuple[int, int, tuple[int, ...]]]:
    """All (i, j, shift) with |r_j − r_i + shift·cell| < cutoff, i<j or i==j with a positive shift, by enumeration."""
    out = set()
    n = len(pos)
    for shift in itertools.product(range(-3, 4), repeat=3):
        offset = np.array(shift) @ cell
        for i in range(n):
            d = np.linalg.norm(pos - pos[i] + offset, axis=1)
            for j in np.flatnonzero(d < cutoff):
                if i < j or (i == j and shift > (0, 0, 0)):
                    out.add((i, int(j), shift))
    return out


@pytest.mark.parametrize("triclinic", [False, True])
def test_half_list_matches_brute_force(triclinic):
    rng = np.random.default_rng(0)
    cell = np.diag([11.0, 12.0, 13.0])
    if triclinic:
        cell[1, 0], cell[2, 0], cell[2, 1] = 3.0, -2.0, 2.5
    pos = rng.uniform(0, 1, (40, 3)) @ cell
    pairs, shifts = structure_pairs(torch.as_tensor(pos), torch.as_tensor(cell), 5.0)
    ours = set()
    for (i, j), s in zip(pairs.T.tolist(), shifts.round().long().tolist()):
        if i > j or (i == j and tuple(s) < (0, 0, 0)):
            i, j, s = j, i, [-x for x in s]
        ours.add((i, j, tuple(s)))
    assert ours == brute_force_pairs(pos, cell, 5.0)


def test_cutoff_larger_than_half_cell_is_refused():
    with pytest.raises(ValueError, match="exceeds half the smallest cell width"):
        structure_pairs(torch.zeros(2, 3), torch.eye(3) * 8.0, 4.5)


def test_bond_separations_of_a_ring_and_a_chain():
    bonds = np.array([[0, 1], [1, 2], [2, 0], [3, 4], [4, 5], [5, 6], [6, 7]])
    table = separation_table(8, bonds, np.array([0, 0, 0, 1, 1, 1, 1, 1]))
    assert table[(0, 1)] == 1 and table[(0, 2)] == 1  # a triangle: every pair bonded
    assert table[(3, 5)] == 2 and table[(3, 6)] == 3 and (3, 7) not in table
    cache = TopologyCache(8, bonds, np.array([0, 0, 0, 1, 1, 1, 1, 1]))
    seps = cache.edge_separation(torch.tensor([3, 3, 0, 6]), torch.tensor([6, 7, 5, 4]))
    assert seps.tolist() == [3, FAR, 0, 2]


def test_verlet_list_reuses_until_beads_move_half_the_skin():
    rng = np.random.default_rng(1)
    cell = torch.eye(3, dtype=torch.float64) * 15.0
    pos = torch.as_tensor(rng.uniform(0, 15, (60, 3)))
    cache = TopologyCache(60, np.zeros((0, 2), int), np.arange(60))
    verlet = VerletList(5.0, 1.0, cache)
    types = torch.zeros(60, dtype=torch.long)
    for step in range(5):
        moved = pos + 0.05 * step
        graph = verlet.graph(moved, types, cell)
        r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
        fresh, _ = structure_pairs(moved, cell, 5.0)
        assert int((r < 5.0).sum()) == fresh.shape[1]  # no pair within the cutoff is missed
    assert verlet.n_builds == 1
    verlet.graph(pos + 0.6, types, cell)
    assert verlet.n_builds == 2
    verlet.graph(pos + 0.6, types, cell * 1.01)
    assert verlet.n_builds == 3


def test_verlet_skin_shrinks_to_fit_a_small_cell():
    """A cell wider than 2·cutoff but narrower than 2·(cutoff + skin) still works, with a thinner skin."""
    rng = np.random.default_rng(2)
    cell = torch.eye(3, dtype=torch.float64) * 10.5
    pos = torch.as_tensor(rng.uniform(0, 10.5, (30, 3)))
    verlet = VerletList(5.0, 1.0, TopologyCache(30, np.zeros((0, 2), int), np.arange(30)))
    graph = verlet.graph(pos, torch.zeros(30, dtype=torch.long), cell)
    assert 5.0 <= graph.cutoff <= 5.25
    r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
    fresh, _ = structure_pairs(pos, cell, 5.0)
    assert int((r < 5.0).sum()) == fresh.shape[1]
