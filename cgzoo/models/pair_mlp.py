"""A learned pair potential: E = Σ_{i<j} MLP(radial basis of r_ij, symmetric type embedding) · envelope(r_ij).

The simplest Δ-network: it adds a smooth, type-pair-dependent correction to the prior's
non-bonded terms, with the prior's exclusion rules, and can be exported as a table through
:meth:`PairMLP.pair_energy` (e.g. for LAMMPS ``pair_style table``).

``bond_aware`` appends the pair's bond-separation class (intermolecular, 1-2, 1-3, 1-4, further
intramolecular) to the MLP's input, so one network holds a bond and a non-bonded contact at the
same distance as different functions. One MLP with the class as input, rather than one MLP per
class: the classes share what they have in common (the core at short range, the type embedding)
while the first layer lets each bend the function as far as the data asks; the scarce
intramolecular pairs are not fitted on their own, and the parameter count stays that of the
plain network. Such a network is no longer one table per type pair: :meth:`PairMLP.to_prior`
refuses it. MD engines still tabulate it where the system allows: where it sees no intramolecular
pair (one-bead molecules) its intermolecular function is the whole network, and where those it
sees are all 1-2, 1-3 or 1-4 pairs, tables under several exclusion rules carry one function per
class (:func:`cgzoo.engines.tables.network_pairs`); only pairs further apart within a molecule,
which no pair table tells from intermolecular ones, make engines run it as a torch network.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch

from cgzoo.models.base import SEPARATION_CLASSES, Network, separation_one_hot
from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import scatter_energy, switching
from cgzoo.priors.tabulated import Tabulated
from cgzoo.priors.terms import pair_mask

#: activation functions by name; all are smooth so forces and their parameter gradients are too
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "silu": torch.nn.SiLU,
    "tanh": torch.nn.Tanh,
    "softplus": torch.nn.Softplus,
    "gelu": torch.nn.GELU,
}


def mlp(sizes: Sequence[int], activation: str) -> torch.nn.Sequential:
    """A plain MLP through ``sizes`` with ``activation`` between layers (none after the last)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[torch.nn.Module] = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


class PairMLP(Network):
    """Pairwise learned energy with a C² envelope so energy, force and force slope vanish at ``cutoff``.

    Pair features are ``n_rbf`` Gaussians of r on [0, cutoff] and the sum and product of the two
    beads' learned type embeddings (so E(i, j) = E(j, i)), and with ``bond_aware`` the one-hot bond
    separation class of the pair. ``exclude`` and ``intramolecular`` skip intramolecular pairs
    exactly as in :class:`~cgzoo.priors.terms.PairPrior`; excluded classes never reach the MLP.
    """

    def __init__(
        self,
        type_names: list[str],
        cutoff: float = 9.0,
        n_rbf: int = 32,
        hidden: Sequence[int] = (64, 64),
        activation: str = "silu",
        embedding_dim: int = 16,
        exclude: int = 0,
        intramolecular: bool = True,
        bond_aware: bool = False,
    ) -> None:
        super().__init__(type_names, cutoff)
        self.n_rbf, self.hidden, self.activation = int(n_rbf), [int(h) for h in hidden], activation
        self.embedding_dim, self.exclude, self.intramolecular = int(embedding_dim), int(exclude), bool(intramolecular)
        self.bond_aware = bool(bond_aware)
        self.embedding = torch.nn.Embedding(len(self.type_names), self.embedding_dim)
        self.register_buffer("centres", torch.linspace(0.0, self.cutoff, self.n_rbf))
        self.width = self.cutoff / max(self.n_rbf - 1, 1)
        n_classes = len(SEPARATION_CLASSES) if self.bond_aware else 0
        self.mlp = mlp([self.n_rbf + 2 * self.embedding_dim + n_classes, *self.hidden, 1], activation)

    def _pair(self, r: torch.Tensor, type_i: torch.Tensor, type_j: torch.Tensor, sep: torch.Tensor) -> torch.Tensor:
        """Energy of pairs at distances ``r`` (E,) with bead types ``type_i``, ``type_j`` and bond separations ``sep`` (E,)."""
        rbf = torch.exp(-0.5 * ((r.unsqueeze(-1) - self.centres) / self.width) ** 2)
        e_i, e_j = self.embedding(type_i), self.embedding(type_j)
        features = [rbf, e_i + e_j, e_i * e_j]
        if self.bond_aware:
            features.append(separation_one_hot(sep, r.dtype))
        return self.mlp(torch.cat(features, dim=-1)).squeeze(-1) * switching(r, 0.0, self.cutoff)

    def pair_energy(self, r: torch.Tensor, type_i: int | torch.Tensor, type_j: int | torch.Tensor,
                    sep: int | torch.Tensor = 0) -> torch.Tensor:
        """Dimensionless energy of ``type_i``–``type_j`` pairs with bond separation ``sep`` (an ``edge_sep`` value;
        0: different molecules) at distances ``r`` (any shape; the others are numbers or of its shape), for tabulation."""
        flat = r.reshape(-1)
        ti, tj, s = (torch.as_tensor(v, dtype=torch.long, device=r.device).expand(r.shape).reshape(-1)
                     for v in (type_i, type_j, sep))
        return self._pair(flat, ti, tj, s).reshape(r.shape)

    def forward(self, graph: CGGraph) -> torch.Tensor:
        r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
        mask = pair_mask(graph, r, self.cutoff, self.exclude, self.intramolecular)
        i, j = graph.edge_index[:, mask]
        energy = self._pair(r[mask], graph.bead_type[i], graph.bead_type[j], graph.edge_sep[mask])
        return scatter_energy(energy, graph.batch[i], graph.n_structures)

    def config(self) -> dict[str, Any]:
        return {"type_names": self.type_names, "cutoff": self.cutoff, "n_rbf": self.n_rbf, "hidden": self.hidden,
                "activation": self.activation, "embedding_dim": self.embedding_dim, "exclude": self.exclude,
                "intramolecular": self.intramolecular, "bond_aware": self.bond_aware}

    def to_prior(self, energy_scale: float = 1.0, r_min: float = 1.0, spacing: float = 0.01) -> Tabulated:
        """The learned pair potential (times ``energy_scale``, kcal/mol) as a :class:`Tabulated` pair prior.

        The table can then be summed with the prior it was trained on and exported to LAMMPS or
        GROMACS like any fitted prior (``cgzoo.priors.export.export_tables``). A ``bond_aware``
        network has one pair function per separation class, which one table per type pair cannot
        hold: ``ValueError`` (MD engines tabulate it per system, see the module docstring).
        """
        if self.bond_aware:
            raise ValueError("a bond_aware pair_mlp has one pair function per bond-separation class; a pair table "
                             "holds one per type pair (run it as a torch network instead)")
        dtype = next(self.parameters()).dtype
        r = torch.arange(r_min, self.cutoff + 0.5 * spacing, spacing, dtype=dtype)
        tables = {}
        with torch.enable_grad():
            for a, b in itertools.combinations_with_replacement(range(len(self.type_names)), 2):
                x = r.clone().requires_grad_(True)
                u = self.pair_energy(x, a, b) * energy_scale
                (du,) = torch.autograd.grad(u.sum(), x)
                key = f"{self.type_names[a]}-{self.type_names[b]}"
                tables[key] = {"x": r.tolist(), "u": u.detach().tolist(), "du": du.tolist()}
        return Tabulated(self.type_names, "pair", tables, exclude=self.exclude, intramolecular=self.intramolecular)
