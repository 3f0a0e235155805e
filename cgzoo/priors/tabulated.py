"""Tabulated priors: cubic Hermite spline tables per type pair or bonded type tuple.

A table is a uniform grid x₀…x_{P−1} with the energy U and its derivative dU/dx at each point;
between points U is the cubic Hermite interpolant (C¹, and exact for any cubic spline whose
knots lie on the grid, which is how fitted splines are stored). Outside the grid:

* **pairs**, r < x₀: a repulsive power law U(x₀) + (x₀·F₀/12)·((x₀/r)¹² − 1) that continues the
  value and slope at x₀, with the force there at least ``min_wall_force`` (1 kcal/mol/Å) so the
  core stays repulsive even where the table is flat; r ≥ x_{P−1}: zero (tables from cgzoo end at
  U = 0, imported ones are checked for it at import);
* **bonds and angles**, outside [x₀, x_{P−1}]: a harmonic wall U_e + U'_e·d + ½·``wall``·d²
  continuing the value and slope at the nearest end;
* **dihedrals**: periodic, the grid must span 2π (−π…π).

Energies never become NaN: every branch is finite for r > 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import Prior, scatter_energy
from cgzoo.priors.terms import internal_coordinate, pair_mask, term_index
from cgzoo.terms import KINDS


def hermite(x: torch.Tensor, ids: torch.Tensor, x0: torch.Tensor, dx: torch.Tensor, u: torch.Tensor,
            du: torch.Tensor, n_points: torch.Tensor) -> torch.Tensor:
    """Cubic Hermite interpolation at ``x`` of table rows ``ids`` of ``u``/``du``, clamped to each grid.

    ``x0``, ``dx``, ``n_points`` are per term; only the two bracketing points of each term are
    gathered, so the cost is linear in the number of terms whatever the table length.
    """
    t_full = (x - x0) / dx
    k = torch.clamp(torch.floor(t_full.detach()).long(), min=0)
    k = torch.minimum(k, n_points - 2)
    t = t_full - k.to(x.dtype)
    u0, u1 = u[ids, k].to(x.dtype), u[ids, k + 1].to(x.dtype)
    m0, m1 = du[ids, k].to(x.dtype) * dx, du[ids, k + 1].to(x.dtype) * dx
    t2, t3 = t * t, t * t * t
    return (2 * t3 - 3 * t2 + 1) * u0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * u1 + (t3 - t2) * m1


class Tabulated(Prior):
    """Spline-table prior of one ``kind``: ``pair``, ``bond``, ``angle`` or ``dihedral``.

    ``tables`` maps type keys (``"A-B"``, ``"E-M-E"``…) to ``{"x": grid, "u": energies, "du": dU/dx}``
    (``du`` optional: then it is estimated by finite differences of ``u``). x in Å for pairs and
    bonds, radians for angles and dihedrals; u in kcal/mol. Pair options ``exclude`` and
    ``intramolecular`` are as in :class:`~cgzoo.priors.terms.PairPrior`; the cutoff of a pair
    prior is the largest table end.
    """

    def __init__(self, type_names: list[str], kind: str, tables: dict[str, dict[str, Any]], exclude: int = 3,
                 intramolecular: bool = True, wall: float = 50.0, min_wall_force: float = 1.0) -> None:
        super().__init__(type_names)
        if kind not in KINDS:
            raise ValueError(f"Tabulated: kind must be one of {sorted(KINDS)}, got {kind!r}")
        if not tables:
            raise ValueError(f"Tabulated {kind}: no tables given")
        self.kind, self.order = kind, KINDS[kind]
        self.exclude, self.intramolecular = int(exclude), bool(intramolecular)
        self.wall, self.min_wall_force = float(wall), float(min_wall_force)
        index = {n: i for i, n in enumerate(type_names)}
        lookup = torch.full((len(type_names),) * self.order, -1, dtype=torch.long)
        grids = []
        for t, (key, table) in enumerate(tables.items()):
            names = tuple(key.split("-"))
            if len(names) != self.order or any(n not in index for n in names):
                raise ValueError(f"Tabulated {kind}: key {key!r} does not name {self.order} of the bead types {type_names}")
            idx = tuple(index[n] for n in names)
            lookup[idx] = t
            lookup[tuple(reversed(idx))] = t
            grids.append(_check_grid(kind, key, table))
        width = max(len(g[0]) for g in grids)
        u = torch.zeros(len(grids), width, dtype=torch.float64)
        du = torch.zeros_like(u)
        for t, (x, uu, dd) in enumerate(grids):
            u[t, : len(x)], du[t, : len(x)] = torch.as_tensor(uu), torch.as_tensor(dd)
        self.keys = list(tables)
        self.register_buffer("lookup", lookup)
        self.register_buffer("x0", torch.tensor([g[0][0] for g in grids], dtype=torch.float64))
        self.register_buffer("dx", torch.tensor([g[0][1] - g[0][0] for g in grids], dtype=torch.float64))
        self.register_buffer("n_points", torch.tensor([len(g[0]) for g in grids], dtype=torch.long))
        self.register_buffer("u", u)
        self.register_buffer("du", du)
        self.cutoff = max(float(g[0][-1]) for g in grids) if kind == "pair" else 0.0

    # -- evaluation ----------------------------------------------------------------------------

    def table_ids(self, types: list[torch.Tensor]) -> torch.Tensor:
        """Table index of each term; ``ValueError`` naming a type tuple that has no table."""
        ids = self.lookup[tuple(types)]
        if ids.numel() and bool((ids < 0).any()):
            bad = int((ids < 0).nonzero()[0])
            key = "-".join(self.type_names[int(t[bad])] for t in types)
            raise ValueError(f"Tabulated {self.kind}: no table for type tuple {key}")
        return ids

    def energy_of(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Energy (kcal/mol) at coordinates ``x`` for terms using tables ``ids``, with extrapolation."""
        dtype = x.dtype
        x0, dx, n = self.x0[ids].to(dtype), self.dx[ids].to(dtype), self.n_points[ids]
        x1 = x0 + dx * (n - 1).to(dtype)
        if self.kind == "dihedral":
            x = torch.remainder(x - x0, 2 * math.pi) + x0
        inside = hermite(x.clamp(min=x0, max=x1), ids, x0, dx, self.u, self.du, n)  # clamp: full gradient at ties
        if self.kind == "dihedral":
            return inside
        u_lo, s_lo = self.u[ids, 0].to(dtype), self.du[ids, 0].to(dtype)
        u_hi, s_hi = self.u[ids, n - 1].to(dtype), self.du[ids, n - 1].to(dtype)
        if self.kind == "pair":
            force = torch.clamp(-s_lo, min=self.min_wall_force)
            safe = torch.clamp(x, min=1e-3 * x0)
            core = u_lo + x0 * force / 12.0 * ((x0 / safe) ** 12 - 1.0)
            return torch.where(x < x0, core, torch.where(x >= x1, torch.zeros_like(x), inside))
        below, above = x - x0, x - x1
        low = u_lo + s_lo * below + 0.5 * self.wall * below**2
        high = u_hi + s_hi * above + 0.5 * self.wall * above**2
        return torch.where(x < x0, low, torch.where(x > x1, high, inside))

    def forward(self, graph: CGGraph) -> torch.Tensor:
        if self.kind == "pair":
            r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
            mask = pair_mask(graph, r, self.cutoff, self.exclude, self.intramolecular)
            i, j = graph.edge_index[:, mask]
            ids = self.table_ids([graph.bead_type[i], graph.bead_type[j]])
            return scatter_energy(self.energy_of(r[mask], ids), graph.batch[i], graph.n_structures)
        index = term_index(graph, self.order)
        if index.shape[1] == 0:
            return graph.pos.new_zeros(graph.n_structures) + 0.0 * graph.pos.sum()
        ids = self.table_ids([graph.bead_type[k] for k in index])
        q = internal_coordinate(graph, index)
        return scatter_energy(self.energy_of(q, ids), graph.batch[index[0]], graph.n_structures)

    # -- description ---------------------------------------------------------------------------

    def grid(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The table of ``key`` as numpy arrays (x, U, dU/dx)."""
        t = self.keys.index(key)
        n = int(self.n_points[t])
        x = float(self.x0[t]) + float(self.dx[t]) * np.arange(n)
        return x, self.u[t, :n].cpu().numpy().copy(), self.du[t, :n].cpu().numpy().copy()

    def evaluate(self, key: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy and force −dU/dx of table ``key`` at ``x`` (numpy, float64), extrapolation included."""
        t = self.keys.index(key)
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).requires_grad_(True)
        ids = torch.full((len(xt),), t, dtype=torch.long)
        with torch.enable_grad():
            energy = self.energy_of(xt, ids)
            (grad,) = torch.autograd.grad(energy.sum(), xt)
        return energy.detach().numpy(), -grad.numpy()

    def config(self) -> dict[str, Any]:
        tables = {}
        for key in self.keys:
            x, u, du = self.grid(key)
            tables[key] = {"x": x.tolist(), "u": u.tolist(), "du": du.tolist()}
        return {"type_names": self.type_names, "kind": self.kind, "tables": tables, "exclude": self.exclude,
                "intramolecular": self.intramolecular, "wall": self.wall, "min_wall_force": self.min_wall_force}


def _check_grid(kind: str, key: str, table: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one table: uniform increasing grid, finite values; fill ``du`` by differences if absent."""
    x = np.asarray(table["x"], dtype=np.float64)
    u = np.asarray(table["u"], dtype=np.float64)
    if x.ndim != 1 or len(x) < 2 or u.shape != x.shape:
        raise ValueError(f"Tabulated {kind} {key}: need matching 1-D x and u with at least 2 points")
    step = np.diff(x)
    if np.any(step <= 0) or not np.allclose(step, step[0], rtol=1e-6, atol=1e-9):
        raise ValueError(f"Tabulated {kind} {key}: grid must be uniform and increasing")
    du = np.asarray(table["du"], dtype=np.float64) if table.get("du") is not None else np.gradient(u, x)
    if not (np.isfinite(u).all() and np.isfinite(du).all()):
        raise ValueError(f"Tabulated {kind} {key}: table holds NaN or infinite values")
    if kind == "pair" and x[0] <= 0:
        raise ValueError(f"Tabulated pair {key}: grid must start at r > 0")
    if kind == "dihedral" and not math.isclose(x[-1] - x[0], 2 * math.pi, rel_tol=1e-4):
        raise ValueError(f"Tabulated dihedral {key}: grid must span 2π, spans {x[-1] - x[0]:.4f}")
    return x, u, du
