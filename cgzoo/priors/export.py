"""Turn any prior — analytic, fitted, summed or user-defined — into one spline table per term kind for export.

Each member of a (sum) prior is probed on tiny test structures: two beads of different
molecules at distance r for pair terms, a bonded dimer/trimer/quadruplet at a given bond
length, angle or dihedral for bonded terms. Members of the same kind are summed, so a
force-matched table plus a fitted LJ becomes one LAMMPS/GROMACS pair table per type pair.
A user-defined prior whose kind cannot be told is reported and skipped, never guessed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from scipy.interpolate import CubicSpline

from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.priors.base import NoPrior, Prior, SumPrior
from cgzoo.priors.tabulated import Tabulated
from cgzoo.priors.terms import BondedPrior, PairPrior
from cgzoo.tables import lammps_input, write_tables
from cgzoo.terms import KINDS

#: bond length (Å) used for the bonds of angle and dihedral probes
PROBE_BOND = 3.0


def members(prior: Prior) -> list[Prior]:
    """The leaf priors of a (possibly nested) sum."""
    if isinstance(prior, SumPrior):
        return [leaf for p in prior.priors for leaf in members(p)]
    return [] if isinstance(prior, NoPrior) else [prior]


def kind_of(prior: Prior) -> str | None:
    """``pair``/``bond``/``angle``/``dihedral`` for cgzoo's own families, ``None`` when unknown."""
    if isinstance(prior, Tabulated):
        return prior.kind
    if isinstance(prior, PairPrior):
        return "pair"
    if isinstance(prior, BondedPrior):
        return {2: "bond", 3: "angle", 4: "dihedral"}[prior.order]
    return None


def _probe_positions(kind: str, x: np.ndarray) -> np.ndarray:
    """Bead positions (M, n, 3) realising coordinate values ``x`` for a term of ``kind``."""
    m = len(x)
    zeros = np.zeros(m)
    if kind in ("pair", "bond"):
        return np.stack([np.zeros((m, 3)), np.stack([x, zeros, zeros], 1)], axis=1)
    a = np.stack([np.full(m, PROBE_BOND), zeros, zeros], 1)
    b = np.zeros((m, 3))
    c = PROBE_BOND * np.stack([np.cos(x), np.sin(x), zeros], 1) if kind == "angle" else np.tile([0.0, PROBE_BOND, 0.0], (m, 1))
    if kind == "angle":
        return np.stack([a, b, c], axis=1)
    # dihedral: a on +x, b at origin, c on +y, d rotated by φ about the b→c axis (0 = cis)
    d = c + PROBE_BOND * np.stack([np.cos(x), zeros, -np.sin(x)], 1)
    return np.stack([a, b, c, d], axis=1)


def probe_energy(priors: list[Prior], kind: str, types: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    """Summed energy (kcal/mol) of ``priors`` for one term of bead ``types`` at coordinates ``x``."""
    n = KINDS[kind]
    pos = _probe_positions(kind, x)
    cutoff = max([p.cutoff for p in priors] + [1.0])
    box = np.eye(3) * (2.0 * cutoff + 4.0 * PROBE_BOND + float(np.max(np.abs(pos))) + 1.0)
    if kind == "pair":
        bonds, molecules = np.zeros((0, 2), int), np.arange(2)
    else:
        bonds, molecules = np.array([[k, k + 1] for k in range(n - 1)]), np.zeros(n, int)
    lists = {"angle": np.array([[0, 1, 2]]), "dihedral": np.array([[0, 1, 2, 3]])}
    graph = batch_graph(pos, np.tile(box, (len(x), 1, 1)), np.array(types), TopologyCache(n, bonds, molecules),
                        cutoff if kind == "pair" else 0.0, bonds if kind == "bond" else None,
                        lists.get("angle") if kind == "angle" else None, lists.get("dihedral") if kind == "dihedral" else None)
    with torch.no_grad():
        return sum(p.double()(graph).numpy() for p in priors)


def default_grid(priors: list[Prior], kind: str) -> np.ndarray:
    """A fine grid covering the terms' ranges: tables' own grids, else physically sensible spans."""
    tabs = [p for p in priors if isinstance(p, Tabulated)]
    if kind == "dihedral":
        return np.linspace(-math.pi, math.pi, 361)
    if kind == "angle":
        return np.linspace(0.0, math.pi, 361)
    if kind == "pair":
        lo = min([float(t.x0.min()) for t in tabs] + [2.0]) * 0.8
        return np.arange(lo, max(p.cutoff for p in priors) + 1e-9, 0.01)
    lows = [float(t.x0.min()) for t in tabs]
    highs = [float((t.x0 + t.dx * (t.n_points - 1)).max()) for t in tabs]
    for p in priors:
        if isinstance(p, BondedPrior):
            r0 = p.table.values.detach()[..., p.fields.index("r0")][p.table.defined]
            lows.append(float(r0.min()) - 1.0)
            highs.append(float(r0.max()) + 1.0)
    return np.arange(max(0.05, min(lows)), max(highs) + 1e-9, 0.002)


def tabulate(prior: Prior, kind: str, keys: list[str], type_names: list[str]) -> Tabulated | None:
    """One :class:`Tabulated` of ``kind`` summing every member of ``prior`` of that kind, for ``keys``."""
    chosen = [p for p in members(prior) if kind_of(p) == kind]
    if not chosen or not keys:
        return None
    x = default_grid(chosen, kind)
    index = {n: i for i, n in enumerate(type_names)}
    tables = {}
    for key in keys:
        u = probe_energy(chosen, kind, tuple(index[n] for n in key.split("-")), x)
        if kind == "pair":
            u = u - u[-1]
        spline = CubicSpline(x, u, bc_type="periodic" if kind == "dihedral" else "not-a-knot")
        tables[key] = {"x": x.tolist(), "u": u.tolist(), "du": spline(x, 1).tolist()}
    options = {}
    pair_like = [p for p in chosen if hasattr(p, "exclude")]
    if pair_like:
        options = {"exclude": pair_like[0].exclude, "intramolecular": pair_like[0].intramolecular}
    return Tabulated(type_names, kind, tables, **options)


def unexportable(prior: Prior) -> list[str]:
    """Names of members whose term kind is unknown (user classes), which export skips."""
    return [type(p).__name__ for p in members(prior) if kind_of(p) is None]


def export_tables(prior: Prior, out_dir: str | Path, formats: list[str], keys: dict[str, list[str]],
                  type_names: list[str], overwrite: bool = False) -> list[Path]:
    """Write LAMMPS/GROMACS/VOTCA tables of every term kind present; returns the written paths."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    for kind in KINDS:
        table = tabulate(prior, kind, keys.get(kind, []), type_names)
        if table is None:
            continue
        for fmt in formats:
            target = out_dir / fmt
            target.mkdir(parents=True, exist_ok=True)
            dest = target / f"{kind}.table" if fmt == "lammps" else target
            written.extend(write_tables(table, dest, fmt=fmt, overwrite=overwrite))
            if fmt == "lammps":
                snippet = target / f"in.{kind}_table"
                ids = {name: k for k, name in enumerate(type_names, start=1)} if kind == "pair" else None
                snippet.write_text(lammps_input(table, dest.name, ids))
                written.append(snippet)
    return written
