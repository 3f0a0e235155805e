"""Statistically optimal force maps: the consistent force aggregation with the least mapped-force variance.

Any force map ``W`` (beads × atoms) gives a force-matching target whose conditional mean is the CG
mean force, provided (generalised force of Ciccotti, Kapral & Vanden-Eijnden 2005 for a linear
position map ``C``; Kalligiannaki et al. 2015; Krämer et al. 2023):

1. ``W Cᵀ = I``: bead ``I``'s weights sum to 1 over its own position map and to 0 over every other
   bead's (``Σ_i W_Ii C_Ji = δ_IJ``). Atoms of zero position weight and atoms in no bead appear in no
   row of ``C``, so they may carry any force weight;
2. ``W`` is constant over every group of atoms joined by holonomic constraints: the forces an MD
   engine writes lack the constraint forces, which drop out of ``Σ_i W_Ii f_i`` only if the map moves
   each rigid group as a whole (``W_Ia = W_Ib`` for every constrained pair a–b).

The sum of each bead's atomic forces (cgzoo's ``basic`` map) is one such ``W``. Among all of them,
:func:`optimize_force_map` picks, per molecule layout, the one that minimises the variance of the
mapped force, ``w_Iᵀ Σ w_I`` for each bead row, where ``Σ`` is the covariance of the molecule's
atomic forces (mean removed per atom and Cartesian component, then averaged over x, y, z and pooled
over molecules and frames by :class:`ForceCovariance`). Atoms are restricted to the bead's own
molecule, which keeps ``W`` one small matrix per molecule layout. With the constraint groups as
columns of an indicator ``G`` (``w = G v``) each row is a linearly constrained quadratic program with
the closed-form KKT solution of ``[[S, Aᵀ], [A, 0]] [v; λ] = [0; e_I]``, ``S = Gᵀ(Σ + ρ I)G``,
``A = C G``; the ridge ``ρ = ridge · tr(Σ)/n`` keeps it well posed for few frames or singular
covariances. Every map is checked against both conditions before it is returned.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field
from scipy.sparse.csgraph import connected_components

from cgzoo.errors import MappingError
from cgzoo.schema import Strict

if TYPE_CHECKING:
    from cgzoo.mapping.apply import CGMapper, MoleculeLayout

#: Largest allowed deviation of ``W Cᵀ`` from the identity, and of weights within one constraint group.
TOLERANCE = 1e-8


class ForceMapSettings(Strict):
    """How an optimized force map is fitted: which frames (``train``: the default split's training frames,
    or ``all``), at most how many of them (spread evenly), and the relative ridge on the covariance."""

    frames: Literal["train", "all"] = "train"
    max_frames: Annotated[int, Field(ge=1)] = 200
    ridge: Annotated[float, Field(ge=0)] = 1e-4


class ForceCovariance:
    """Running sums of each layout's atomic forces and their products, pooled over molecules, frames and x/y/z."""

    def __init__(self, layouts: list[MoleculeLayout]) -> None:
        self.layouts = layouts
        self._sums = [np.zeros((lay.atoms.shape[1], 3)) for lay in layouts]
        self._products = [np.zeros((lay.atoms.shape[1],) * 2) for lay in layouts]
        self.n_frames = 0

    def add(self, forces: np.ndarray) -> None:
        """Accumulate (F, N, 3) atomic forces of some frames."""
        for k, lay in enumerate(self.layouts):
            per_molecule = np.asarray(forces[:, lay.atoms, :], dtype=np.float64)  # (F, G, n, 3)
            self._sums[k] += per_molecule.sum(axis=(0, 1))
            rows = per_molecule.transpose(0, 1, 3, 2).reshape(-1, lay.atoms.shape[1])  # (F·G·3, n)
            self._products[k] += rows.T @ rows
        self.n_frames += len(forces)

    def covariance(self, k: int) -> np.ndarray:
        """Layout ``k``'s (n × n) atomic-force covariance per Cartesian component, in (kcal/mol/Å)²."""
        if self.n_frames == 0:
            raise MappingError(None, "no frames were given to fit the optimized force map")
        samples = self.n_frames * self.layouts[k].atoms.shape[0]
        mean = self._sums[k] / samples
        return (self._products[k] - samples * mean @ mean.T) / (3 * samples)


@dataclass(frozen=True)
class LayoutForceMap:
    """The fitted weights of one molecule layout and the per-bead mapped-force variance before and after."""

    molecule: str
    atom_names: list[str]
    bead_names: list[str]
    bead_types: list[str]
    n_molecules: int
    weights: np.ndarray  # (beads, atoms) of one molecule
    variance_basic: np.ndarray  # (beads,) per Cartesian component, (kcal/mol/Å)²
    variance_optimized: np.ndarray


@dataclass(frozen=True)
class ForceMapFit:
    """An optimized force map: the (beads × atoms) matrix, how it was fitted, and what it gained per layout."""

    matrix: sp.csr_matrix
    frames: list[int]
    ridge: float
    layouts: list[LayoutForceMap]

    def variance_by_type(self) -> dict[str, dict[str, float]]:
        """Mapped-force variance per bead type (mean over its beads), basic and optimized, and the fraction removed."""
        sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3))
        for lay in self.layouts:
            for t, before, after in zip(lay.bead_types, lay.variance_basic, lay.variance_optimized, strict=True):
                sums[t] += lay.n_molecules * np.array([before, after, 1.0])
        out = {}
        for t in sorted(sums):
            before, after, count = sums[t]
            out[t] = {"basic": before / count, "optimized": after / count,
                      "removed": 1.0 - after / before if before > 0 else 0.0}
        return out

    def provenance(self) -> dict:
        """Everything a dataset records of its force map: settings, frames, variances and the weights themselves."""
        return {
            "kind": "optimized",
            "frames": list(self.frames),
            "ridge": self.ridge,
            "variance_units": "(kcal/mol/Å)² per Cartesian component",
            "variance_by_type": self.variance_by_type(),
            "molecules": [
                {
                    "molecule": lay.molecule,
                    "n_molecules": lay.n_molecules,
                    "atoms": lay.atom_names,
                    "beads": lay.bead_names,
                    "weights": lay.weights.tolist(),
                }
                for lay in self.layouts
            ],
        }


def optimize_force_map(
    mapper: CGMapper, covariance: ForceCovariance, frames: list[int], ridge: float
) -> ForceMapFit:
    """The least-variance consistent force map of ``mapper`` for the pooled ``covariance`` of ``frames``."""
    if ridge < 0:
        raise MappingError(mapper.spec.source, f"force map ridge must be >= 0 (got {ridge})")
    groups = _constraint_components(mapper)
    layouts, rows, cols, values = [], [], [], []
    for k, lay in enumerate(mapper.layouts):
        first_atoms, first_beads = lay.atoms[0], lay.beads[0]
        name = mapper.molecule_type_names[lay.mol_type]
        position = mapper.position_map[first_beads][:, first_atoms].toarray()
        basic = mapper.basic_force_map[first_beads][:, first_atoms].toarray()
        cov = covariance.covariance(k)
        group_of = _layout_groups(groups, lay, name, mapper.spec.source)
        weights = _solve(cov, position, group_of, ridge, mapper.spec.source, name)
        layouts.append(LayoutForceMap(
            molecule=name,
            atom_names=[str(mapper.topology.names[a]) for a in first_atoms],
            bead_names=[str(b) for b in mapper.bead_names[first_beads]],
            bead_types=[mapper.type_names[t] for t in mapper.bead_types[first_beads]],
            n_molecules=int(lay.atoms.shape[0]),
            weights=weights,
            variance_basic=np.einsum("ij,jk,ik->i", basic, cov, basic),
            variance_optimized=np.einsum("ij,jk,ik->i", weights, cov, weights),
        ))
        n_mol, n_beads, n_atoms = lay.atoms.shape[0], *weights.shape
        rows.append(np.broadcast_to(lay.beads[:, :, None], (n_mol, n_beads, n_atoms)).ravel())
        cols.append(np.broadcast_to(lay.atoms[:, None, :], (n_mol, n_beads, n_atoms)).ravel())
        values.append(np.broadcast_to(weights[None], (n_mol, n_beads, n_atoms)).ravel())
    matrix = sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                           shape=mapper.basic_force_map.shape)
    matrix.eliminate_zeros()
    check_force_map(matrix, mapper.position_map, groups, mapper.spec.source)
    return ForceMapFit(matrix, [int(f) for f in frames], float(ridge), layouts)


def check_force_map(matrix: sp.spmatrix, position_map: sp.spmatrix, groups: np.ndarray, source: str) -> None:
    """Raise :class:`MappingError` unless ``W Cᵀ = I`` and ``W`` is constant over each constraint group."""
    gap = _max_abs(matrix @ position_map.T - sp.identity(matrix.shape[0]))
    if gap > TOLERANCE:
        raise MappingError(source, f"force map is inconsistent with the position map: |W Cᵀ - I| = {gap:.3g}")
    csc = sp.csc_matrix(matrix)
    _, index, inverse = np.unique(groups, return_index=True, return_inverse=True)
    first = index[inverse]  # each atom's group representative
    spread = _max_abs(csc - csc[:, first])
    if spread > TOLERANCE:
        raise MappingError(source, f"force map weights differ by {spread:.3g} within a constraint group")


def _max_abs(matrix: sp.spmatrix) -> float:
    """Largest absolute entry of a sparse matrix (0 when it has none)."""
    data = sp.csr_matrix(matrix).data
    return float(np.abs(data).max()) if len(data) else 0.0


def _constraint_components(mapper: CGMapper) -> np.ndarray:
    """Connected component of every atom in the graph of holonomic constraints (unconstrained atoms alone)."""
    n = mapper.topology.n_atoms
    cons = np.asarray(mapper.topology.constraints, dtype=np.int64).reshape(-1, 2)
    graph = sp.csr_matrix((np.ones(len(cons)), (cons[:, 0], cons[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _layout_groups(groups: np.ndarray, lay: MoleculeLayout, name: str, source: str) -> np.ndarray:
    """Per local atom, the first local atom of its constraint group; the same for every molecule of the layout."""
    comp = groups[lay.atoms]  # (G, n)
    local = np.argmax(comp[:, :, None] == comp[:, None, :], axis=2)
    if np.any(local != local[0]):
        raise MappingError(source, f"molecules of type {name} with one atom layout have different constraints")
    return local[0]


def _solve(
    cov: np.ndarray, position: np.ndarray, group_of: np.ndarray, ridge: float, source: str, name: str
) -> np.ndarray:
    """(beads × atoms) weights minimising each row's ``wᵀ Σ w`` subject to ``W Cᵀ = I`` and equal group weights."""
    n_beads, n_atoms = position.shape
    _, column = np.unique(group_of, return_inverse=True)
    indicator = np.zeros((n_atoms, column.max() + 1))
    indicator[np.arange(n_atoms), column] = 1.0
    scale = np.trace(cov) / n_atoms
    shrink = ridge * (scale if scale > 0 else 1.0)
    s = indicator.T @ (cov + shrink * np.eye(n_atoms)) @ indicator
    a = position @ indicator
    if np.linalg.matrix_rank(a) < n_beads:
        raise MappingError(source, f"molecule {name}: no consistent force map exists, because constraints join atoms "
                                 "of several beads into groups that cannot tell the beads apart")
    n_groups = s.shape[0]
    kkt = np.block([[s, a.T], [a, np.zeros((n_beads, n_beads))]])
    rhs = np.vstack([np.zeros((n_groups, n_beads)), np.eye(n_beads)])
    try:
        solution = scipy.linalg.solve(kkt, rhs, assume_a="sym")
    except scipy.linalg.LinAlgError:
        raise MappingError(source, f"molecule {name}: the force covariance is singular; fit the force map with a "
                                 "positive ridge") from None
    return solution[:n_groups].T @ indicator.T
