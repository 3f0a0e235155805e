"""Periodic-cell geometry and internal coordinates: one implementation for numpy arrays and torch tensors.

Each function is written once against the few operations whose spelling differs between numpy and
torch (:class:`_NumpyOps`, :class:`_TensorOps`); the tensor side calls only tensor methods, so this
module imports no torch and torch-free layers (mapping, observables) use the same code as the priors.
On tensors every function is differentiable; image shifts are constants (no gradient), as they are
almost everywhere.

Molecules are made whole along a spanning forest of their bonds (:func:`unwrap_tree`,
:func:`make_whole`; numpy only): the mapping does it to atomistic frames, the LAMMPS export to the
beads it writes.

Cells are (…,3,3) with rows = lattice vectors (Å); vectors and positions are (…,M,3), M of them per
cell. Angles are radians: bond angles in [0, π], dihedrals in (−π, π] with the IUPAC sign (0 = cis),
as MDAnalysis.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: a numpy array or a torch tensor (any object with the tensor methods :class:`_TensorOps` calls)
Array = Any


class _NumpyOps:
    """The operations :mod:`cgzoo.geometry` needs, for numpy arrays."""

    cross = staticmethod(np.cross)
    atan2 = staticmethod(np.arctan2)
    floor = staticmethod(np.floor)
    inv = staticmethod(np.linalg.inv)
    det = staticmethod(np.linalg.det)

    @staticmethod
    def norm(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
        return np.linalg.norm(x, axis=-1, keepdims=keepdims)

    @staticmethod
    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("...k,...k->...", a, b)

    @staticmethod
    def where(cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where(cond, x, y)

    @staticmethod
    def amin(x: np.ndarray) -> np.ndarray:
        return x.min(axis=-1)

    @staticmethod
    def constant(x: np.ndarray) -> np.ndarray:
        return x


class _TensorOps:
    """The same operations for torch tensors, through tensor methods only (``x.norm`` is ``linalg.vector_norm``)."""

    @staticmethod
    def cross(a: Array, b: Array) -> Array:
        return a.cross(b, dim=-1)

    @staticmethod
    def atan2(y: Array, x: Array) -> Array:
        return y.atan2(x)

    @staticmethod
    def floor(x: Array) -> Array:
        return x.floor()

    @staticmethod
    def inv(m: Array) -> Array:
        return m.inverse()

    @staticmethod
    def det(m: Array) -> Array:
        return m.det()

    @staticmethod
    def norm(x: Array, keepdims: bool = False) -> Array:
        return x.norm(dim=-1, keepdim=keepdims)

    @staticmethod
    def dot(a: Array, b: Array) -> Array:
        return (a * b).sum(-1)

    @staticmethod
    def where(cond: Array, x: Array, y: Array) -> Array:
        return x.where(cond, y)

    @staticmethod
    def amin(x: Array) -> Array:
        return x.amin(-1)

    @staticmethod
    def constant(x: Array) -> Array:
        return x.detach()


def _ops(x: Array) -> type[_NumpyOps] | type[_TensorOps]:
    """The operations for ``x``'s kind: numpy for numpy arrays, tensor methods otherwise."""
    return _NumpyOps if isinstance(x, np.ndarray) else _TensorOps


# --- periodic cells ----------------------------------------------------------------------------


def image_offsets(vectors: Array, cells: Array) -> Array:
    """The lattice vectors (…,M,3) of cells (…,3,3) that take difference vectors (…,M,3) to their nearest image."""
    xp = _ops(vectors)
    return xp.constant((vectors @ xp.inv(cells)).round()) @ cells


def minimum_image(vectors: Array, cells: Array) -> Array:
    """Difference vectors (…,M,3) moved by whole lattice vectors of their cells (…,3,3) to the nearest image."""
    return vectors - image_offsets(vectors, cells)


def wrap(positions: Array, cells: Array) -> Array:
    """Positions (…,M,3) moved by lattice vectors into their cells (…,3,3): fractional coordinates in [0, 1)."""
    xp = _ops(positions)
    frac = positions @ xp.inv(cells)
    frac = frac - xp.floor(frac)
    frac = xp.where(frac >= 1, frac - 1, frac)  # float rounding of a tiny negative value can land exactly on 1
    return frac @ cells


def half_width(cells: Array) -> Array:
    """Half the smallest perpendicular width of each cell (…,3,3) (Å): the largest cutoff minimum image allows."""
    xp = _ops(cells)
    areas = xp.norm(xp.cross(cells[..., [1, 2, 0], :], cells[..., [2, 0, 1], :]))
    return xp.amin(abs(xp.det(cells))[..., None] / areas) / 2


# --- internal coordinates ----------------------------------------------------------------------


def lengths(d: Array) -> Array:
    """|d| of bond vectors (…,3)."""
    return _ops(d).norm(d)


def angles(d1: Array, d2: Array) -> Array:
    """Angle at the middle bead of consecutive bond vectors d1, d2 (…,3): between −d1 and d2, in [0, π].

    ``atan2(|a×b|, a·b)`` stays accurate and differentiable near 0 and π, unlike ``acos``.
    """
    xp = _ops(d1)
    a, b = -d1, d2
    return xp.atan2(xp.norm(xp.cross(a, b)), xp.dot(a, b))


def dihedrals(b1: Array, b2: Array, b3: Array) -> Array:
    """Dihedral angle of consecutive bond vectors b1, b2, b3 (…,3), in (−π, π]."""
    xp = _ops(b1)
    n1 = xp.cross(b1, b2)
    n2 = xp.cross(b2, b3)
    m1 = xp.cross(b2 / xp.norm(b2, keepdims=True), n1)
    return xp.atan2(xp.dot(m1, n2), xp.dot(n1, n2))


#: internal coordinate of a bonded term from its consecutive bond vectors, by number of beads
FROM_BOND_VECTORS: dict[int, Callable[..., Array]] = {2: lengths, 3: angles, 4: dihedrals}


# --- whole molecules ---------------------------------------------------------------------------


@dataclass
class UnwrapTree:
    """A spanning forest of molecules' bonds: atoms sorted by tree depth (``inverse`` undoes ``order``) and, per depth,
    a slice of that order and the sorted index of each one's parent."""

    order: np.ndarray
    inverse: np.ndarray
    levels: list[tuple[int, int, np.ndarray]]


def unwrap_tree(molecule_ids: np.ndarray, bonds: np.ndarray) -> UnwrapTree:
    """Spanning forest of each molecule's ``bonds`` (pairs of indices within one molecule), as levels of (child,
    parent) in depth-sorted order.

    Each molecule's tree is rooted at its lowest-index atom; atoms that bonds do not connect to it
    start new subtrees whose root's parent is that first atom.
    """
    import scipy.sparse as sp

    mol = np.asarray(molecule_ids)
    n = len(mol)
    edges = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    adj = sp.csr_matrix(
        (np.ones(2 * len(edges)), (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])),
        shape=(n, n),
    )
    uniq, first_index = np.unique(mol, return_index=True)
    first_of_atom = first_index[np.searchsorted(uniq, mol)]
    depth = np.full(n, -1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    frontier = first_index
    depth[frontier] = 0
    while True:
        while len(frontier):
            sub = adj[frontier].tocoo()
            child, par = sub.col.astype(np.int64), frontier[sub.row]
            fresh = depth[child] < 0
            child, keep = np.unique(child[fresh], return_index=True)
            par = par[fresh][keep]
            depth[child] = depth[par] + 1
            parent[child] = par
            frontier = child
        left = np.flatnonzero(depth < 0)
        if not len(left):
            break
        _, first_left = np.unique(mol[left], return_index=True)
        frontier = left[first_left]
        parent[frontier] = first_of_atom[frontier]
        depth[frontier] = 1
    order = np.argsort(depth, kind="stable")
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    cuts = np.searchsorted(depth[order], np.arange(1, depth.max() + 2)).tolist()
    levels = [(s, e, inverse[parent[order[s:e]]]) for s, e in itertools.pairwise(cuts) if e > s]
    return UnwrapTree(order, inverse, levels)


def make_whole(positions: np.ndarray, cells: np.ndarray, tree: UnwrapTree) -> np.ndarray:
    """Positions (F,N,3) with every molecule of ``tree`` unbroken across the periodic boundaries of cells (F,3,3): each
    atom at the minimum image of its tree parent (numpy only). Exact whenever every bond is shorter than half the
    cell's smallest perpendicular width."""
    work = np.take(positions, tree.order, axis=1)  # atoms sorted by tree depth: each level is a slice
    for start, stop, parents in tree.levels:
        work[:, start:stop] -= image_offsets(work[:, start:stop] - np.take(work, parents, axis=1), cells)
    return np.take(work, tree.inverse, axis=1)
