"""Split a CG model for MD engines: its pair-additive part as spline tables, the rest as a torch network.

Every prior member (pairs of any family, bonds, angles, dihedrals, tabulated or analytic) and a
``pair_mlp`` network that pair tables hold in the system at hand (its learned pair energy times
the model's energy scale, evaluated from the trained network itself, not refitted) are summed
per term kind and type key (pairs: per exclusion rule too) into one
:class:`~cgzoo.priors.tabulated.Tabulated` per kind, on grids wide enough for MD: pairs from
half the closest start of the model's tables (at most 1 Å, deep in the repulsive core) to the
cutoff, bonds from 0.02 Å to 6 Å past the widest table, angles over [0, π] and dihedrals over
one period. Outside those grids the tables extrapolate as
every cgzoo table does (an r⁻¹² core, harmonic walls on bonds and angles). A ``bond_aware``
``pair_mlp`` has one pair function per bond separation: pair tables hold it where the
intramolecular pairs it sees are all 1-2, 1-3 or 1-4 pairs (none, for one-bead water), through
tables under several exclusion rules (:func:`network_pairs`), but not where it sees pairs further
apart in a molecule, which engines count as intermolecular. A graph network (SchNet, the
equivariant net, such a bond-aware ``pair_mlp``, any user class) stays a torch model,
:attr:`EngineModel.network`, which an engine runs as an extra force. Per-bead energy shifts of a
network are constants (:attr:`EngineModel.energy_offset`): they move energies, never forces.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgzoo.errors import CGZooError
from cgzoo.models.base import CGModel
from cgzoo.models.pair_mlp import PairMLP
from cgzoo.neighbors import FAR, CGGraph, TopologyCache, batch_graph
from cgzoo.priors.base import Prior, SumPrior, scatter_energy
from cgzoo.priors.export import kind_of, members, probe_energy
from cgzoo.priors.tabulated import Tabulated
from cgzoo.priors.terms import pair_mask
from cgzoo.tables import lammps_input, write_tables
from cgzoo.terms import BONDED, KINDS, canonical_names

#: grid spacing of engine tables: Å for pairs and bonds, radians for angles and dihedrals
SPACING = {"pair": 0.005, "bond": 0.002, "angle": math.radians(0.1), "dihedral": math.radians(0.5)}
#: engine bond tables reach this far (Å) past the widest bond table or r₀ of the model
BOND_MARGIN = 6.0


class NotRepresentable(CGZooError):
    """A model part an engine cannot reproduce exactly; the message names the part and why."""


class NetworkPair(Prior):
    """A ``pair_mlp`` network as a pair prior: scale × Σ_c w_c × its pair function of bond-separation class c (an
    ``edge_sep`` value; by default its intermolecular one, w_0 = 1) on every pair the exclusion rule keeps (by default
    the network's own; ``exclude`` replaces its bond count)."""

    def __init__(self, net: PairMLP, energy_scale: float, classes: dict[int, float] | None = None,
                 exclude: int | None = None) -> None:
        super().__init__(net.type_names)
        self.net, self.energy_scale, self.classes = net, float(energy_scale), dict(classes or {0: 1.0})
        self.cutoff, self.intramolecular = net.cutoff, net.intramolecular
        self.exclude = net.exclude if exclude is None else int(exclude)

    def forward(self, graph: CGGraph) -> torch.Tensor:
        r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
        mask = pair_mask(graph, r, self.cutoff, self.exclude, self.intramolecular)
        i, j = graph.edge_index[:, mask]
        ti, tj = graph.bead_type[i], graph.bead_type[j]
        energy = sum(w * self.net.pair_energy(r[mask], ti, tj, c) for c, w in self.classes.items())
        return self.energy_scale * scatter_energy(energy, graph.batch[i], graph.n_structures)


def network_pairs(net: PairMLP, energy_scale: float, seen: set[int]) -> list[NetworkPair]:
    """A tabulable ``pair_mlp`` as pair priors under exclusion rules (see :func:`tabulable_network`).

    Its intermolecular function under its own rule, unless it is bond-aware and sees intramolecular
    classes ``seen`` (1-2, 1-3, 1-4): then, with G_c its function on class-c pairs (c = 1, 2, 3) and
    G_4 its intermolecular one, the rule skipping pairs within k bonds holds G_{k+1} − G_k (k from
    its own bond count to 3; the first holds G_{k+1} alone). A class-c pair gets the rules k < c,
    whose sum telescopes to G_c; an intermolecular pair gets every rule, G_4. A class the network
    does not see in the system takes the next one's function, so no pair there meets it and its
    difference vanishes. This is how exclusion rules, the one thing pair tables (LAMMPS
    ``special_bonds``, OpenMM exclusions) tell intramolecular pairs apart by, carry a per-class function.
    """
    if not (net.bond_aware and seen):
        return [NetworkPair(net, energy_scale)]
    of = {4: 0}  # class whose function G_c is, for c = 1..4
    for c in (3, 2, 1):
        of[c] = c if c in seen else of[c + 1]
    pairs = [NetworkPair(net, energy_scale, {of[net.exclude + 1]: 1.0}, exclude=net.exclude)]
    pairs += [NetworkPair(net, energy_scale, {of[k + 1]: 1.0, of[k]: -1.0}, exclude=k)
              for k in range(net.exclude + 1, 4) if of[k + 1] != of[k]]
    return pairs


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
    #: the model's pair members each table of ``pairs`` sums, in its order (an engine with analytic pair forms reads them)
    pair_members: list[list[Prior]] = field(default_factory=list)

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


def tabulable_network(net: torch.nn.Module | None, seen: set[int] | None) -> bool:
    """Whether pair tables hold ``net``: a ``pair_mlp`` that is not bond-aware, or a bond-aware one in a system where
    the intramolecular pairs it sees (``seen``, see :func:`network_classes`; None: an unknown system) are all
    1-2, 1-3 or 1-4 pairs, the classes exclusion rules tell apart (:func:`network_pairs`)."""
    if not isinstance(net, PairMLP):
        return False
    return not net.bond_aware or (seen is not None and FAR not in seen)


def network_classes(net: torch.nn.Module | None,
                    excluded: Callable[[int, bool], set[tuple[int, int]]] | None) -> set[int] | None:
    """The bond-separation classes (``edge_sep``: 1, 2, 3 or FAR) of the intramolecular pairs a bond-aware ``pair_mlp``
    ``net`` sees in the system whose ``excluded`` pairs are given (see :func:`split_model`; ``excluded(k, True)``: the
    pairs within k bonds, ``excluded(0, False)``: every intramolecular pair), those its own rule keeps.

    None when the system is unknown (``excluded`` None); empty for every other network, whose tables do not depend
    on it (so large systems are not searched for nothing).
    """
    if not (isinstance(net, PairMLP) and net.bond_aware):
        return set()
    if excluded is None:
        return None
    if not net.intramolecular:
        return set()
    within = [set(), *(excluded(k, True) for k in (1, 2, 3))]
    seen = {k for k in (1, 2, 3) if k > net.exclude and within[k] - within[k - 1]}
    return seen | ({FAR} if excluded(0, False) - within[3] else set())


def untabulable_reason(net: torch.nn.Module) -> str:
    """Why no pair table holds ``net``, as a clause for one-line errors."""
    if isinstance(net, PairMLP):
        return ("the bond-aware PairMLP network has one pair function per bond separation, and pair tables tell "
                "intramolecular pairs apart only up to 1-4; this system has intramolecular pairs further apart that it "
                "does not exclude")
    return f"the {type(net).__name__} network is not pair-additive"


def graph_network(model: CGModel, seen: set[int] | None) -> torch.nn.Module | None:
    """The model's network when pair tables cannot hold it in a system where it sees intramolecular pairs of the
    classes ``seen`` (see :func:`tabulable_network`), else None."""
    if model.net is None or tabulable_network(model.net, seen):
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
    share a table (always, for one-bead molecules). Every pair table is on one grid, so tables that
    cancel on some pairs (:func:`network_pairs`) cancel exactly in an engine's splines too. Whether
    a bond-aware ``pair_mlp`` is tabulated depends on that system (:func:`network_classes`); without
    ``excluded`` it is not. Raises :class:`NotRepresentable` naming a prior member of unknown kind.
    """
    model = copy.deepcopy(model).cpu().double().eval()
    type_names = list(model.type_names)
    seen = network_classes(model.net, excluded)
    parts = additive_parts(model, seen)
    network, offset = None, np.zeros(len(type_names))
    if model.net is not None:
        scale = float(model.energy_scale)
        if tabulable_network(model.net, seen):
            offset = scale * model.type_shift.double().numpy()
        else:  # the network with its scale and shifts, as a model of its own
            network = CGModel(None, model.net, mode="ml_only", energy_scale=scale, type_shift=model.type_shift.tolist())
    tables = {}
    for kind, chosen in parts.items():
        if kind != "pair" and chosen and keys.get(kind):
            tables[kind] = _tabulate(chosen, kind, keys[kind], type_names)
    pairs, groups = [], {}
    if keys.get("pair") and parts["pair"]:
        grid = engine_grid(parts["pair"], "pair")
        groups = pair_groups(parts["pair"], excluded)
        pairs = [_tabulate(group, "pair", keys["pair"], type_names, rule, grid) for rule, group in groups.items()]
    return EngineModel(type_names, pairs, tables, network, offset, list(groups.values()))


def additive_parts(model: CGModel, seen: set[int] | None) -> dict[str, list[Prior]]:
    """The pair-additive members of ``model`` by term kind: prior members, and a ``pair_mlp`` network that pair tables
    hold in a system where it sees intramolecular pairs of the classes ``seen`` (:func:`tabulable_network`) as pair
    terms (:func:`network_pairs`).

    Raises :class:`NotRepresentable` naming a prior member of unknown kind.
    """
    parts: dict[str, list[Prior]] = {kind: [] for kind in KINDS}
    for member in members(model.prior):
        kind = kind_of(member)
        if kind is None:
            raise NotRepresentable(f"prior member {type(member).__name__} is not a pair, bond, angle or dihedral term "
                                   "cgzoo can tabulate")
        parts[kind].append(member)
    if tabulable_network(model.net, seen):
        parts["pair"] += network_pairs(model.net, float(model.energy_scale), seen or set())
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
              rule: tuple[int, bool] | None = None, x: np.ndarray | None = None) -> Tabulated:
    """The summed members of one kind as a :class:`Tabulated` on ``x`` (default: their :func:`engine_grid`), U and
    dU/dx probed from them."""
    x = engine_grid(chosen, kind) if x is None else x
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
    split = additive_parts(model, network_classes(model.net, excluded))
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


def pair_table_name(engine: EngineModel, k: int) -> str:
    """File stem (LAMMPS) or directory (GROMACS, VOTCA) of the k-th pair table of ``engine``: ``pair`` when there is
    one, else named by its exclusion rule."""
    if len(engine.pairs) == 1:
        return "pair"
    table = engine.pairs[k]
    return f"pair_exclude{table.exclude}" if table.intramolecular else "pair_intermolecular"


def write_engine_tables(engine: EngineModel, out: Path, fmt: str) -> list[Path]:
    """Every table of ``engine`` in ``fmt`` under ``out``: LAMMPS one ``<kind>.table`` each (pairs: see
    :func:`pair_table_name`) with its ``in.<name>_table`` style and coefficient lines; GROMACS and VOTCA the files of
    :func:`~cgzoo.tables.write_tables` in ``out``, pair tables of several exclusion rules one directory each."""
    out.mkdir(parents=True, exist_ok=True)
    named = [(pair_table_name(engine, k), t) for k, t in enumerate(engine.pairs)] + list(engine.tables.items())
    ids = {name: k for k, name in enumerate(engine.type_names, start=1)}
    written: list[Path] = []
    for name, table in named:
        if fmt != "lammps":
            written += write_tables(table, out / name if name.startswith("pair_") else out, fmt=fmt, overwrite=True)
            continue
        written += write_tables(table, out / f"{name}.table", overwrite=True)
        snippet = out / f"in.{name}_table"
        snippet.write_text(lammps_input(table, f"{name}.table", ids if table.kind == "pair" else None))
        written.append(snippet)
    return written
