"""Multiscale coarse-graining (MS-CG) force matching on cubic B-spline bases.

Every fitted term — a non-bonded type pair, a bond, angle or dihedral type — is a potential
U(q) = Σₖ cₖ Bₖ(q) on a uniform cubic B-spline basis, so the CG forces are linear in all
coefficients c: F = G c. Over the training frames cgzoo accumulates the normal equations
A = Σ GᵀG, b = Σ Gᵀ F_ref frame by frame (memory flat in trajectory length) and solves
(A + λ_s·S + λ_r·I) c = b, with S a second-difference smoothness penalty per term (relative
weight ``smoothing``, scaled by the block's mean diagonal) and a tiny ridge for the constant
mode of bonded terms; with a :class:`~cgzoo.fitting.pressure.VirialConstraint` the solution also
meets the mean-virial equality (Das & Andersen 2010) through a Lagrange multiplier. Pair
potentials drop the three basis functions alive at the cutoff, so U, U′ and U″ vanish there. The solution becomes :class:`~cgzoo.priors.tabulated.Tabulated`
priors whose grids refine the knots, reproducing the fitted splines exactly (Izvekov & Voth,
J. Phys. Chem. B 2005, 109, 2469; Noid et al., J. Chem. Phys. 2008, 128, 244114).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cgzoo.errors import FitError
from cgzoo.fitting.pressure import VirialConstraint, solve_constrained, volumes
from cgzoo.geometry import FROM_BOND_VECTORS
from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import SumPrior
from cgzoo.priors.tabulated import Tabulated
from cgzoo.priors.terms import pair_mask, term_index
from cgzoo.terms import KINDS, canonical_key
from cgzoo.units import KCAL_MOL_A3_TO_BAR


@dataclass
class SplineBasis:
    """Uniform cubic B-spline basis on [lo, hi]; periodic (dihedrals) or with U vanishing at ``hi`` (pairs).

    Bonded potentials are defined up to a constant, which the B-splines can represent (they sum
    to one), so without ``zero_end`` the first basis function is dropped: its coefficient is the
    gauge, fixed at zero, and the normal equations have no null space.
    """

    lo: float
    hi: float
    n_intervals: int
    periodic: bool = False
    zero_end: bool = False

    @classmethod
    def with_spacing(cls, lo: float, hi: float, spacing: float, **kw: bool) -> "SplineBasis":
        """A basis whose knot spacing is at most ``spacing``."""
        return cls(lo, hi, max(1, math.ceil((hi - lo) / spacing - 1e-9)), **kw)

    @property
    def h(self) -> float:
        return (self.hi - self.lo) / self.n_intervals

    @property
    def n_splines(self) -> int:
        """Number of B-splines on the interval before the gauge or end condition removes some."""
        return self.n_intervals if self.periodic else self.n_intervals + 3

    @property
    def n_basis(self) -> int:
        return self.n_intervals if self.zero_end else self.n_splines - 1

    def local(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices (M,4) of the basis functions alive at ``x``, their values and d/dx (M,4); index −1 = dropped."""
        t = (np.asarray(x, dtype=np.float64) - self.lo) / self.h
        if self.periodic:
            t = np.mod(t, self.n_intervals)
        j = np.clip(np.floor(t).astype(np.int64), 0, self.n_intervals - 1)
        u = t - j
        values = np.stack([(1 - u) ** 3, 3 * u**3 - 6 * u**2 + 4, -3 * u**3 + 3 * u**2 + 3 * u + 1, u**3], axis=1) / 6
        slopes = np.stack([-((1 - u) ** 2), 3 * u**2 - 4 * u, -3 * u**2 + 2 * u + 1, u**2], axis=1) / (2 * self.h)
        idx = j[:, None] + np.arange(4)[None, :]
        if self.periodic:
            idx = np.mod(idx, self.n_intervals)
        if self.zero_end:
            idx = np.where(idx < self.n_basis, idx, -1)
        else:
            idx = idx - 1  # spline 0 carries the gauge (see class docstring)
        return idx, values, slopes

    def evaluate(self, coeffs: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """U(x) and dU/dx for coefficients ``coeffs``."""
        idx, values, slopes = self.local(x)
        c = np.where(idx >= 0, coeffs[np.maximum(idx, 0)], 0.0)
        return (c * values).sum(1), (c * slopes).sum(1)

    def table(self, coeffs: np.ndarray, refine: int = 4) -> dict[str, list[float]]:
        """The fitted potential as a Hermite table on a grid refining the knots (exact for the spline)."""
        x = np.linspace(self.lo, self.hi, self.n_intervals * refine + 1)
        u, du = self.evaluate(coeffs, x)
        return {"x": x.tolist(), "u": u.tolist(), "du": du.tolist()}

    def second_differences(self) -> np.ndarray:
        """Second differences of all spline coefficients (gauge included, at zero) as rows over the basis."""
        n = self.n_splines
        rows = n if self.periodic else max(n - 2, 0)
        op = np.zeros((rows, n))
        for r in range(rows):
            for k, w in enumerate((1.0, -2.0, 1.0)):
                op[r, (r + k) % n if self.periodic else r + k] += w
        return op[:, : self.n_basis] if self.zero_end else op[:, 1:]


@dataclass
class Term:
    """One fitted potential: its kind, type key, basis and columns in the global coefficient vector."""

    kind: str
    key: str
    basis: SplineBasis
    offset: int
    samples: int = 0
    sampled: list[float] = field(default_factory=lambda: [math.inf, -math.inf])

    @property
    def columns(self) -> slice:
        return slice(self.offset, self.offset + self.basis.n_basis)


@dataclass
class FMSettings:
    """What to fit and how finely: knot spacings (Å for pair/bond, degrees for angle/dihedral), cutoff, penalties."""

    pair: bool = True
    bonds: bool = True
    angles: bool = True
    dihedrals: bool = True
    cutoff: float = 9.0
    pair_spacing: float = 0.2
    bond_spacing: float = 0.05
    angle_spacing_deg: float = 5.0
    dihedral_spacing_deg: float = 15.0
    exclude: int = 3
    intramolecular: bool = True
    smoothing: float = 1e-3
    ridge: float = 1e-8
    r_min: float = 1.0


def _bonded_geometry(graph: CGGraph, order: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Internal coordinates q (M,) and their Jacobians dq/dx (order, M, 3) of the graph's bonded terms.

    Each term gets its own copy of its beads' positions, so one backward pass yields every
    term's Jacobian separately.
    """
    index = term_index(graph, order)
    owner = graph.batch[index[0]]
    copies = graph.pos.detach()[index].clone().requires_grad_(True)
    vectors = [graph.minimum_image(copies[k + 1] - copies[k], owner) for k in range(order - 1)]
    q = FROM_BOND_VECTORS[order](*vectors)
    (jac,) = torch.autograd.grad(q.sum(), copies)
    return index, q.detach(), jac


class ForceMatching:
    """Streaming MS-CG fit: :meth:`scan` frames for sampled ranges, :meth:`accumulate` normal equations, :meth:`solve`."""

    def __init__(self, type_names: list[str], settings: FMSettings, constraint: VirialConstraint | None = None) -> None:
        self.type_names = list(type_names)
        self.settings = settings
        self.constraint = constraint
        self.ranges: dict[tuple[str, str], list[float]] = {}
        self.terms: dict[tuple[str, str], Term] = {}
        self.A: np.ndarray | None = None
        self.b: np.ndarray | None = None
        self.sum_f2 = 0.0
        self.n_components = 0
        self.n_frames = 0
        self.virial_row: np.ndarray | None = None  # Σ over frames of w/3V: mean virial pressure = virial_row @ c / frames
        self.virial_required = 0.0  # Σ over frames of the virial pressure the constraint asks for

    # -- pass 1: which terms exist and over which range are they sampled ----------------------

    def _pair_data(self, graph: CGGraph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        s = self.settings
        vec = graph.edge_vectors().detach()
        r = torch.linalg.norm(vec, dim=-1)
        mask = pair_mask(graph, r, s.cutoff, s.exclude, s.intramolecular)
        i, j = graph.edge_index[:, mask]
        keys = self._keys([graph.bead_type[i], graph.bead_type[j]])
        return torch.stack([i, j]), r[mask], vec[mask], keys

    def _keys(self, types: list[torch.Tensor]) -> list[str]:
        n_types = len(self.type_names)
        code = torch.zeros_like(types[0])
        for t in types:
            code = code * n_types + t
        unique, inverse = torch.unique(code, return_inverse=True)
        names = []
        for c in unique.tolist():
            digits = []
            for _ in types:
                c, d = divmod(c, n_types)
                digits.append(d)
            names.append(canonical_key(self.type_names, tuple(reversed(digits))))
        return [names[k] for k in inverse.tolist()]

    def _groups(self, keys: list[str]) -> dict[str, np.ndarray]:
        arr = np.asarray(keys)
        return {k: np.flatnonzero(arr == k) for k in dict.fromkeys(keys)}

    def _enabled(self) -> list[str]:
        s = self.settings
        return [k for k, on in (("pair", s.pair), ("bond", s.bonds), ("angle", s.angles), ("dihedral", s.dihedrals)) if on]

    def scan(self, graph: CGGraph) -> None:
        """Record the range of every term's coordinate sampled in this frame."""
        for kind in self._enabled():
            if kind == "pair":
                _, q, _, keys = self._pair_data(graph)
            else:
                index = term_index(graph, KINDS[kind])
                if index.shape[1] == 0:
                    continue
                q = _bonded_geometry(graph, KINDS[kind])[1]
                keys = self._keys([graph.bead_type[k] for k in index])
            qn = q.numpy()
            for key, sel in self._groups(keys).items():
                rng = self.ranges.setdefault((kind, key), [math.inf, -math.inf])
                rng[0], rng[1] = min(rng[0], float(qn[sel].min())), max(rng[1], float(qn[sel].max()))

    def build_terms(self) -> None:
        """Lay out a basis for every sampled term over its sampled range (plus a margin)."""
        s = self.settings
        if not self.ranges:
            raise FitError("force matching: no pairs or bonded terms were sampled in the training frames")
        offset = 0
        for (kind, key), (lo, hi) in sorted(self.ranges.items()):
            if kind == "pair":
                spacing = s.pair_spacing
                start = max(s.r_min, math.floor((lo - spacing) / spacing) * spacing)
                basis = SplineBasis.with_spacing(start, s.cutoff, spacing, zero_end=True)
            elif kind == "bond":
                spacing = s.bond_spacing
                basis = SplineBasis.with_spacing(max(1e-3, lo - 2 * spacing), hi + 2 * spacing, spacing)
            elif kind == "angle":
                spacing = math.radians(s.angle_spacing_deg)
                basis = SplineBasis.with_spacing(max(0.0, lo - spacing), min(math.pi, hi + spacing), spacing)
            else:
                basis = SplineBasis.with_spacing(-math.pi, math.pi, math.radians(s.dihedral_spacing_deg), periodic=True)
            self.terms[(kind, key)] = Term(kind, key, basis, offset, sampled=[lo, hi])
            offset += basis.n_basis
        self.A = np.zeros((offset, offset))
        self.b = np.zeros(offset)
        self.virial_row = np.zeros(offset)

    # -- pass 2: normal equations ---------------------------------------------------------------

    def _samples(self, graph: CGGraph) -> Iterator[tuple[Term, np.ndarray, np.ndarray, np.ndarray]]:
        """Every fitted term's samples in this frame: (term, coordinates q (M,), beads (order, M), dq/dx (order, M, 3))."""
        for kind in self._enabled():
            if kind == "pair":
                pairs, r, vec, keys = self._pair_data(graph)
                unit = (vec / r[:, None]).numpy()
                for key, sel in self._groups(keys).items():
                    jac = np.stack([-unit[sel], unit[sel]])  # dr/dx_i = −û, dr/dx_j = +û
                    yield self._term(kind, key), r.numpy()[sel], pairs.numpy()[:, sel], jac
            else:
                order = KINDS[kind]
                if term_index(graph, order).shape[1] == 0:
                    continue
                index, q, jac = _bonded_geometry(graph, order)
                keys = self._keys([graph.bead_type[k] for k in index])
                for key, sel in self._groups(keys).items():
                    yield self._term(kind, key), q.numpy()[sel], index.numpy()[:, sel], jac.numpy()[:, sel]

    def design(self, graph: CGGraph) -> np.ndarray:
        """G (3N, K): the CG forces of this frame are G @ c for coefficients c."""
        n, k_total = graph.pos.shape[0], self.A.shape[0]
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for term, q, beads, jac in self._samples(graph):
            # force on bead a, component d, column c: −Σ_t dB_c(q_t) · ∂q_t/∂x_{a,d}
            idx, _, slopes = term.basis.local(q)
            keep = idx >= 0
            for slot in range(beads.shape[0]):
                for d in range(3):
                    r = np.broadcast_to((3 * beads[slot] + d)[:, None], idx.shape)
                    v = -slopes * jac[slot][:, d][:, None]
                    rows.append(r[keep])
                    cols.append((idx + term.offset)[keep])
                    vals.append(v[keep])
            term.samples += len(q)
        if not rows:
            return np.zeros((3 * n, k_total))
        flat = np.concatenate(rows) * k_total + np.concatenate(cols)
        g = np.bincount(flat, weights=np.concatenate(vals), minlength=3 * n * k_total)
        return g.reshape(3 * n, k_total)

    def virial(self, graph: CGGraph) -> np.ndarray:
        """w (K,): the frame's virial Σ r_ij·f_ij of the fitted terms is w @ c (kcal/mol).

        A coordinate homogeneous of degree k in the bond vectors (k = 1: pair distances and bond
        lengths; k = 0: angles and dihedrals) has Σ_a x_a·∂q/∂x_a = k·q (Euler), so each term adds
        −k·q·U′(q): lengths contribute −q·U′(q), angles and dihedrals nothing, periodic images included.
        """
        w = np.zeros(self.A.shape[0])
        for term, q, _, _ in self._samples(graph):
            if term.kind not in ("pair", "bond"):
                continue
            idx, _, slopes = term.basis.local(q)
            keep = idx >= 0
            np.add.at(w, (idx + term.offset)[keep], (-q[:, None] * slopes)[keep])
        return w

    def _term(self, kind: str, key: str) -> Term:
        try:
            return self.terms[(kind, key)]
        except KeyError:
            raise FitError(f"force matching: {kind} {key} appears in a frame but was not seen while scanning") from None

    def accumulate(self, graph: CGGraph, forces: np.ndarray) -> None:
        """Add one frame (its graph and reference forces (N,3), kcal/mol/Å) to the normal equations."""
        g = self.design(graph)
        f = np.asarray(forces, dtype=np.float64).reshape(-1)
        self.A += g.T @ g
        self.b += g.T @ f
        self.sum_f2 += float(f @ f)
        self.n_components += f.size
        self.n_frames += 1
        if self.constraint is not None:
            self.virial_row += self.virial(graph) / (3.0 * float(volumes(graph)[0]))
            self.virial_required += self.constraint.required(graph)

    # -- solution ---------------------------------------------------------------------------------

    def solve(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Regularised least-squares coefficients and a report (residual, condition number, sampled ranges)."""
        if self.A is None or self.n_frames == 0:
            raise FitError("force matching: no frames were accumulated")
        a = self.A.copy()
        scale = float(np.mean(np.diag(a))) or 1.0
        for term in self.terms.values():
            block = self.A[term.columns, term.columns]
            if not np.any(block):
                raise FitError(f"force matching: {term.kind} {term.key} exerts no force in the training frames")
            op = term.basis.second_differences()
            a[term.columns, term.columns] += self.settings.smoothing * float(np.mean(np.diag(block))) * (op.T @ op)
        a += self.settings.ridge * scale * np.eye(len(a))
        try:
            coeffs = np.linalg.solve(a, self.b)
            free = coeffs
            if self.constraint is not None:
                if not np.any(self.virial_row):
                    raise FitError("force matching: the virial constraint needs pair or bond terms, and none has a virial")
                coeffs = solve_constrained(a, self.b, self.virial_row, self.virial_required)
        except np.linalg.LinAlgError:
            raise FitError("force matching: normal equations are singular; raise 'smoothing' or 'ridge'") from None
        for term in self.terms.values():
            if not np.all(np.isfinite(coeffs[term.columns])):
                raise FitError(f"force matching: fit of {term.kind} {term.key} gave non-finite coefficients")
        report = {
            "method": "force_matching",
            "frames": self.n_frames,
            "train_force_rmse": self._rmse(coeffs),
            "reference_force_rms": math.sqrt(self.sum_f2 / self.n_components),
            "condition_number": float(np.linalg.cond(a)),
            "n_coefficients": int(len(coeffs)),
            "terms": {f"{t.kind} {t.key}": {"sampled_range": t.sampled, "fit_range": [t.basis.lo, t.basis.hi],
                                              "knots": t.basis.n_intervals + 1, "samples": t.samples}
                      for t in self.terms.values()},
        }
        if self.constraint is not None:
            report["virial_constraint"] = self._constraint_report(coeffs, free)
        return coeffs, report

    def _rmse(self, coeffs: np.ndarray) -> float:
        """Training force RMSE per component of ``coeffs`` from the accumulated sums."""
        rss = self.sum_f2 - 2 * coeffs @ self.b + coeffs @ self.A @ coeffs
        return math.sqrt(max(rss, 0.0) / self.n_components)

    def _constraint_report(self, coeffs: np.ndarray, free: np.ndarray) -> dict[str, float]:
        """Mean pressure on the training frames and force RMSE with the virial constraint and without it."""
        def pressure(c: np.ndarray) -> float:
            missing = (self.virial_required - self.virial_row @ c) / self.n_frames
            return self.constraint.target_bar - missing * KCAL_MOL_A3_TO_BAR

        return {"target_bar": self.constraint.target_bar, "train_pressure_bar": pressure(coeffs),
                "unconstrained_train_pressure_bar": pressure(free), "unconstrained_train_force_rmse": self._rmse(free)}

    def priors(self, coeffs: np.ndarray) -> SumPrior:
        """The fitted potentials as one :class:`Tabulated` prior per kind, summed."""
        by_kind: dict[str, dict[str, dict[str, list[float]]]] = {}
        for term in self.terms.values():
            table = term.basis.table(coeffs[term.columns])
            if term.kind != "pair":
                table["u"] = (np.asarray(table["u"]) - min(table["u"])).tolist()
            by_kind.setdefault(term.kind, {})[term.key] = table
        s = self.settings
        return SumPrior([Tabulated(self.type_names, kind, tables, exclude=s.exclude, intramolecular=s.intramolecular)
                         for kind, tables in by_kind.items()])


def fit_force_matching(
    type_names: list[str],
    frames: Callable[[], Iterable[tuple[CGGraph, np.ndarray]]],
    settings: FMSettings,
    constraint: VirialConstraint | None = None,
) -> tuple[SumPrior, dict[str, Any]]:
    """Two streaming passes over ``frames()`` (graph, reference residual forces): scan ranges, then fit (under ``constraint``)."""
    fm = ForceMatching(type_names, settings, constraint)
    for graph, _ in frames():
        fm.scan(graph)
    fm.build_terms()
    for graph, forces in frames():
        fm.accumulate(graph, forces)
    coeffs, report = fm.solve()
    return fm.priors(coeffs), report
