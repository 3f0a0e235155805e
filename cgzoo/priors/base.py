"""The prior protocol: a torch module mapping a :class:`~cgzoo.neighbors.CGGraph` to one energy per structure.

Every prior is differentiable (forces and stress by autograd), works in float32 and float64, is
batched over structures, and keeps its parameters per bead type, type pair or bonded type tuple.
A prior knows how to describe itself (:meth:`Prior.config`) so it can be rebuilt from a
checkpoint or a YAML file through :func:`cgzoo.priors.build_prior`.

Energies are kcal/mol, lengths Å, angles radians. Parameters given per type tuple use the bead
type names joined by ``-`` (``"W-W"``, ``"E-M-E"``); a tuple and its reverse are the same term.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from cgzoo.geometry import angles, dihedrals, lengths
from cgzoo.neighbors import CGGraph


class Prior(torch.nn.Module):
    """Base class of every prior: ``forward(graph) -> (n_structures,)`` energies in kcal/mol.

    ``cutoff`` is the non-bonded range (Å) the prior needs from the neighbour list (0: none).
    Subclasses set ``self.type_names`` and return their constructor arguments from :meth:`config`.
    """

    cutoff: float = 0.0

    def __init__(self, type_names: list[str] | None = None) -> None:
        super().__init__()
        self.type_names = list(type_names or [])

    def forward(self, graph: CGGraph) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this prior (JSON-serialisable)."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its configuration")

    def extra_repr(self) -> str:
        return f"types={self.type_names}, cutoff={self.cutoff}"


class NoPrior(Prior):
    """The zero prior (``none``): ML-only models use it."""

    def forward(self, graph: CGGraph) -> torch.Tensor:
        return graph.pos.new_zeros(graph.n_structures) + 0.0 * graph.pos.sum()

    def config(self) -> dict[str, Any]:
        return {}


class SumPrior(Prior):
    """The sum of any priors; its cutoff is the largest of theirs.

    Its spec lists its members' specs, which :func:`cgzoo.priors.registry.prior_spec` writes, so this
    module needs no registry.
    """

    def __init__(self, priors: list[Prior]) -> None:
        types = next((p.type_names for p in priors if p.type_names), [])
        super().__init__(types)
        self.priors = torch.nn.ModuleList(priors)
        self.cutoff = max([p.cutoff for p in priors], default=0.0)

    def forward(self, graph: CGGraph) -> torch.Tensor:
        total = graph.pos.new_zeros(graph.n_structures)
        for prior in self.priors:
            total = total + prior(graph)
        return total


def scatter_energy(per_term: torch.Tensor, owner: torch.Tensor, n_structures: int) -> torch.Tensor:
    """Sum per-term energies into their structures (``owner`` = structure index of each term)."""
    out = per_term.new_zeros(n_structures)
    return out.index_add(0, owner, per_term)


# --- parameter tables keyed by type tuples ---------------------------------------------------


class TypeTable(torch.nn.Module):
    """Parameters per bead-type tuple (pair, bond, angle, dihedral), symmetric under reversal.

    ``params`` maps ``"A-B"``-style keys (either direction) to ``{field: value}``; ``default``
    fills tuples that are not listed. The values are an ``nn.Parameter`` (so analytic priors can
    be fitted by gradient descent) and ``defined`` marks which tuples have values at all.
    """

    def __init__(
        self,
        type_names: list[str],
        order: int,
        fields: tuple[str, ...],
        params: dict[str, dict[str, float]],
        default: dict[str, float] | None = None,
        owner: str = "prior",
    ) -> None:
        super().__init__()
        self.type_names, self.order, self.fields, self.owner = list(type_names), order, tuple(fields), owner
        index = {n: i for i, n in enumerate(type_names)}
        shape = (len(type_names),) * order
        values = torch.zeros(*shape, len(fields), dtype=torch.float64)
        defined = torch.zeros(shape, dtype=torch.bool)
        if default is not None:
            values[...] = self._row(default, "default")
            defined[...] = True
        for key, row in params.items():
            names = tuple(key.split("-"))
            if len(names) != order or any(n not in index for n in names):
                raise ValueError(f"{owner}: parameter key {key!r} does not name {order} of the bead types {type_names}")
            idx = tuple(index[n] for n in names)
            for target in (idx, tuple(reversed(idx))):
                values[target] = self._row(row, key)
                defined[target] = True
        self.values = torch.nn.Parameter(values)
        self.register_buffer("defined", defined)

    def _row(self, row: dict[str, float], key: str) -> torch.Tensor:
        missing = [f for f in self.fields if f not in row]
        if missing:
            raise ValueError(f"{self.owner}: {key} lacks {', '.join(missing)}")
        return torch.tensor([float(row[f]) for f in self.fields], dtype=torch.float64)

    def forward(self, types: list[torch.Tensor]) -> torch.Tensor:
        """Parameters (M, n_fields) for M terms with bead types ``types`` (one tensor per position)."""
        idx = tuple(types)
        ok = self.defined[idx]
        if ok.numel() and not bool(ok.all()):
            bad = int((~ok).nonzero()[0])
            key = "-".join(self.type_names[int(t[bad])] for t in types)
            raise ValueError(f"{self.owner}: no parameters for type tuple {key}")
        return self.values[idx]

    def as_dict(self) -> dict[str, dict[str, float]]:
        """The defined entries under canonical keys, e.g. ``{"A-B": {"sigma": 3.2, "epsilon": 0.1}}``."""
        out: dict[str, dict[str, float]] = {}
        for idx in itertools.product(range(len(self.type_names)), repeat=self.order):
            if idx > tuple(reversed(idx)) or not bool(self.defined[idx]):
                continue
            row = self.values[idx].detach()
            out["-".join(self.type_names[i] for i in idx)] = {f: float(v) for f, v in zip(self.fields, row)}
        return out


# --- smooth cutoffs ----------------------------------------------------------------------------


def switching(r: torch.Tensor, r_on: float, r_cut: float) -> torch.Tensor:
    """C² quintic switch: 1 below ``r_on``, 0 above ``r_cut``, smooth value, slope and curvature between."""
    if r_on >= r_cut:
        return (r < r_cut).to(r.dtype)
    x = ((r - r_on) / (r_cut - r_on)).clamp(0.0, 1.0)
    return 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x**2)


# --- internal coordinates --------------------------------------------------------------------


def bond_lengths(graph: CGGraph, index: torch.Tensor) -> torch.Tensor:
    """Minimum-image lengths (Å) of the bonds ``index`` (2,M)."""
    return lengths(*graph.bonded_vectors(index))


def bond_angles(graph: CGGraph, index: torch.Tensor) -> torch.Tensor:
    """Angles θ ∈ [0, π] (radians) at the middle bead of each triplet ``index`` (3,M)."""
    return angles(*graph.bonded_vectors(index))


def dihedral_angles(graph: CGGraph, index: torch.Tensor) -> torch.Tensor:
    """Dihedral angles φ ∈ (−π, π] (IUPAC sign, as MDAnalysis; 0 = cis) of each quadruplet ``index`` (4,M)."""
    return dihedrals(*graph.bonded_vectors(index))
