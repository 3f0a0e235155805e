"""Split a CG model for MD engines: its pair-additive part as spline tables, the rest as a torch network.

Every prior member (pairs of any family, bonds, angles, dihedrals, tabulated or analytic) and a
``pair_mlp`` network that is one pair function per type pair in the system at hand (its learned
pair energy times the model's energy scale, evaluated from the trained network itself, not
refitted) are summed per term kind and type key into one
:class:`~cgzoo.priors.tabulated.Tabulated` per kind, on grids wide enough for MD: pairs from
half the closest start of the model's tables (at most 1 Å, deep in the repulsive core) to the
cutoff, bonds from 0.02 Å to 6 Å past the widest table, angles over [0, π] and dihedrals over
one period. Outside those grids the tables extrapolate as
every cgzoo table does (an r⁻¹² core, harmonic walls on bonds and angles). A ``pair_mlp`` is such a
function unless it is ``bond_aware`` and sees intramolecular pairs: then its pair function differs per
bond separation, while in a system whose only pairs it sees are between molecules (one-bead
water, or every intramolecular pair excluded by its own rule) its intermolecular function is the
whole network. A graph network (SchNet, the equivariant net, such a bond-aware ``pair_mlp``, any
user class) stays a torch model, :attr:`EngineModel.network`,
which an engine runs as an extra force. Per-bead energy shifts of a network are constants
(:attr:`EngineModel.energy_offset`): they move energies, never forces.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cgzoo.errors import CGZooError
from cgzoo.models.base import CGModel
from cgzoo.models.pair_mlp import PairMLP
from cgzoo.neighbors import CGGraph, TopologyCache, batch_graph
from cgzoo.priors.base import Prior, SumPrior
from cgzoo.priors.export import kind_of, members, probe_energy
from cgzoo.priors.tabulated import Tabulated
from cgzoo.terms import BONDED, KINDS, canonical_names

#: grid spacing of engine tables: Å for pairs and bonds, radians for angles and dihedrals
SPACING = {"pair": 0.005, "bond": 0.002, "angle": math.radians(0.1), "dihedral": math.radians(0.5)}
#: engine bond tables reach this far (Å) past the widest bond table or r₀ of the model
BOND_MARGIN = 6.0


class NotRepresentable(CGZooError):
    """A model part an engine cannot reproduce exactly; the message names the part and why."""


class NetworkPair(Prior):
    """A ``pair_mlp`` network as a pair prior: scale × its pair energy, with the network's exclusions."""

    def __init__(self, net: PairMLP, energy_scale: float) -> None:
        super().__init__(net.type_names)
        self.net, self.energy_scale = net, float(energy_scale)
        self.cutoff, self.exclude, self.intramolecular = net.cutoff, net.exclude, net.intramolecular

    def forward(self, graph: CGGraph) -> torch.Tensor:
        return self.energy_scale * self.net(graph)


@dataclass
class EngineModel:
    """A model as engines see it: ``pairs`` (one pair table per exclusion rule), bonded ``tables`` per kind, an
    optional torch ``network``."""

    type_names: list[str]
    pairs: list[Tabulated]
    tables: dict[str, Tabulated]
    network: CGModel | None
    #: constant energy per bead of each type (kcal/mol), added to engine energies to match the model's
    energy_offset: np.ndarray

    @property
    def cutoff(self) -> float:
        """Pair cutoff (Å) of the tables; 0 when the model has no pair terms."""
        return max([p.cutoff for p in self.pairs], default=0.0)

    def offset(self, bead_types: np.ndarray) -> float:
        """Total constant energy (kcal/mol) of a system with per-bead type indices ``bead_types``."""
        return float(self.energy_offset[np.asarray(bead_types, dtype=int)].sum())

    def torch_model(self) -> CGModel:
        """The tabulated representation as a cgzoo model (what every engine computes), for error reports."""
        prior = SumPrior([*self.pairs, *self.tables.values()])
        if self.network is None:
            return CGModel(prior, _ZeroNetwork(self.type_names), energy_scale=1.0,
                           type_shift=self.energy_offset.tolist()).double().eval()
        net = copy.deepcopy(self.network)
        return CGModel(prior, net.net, energy_scale=float(net.energy_scale),
                       type_shift=net.type_shift.tolist()).double().eval()


class _ZeroNetwork(torch.nn.Module):
    """A network of zero energy, so a tables-only torch model still carries the per-type energy shift."""

    def __init__(self, type_names: list[str]) -> None:
        super().__init__()
        self.type_names, self.cutoff = list(type_names), 0.0

    def forward(self, graph: CGGraph) -> torch.Tensor:
        return graph.pos.new_zeros(graph.n_structures) + 0.0 * graph.pos.sum()


def tabulable_network(net: torch.nn.Module | None, intramolecular_pairs: bool) -> bool:
    """Whether ``net`` is one pair function per type pair, which pair tables hold: a ``pair_mlp`` that is not
    bond-aware, or a bond-aware one where ``intramolecular_pairs`` is False (the system has no intramolecular pair
    the network sees, so every pair it sees is intermolecular, one function per type pair)."""
    return isinstance(net, PairMLP) and not (net.bond_aware and intramolecular_pairs)


def sees_intramolecular_pairs(net: torch.nn.Module | None,
                              excluded: Callable[[int, bool], set[tuple[int, int]]] | None) -> bool:
    """Whether a bond-aware ``pair_mlp`` ``net`` sees intramolecular pairs in the system whose ``excluded`` pairs are
    given (see :func:`split_model`; ``excluded(0, False)`` is every intramolecular pair): any its own rule keeps.

    True when the system is unknown (``excluded`` None), and for every other network, whose tabulability does not
    depend on it (so large systems are not searched for nothing).
    """
    if excluded is None or not (isinstance(net, PairMLP) and net.bond_aware):
        return True
    return bool(excluded(0, False) - excluded(net.exclude, net.intramolecular))


def untabulable_reason(net: torch.nn.Module) -> str:
    """Why no pair table holds ``net``, as a clause for one-line errors."""
    if isinstance(net, PairMLP):
        return ("the bond-aware PairMLP network has one pair function per bond separation, not one per type pair, "
                "and this system has intramolecular pairs it does not exclude")
    return f"the {type(net).__name__} network is not pair-additive"


def graph_network(model: CGModel, intramolecular_pairs: bool) -> torch.nn.Module | None:
    """The model's network when pair tables cannot hold it in a system with or without ``intramolecular_pairs`` the
    network sees (see :func:`tabulable_network`), else None."""
    if model.net is None or tabulable_network(model.net, intramolecular_pairs):
        return None
    return model.net


def topology_keys(type_names: list[str], bead_types: np.ndarray, terms: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Type keys a system uses: every pair of its bead types, and the canonical key of each bonded term."""
    present = sorted(set(np.asarray(bead_types, dtype=int).tolist()))
    keys = {"pair": [f"{type_names[a]}-{type_names[b]}" for a, b in itertools.combinations_with_replacement(present, 2)]}
    for kind, name in BONDED.items():
        seen: dict[str, None] = {}
        for term in np.asarray(terms.get(name, np.zeros((0, KINDS[kind]))), dtype=int).reshape(-1, KINDS[kind]):
            seen[canonical_names([type_names[int(bead_types[i])] for i in term])] = None
        keys[kind] = list(seen)
    return keys


def split_model(model: CGModel, keys: dict[str, list[str]],
                excluded: Callable[[int, bool], set[tuple[int, int]]] | None = None) -> EngineModel:
    """Tables for every pair-additive part of ``model`` over ``keys`` (see :func:`topology_keys`) and its network.

    Pair members are summed into one table per exclusion rule; ``excluded(exclude, intramolecular)``
    gives the pairs a rule skips in the system at hand, and rules that skip the same pairs there
    share a table (always, for one-bead molecules). Whether a bond-aware ``pair_mlp`` is tabulated
    depends on that system too (:func:`sees_intramolecular_pairs`); without ``excluded`` it is not.
    Raises :class:`NotRepresentable` naming a prior member of unknown kind.
    """
    model = copy.deepcopy(model).cpu().double().eval()
    type_names = list(model.type_names)
    intramolecular = sees_intramolecular_pairs(model.net, excluded)
    parts = additive_parts(model, intramolecular)
    network, offset = None, np.zeros(len(type_names))
    if model.net is not None:
        scale = float(model.energy_scale)
        if tabulable_network(model.net, intramolecular):
            offset = scale * model.type_shift.double().numpy()
        else:  # the network with its scale and shifts, as a model of its own
            network = CGModel(None, model.net, mode="ml_only", energy_scale=scale, type_shift=model.type_shift.tolist())
    tables = {}
    for kind, chosen in parts.items():
        if kind != "pair" and chosen and keys.get(kind):
            tables[kind] = _tabulate(chosen, kind, keys[kind], type_names)
    pairs = [_tabulate(group, "pair", keys["pair"], type_names, rule)
             for rule, group in pair_groups(parts["pair"], excluded).items() if keys.get("pair")]
    return EngineModel(type_names, pairs, tables, network, offset)


def additive_parts(model: CGModel, intramolecular_pairs: bool) -> dict[str, list[Prior]]:
    """The pair-additive members of ``model`` by term kind: prior members, and a ``pair_mlp`` network that is one pair
    function per type pair in a system with or without ``intramolecular_pairs`` it sees (:func:`tabulable_network`)
    as a pair term.

    Raises :class:`NotRepresentable` naming a prior member of unknown kind.
    """
    parts: dict[str, list[Prior]] = {kind: [] for kind in KINDS}
    for member in members(model.prior):
        kind = kind_of(member)
        if kind is None:
            raise NotRepresentable(f"prior member {type(member).__name__} is not a pair, bond, angle or dihedral term "
                                   "cgzoo can tabulate")
        parts[kind].append(member)
    if tabulable_network(model.net, intramolecular_pairs):
        parts["pair"].append(NetworkPair(model.net, float(model.energy_scale)))
    return parts


def pair_groups(chosen: list[Prior], excluded: Callable[[int, bool], set[tuple[int, int]]] | None
                ) -> dict[tuple[int, bool], list[Prior]]:
    """Pair members by exclusion rule ``(exclude, intramolecular)``; rules that skip the same pairs in the system at
    hand (``excluded``) are one group, under the first of them."""
    groups: dict[tuple[int, bool], list[Prior]] = {}
    seen: dict[frozenset, tuple[int, bool]] = {}
    for rule in sorted({(p.exclude, p.intramolecular) for p in chosen}):
        same = seen.setdefault(frozenset(excluded(*rule)), rule) if excluded is not None else rule
        groups.setdefault(same, []).extend(p for p in chosen if (p.exclude, p.intramolecular) == rule)
    return groups


def engine_grid(chosen: list[Prior], kind: str) -> np.ndarray:
    """The grid of an engine table of ``kind`` for the members ``chosen`` (see module docstring)."""
    step = SPACING[kind]
    if kind == "angle":
        return np.linspace(0.0, math.pi, round(math.pi / step) + 1)
    if kind == "dihedral":
        return np.linspace(-math.pi, math.pi, round(2 * math.pi / step) + 1)
    tabs = [p for p in chosen if isinstance(p, Tabulated)]
    if kind == "pair":
        lo = 0.5 * min([float(t.x0.min()) for t in tabs] + [2.0])  # LAMMPS stops at a pair closer than its table
        hi = max(p.cutoff for p in chosen)
        return lo + step * np.arange(round((hi - lo) / step) + 1)
    ends = [float((t.x0 + t.dx * (t.n_points - 1)).max()) for t in tabs]
    for p in chosen:
        if hasattr(p, "table") and "r0" in getattr(p, "fields", ()):
            values = p.table.values.detach()[..., p.fields.index("r0")][p.table.defined]
            ends.append(float(values.max()))
    hi = max(ends + [3.0]) + BOND_MARGIN
    return 0.02 + step * np.arange(round((hi - 0.02) / step) + 1)


def _tabulate(chosen: list[Prior], kind: str, keys: list[str], type_names: list[str],
              rule: tuple[int, bool] | None = None) -> Tabulated:
    """The summed members of one kind as a :class:`Tabulated` on :func:`engine_grid`, U and dU/dx probed from them."""
    x = engine_grid(chosen, kind)
    index = {n: i for i, n in enumerate(type_names)}
    tables = {}
    for key in keys:
        types = tuple(index[n] for n in key.split("-"))
        try:
            u, du = probe_energy_and_slope(chosen, kind, types, x)
        except ValueError as exc:
            raise NotRepresentable(f"{kind} {key}: {exc}") from None
        if kind == "pair":
            u = u - u[-1]
        if kind == "dihedral":
            u[-1], du[-1] = u[0], du[0]
        if not (np.isfinite(u).all() and np.isfinite(du).all()):
            raise NotRepresentable(f"{kind} {key}: the model gives non-finite energies on the engine grid "
                                   f"[{x[0]:.3g}, {x[-1]:.3g}]")
        tables[key] = {"x": x.tolist(), "u": u.tolist(), "du": du.tolist()}
    options: dict[str, Any] = {"exclude": rule[0], "intramolecular": rule[1]} if rule else {}
    return Tabulated(type_names, kind, tables, **options)


def probe_energy_and_slope(chosen: list[Prior], kind: str, types: tuple[int, ...],
                           x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy U(x) of the members and dU/dx by central differences (float64, step 1e-6 of the coordinate),
    one-sided at the ends of the angle range, where a probe past 0 or π would fold back."""
    h = 1e-6
    lo, hi = x - h, x + h
    if kind == "angle":
        lo, hi = np.clip(lo, 0.0, math.pi), np.clip(hi, 0.0, math.pi)
    u = probe_energy(chosen, kind, types, x)
    du = (probe_energy(chosen, kind, types, hi) - probe_energy(chosen, kind, types, lo)) / (hi - lo)
    return u, du


def tabulation_error(engine: EngineModel, model: CGModel, keys: dict[str, list[str]],
                     excluded: Callable[[int, bool], set[tuple[int, int]]] | None = None) -> dict[str, dict[str, float]]:
    """Max |ΔF| (kcal/mol/Å or kcal/mol/rad; where, and relative to max(|F|, 1)) and |ΔU| of each table against the
    model's members at the grid midpoints, the points farthest from the tabulated values."""
    model = copy.deepcopy(model).cpu().double().eval()
    split = additive_parts(model, sees_intramolecular_pairs(model.net, excluded))
    index = {n: i for i, n in enumerate(engine.type_names)}
    report: dict[str, dict[str, float]] = {}
    named = [(kind, table, split[kind]) for kind, table in engine.tables.items()]
    groups = pair_groups(split["pair"], excluded).values()  # the grouping split_model made, in its order
    named += [("pair", table, group) for table, group in zip(engine.pairs, groups)]
    for kind, table, members_of_kind in named:
        label = kind if kind != "pair" or len(engine.pairs) == 1 else f"pair (exclude {table.exclude})"
        for key in keys.get(kind, []):
            types = tuple(index[n] for n in key.split("-"))
            x = np.asarray(table.grid(key)[0])
            mid = 0.5 * (x[1:] + x[:-1])
            if kind == "pair":
                mid = mid[:-1]  # the last interval ends at the cutoff, where the members' own smoothing acts
            u_ref, du_ref = probe_energy_and_slope(members_of_kind, kind, types, mid)
            u_tab, f_tab = table.evaluate(key, mid)
            if kind == "pair":
                u_ref = u_ref - probe_energy(members_of_kind, kind, types, x[-1:])[0]
            err = np.abs(f_tab + du_ref)
            worst = int(np.argmax(err))
            report[f"{label} {key}"] = {"max_dF": float(err[worst]), "at": float(mid[worst]),
                                        "max_rel_dF": float(np.max(err / np.maximum(np.abs(du_ref), 1.0))),
                                        "max_dU": float(np.max(np.abs(u_tab - u_ref)))}
    return report


def frame_force_error(engine: EngineModel, model: CGModel, positions: np.ndarray, boxes: np.ndarray,
                      bead_types: np.ndarray, molecule_ids: np.ndarray, terms: dict[str, np.ndarray]) -> dict[str, float]:
    """Max and RMS |ΔF| (kcal/mol/Å) and max |ΔE| (kcal/mol) of the tabulated model against ``model`` on frames."""
    tabulated = engine.torch_model()
    reference = copy.deepcopy(model).cpu().double().eval()
    cache = TopologyCache(len(bead_types), terms.get("bonds", np.zeros((0, 2))), molecule_ids)
    cutoff = max(reference.cutoff, tabulated.cutoff)
    max_df, sq, n, max_de = 0.0, 0.0, 0, 0.0
    for pos, box in zip(positions, boxes):
        graph = batch_graph(pos[None], box[None], bead_types, cache, cutoff, terms.get("bonds"), terms.get("angles"),
                            terms.get("dihedrals"))
        a, b = ({k: v.detach() for k, v in m(graph).items()} for m in (reference, tabulated))
        diff = (a["forces"] - b["forces"]).numpy()
        max_df = max(max_df, float(np.abs(diff).max()))
        sq, n = sq + float((diff**2).sum()), n + diff.size
        max_de = max(max_de, abs(float(a["energy"][0] - b["energy"][0])))
    return {"max_dF": max_df, "rms_dF": math.sqrt(sq / max(n, 1)), "max_dE": max_de, "frames": len(positions)}
