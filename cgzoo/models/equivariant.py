"""NequIP-style E(3)-equivariant message-passing network built from e3nn.

Bead types enter as one-hot scalars (``0e``); each directed edge i←j carries the spherical
harmonics Y(r̂_ij) up to ``l_max`` and a Bessel radial basis times a polynomial envelope that
vanishes with zero value, slope and curvature at the cutoff. Every interaction layer is a
tensor-product convolution (per-edge weights from a radial MLP, channel-wise ``uvu`` paths),
a sum over incoming edges divided by √``avg_num_neighbors``, a linear mix, a type-dependent
self-connection, a gated non-linearity and a residual connection where irreps agree. Hidden
features are ``channels``× each natural-parity irrep 0e, 1o, 2e, … up to ``l_max``: products of
these that fall outside the set (e.g. 1o⊗1o→1e) are dropped, which costs an energy model little:
O(3) invariants of vectors are functions of their dot products. The last layer keeps scalars only;
an MLP turns them into per-bead energies that are summed per structure.

With ``bond_aware`` the radial MLPs also read the edge's one-hot bond-separation class, times the
same envelope as the Bessel basis: the MLPs have no biases, so a zero input still gives zero
weights at the cutoff and the energy stays smooth there.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate

from cgzoo.models.base import SEPARATION_CLASSES, Network, full_edges, separation_one_hot
from cgzoo.neighbors import CGGraph

#: Exponent p of the polynomial envelope; value, slope and curvature vanish at the cutoff.
ENVELOPE_P = 6


def natural_irreps(mul: int, l_max: int) -> o3.Irreps:
    """``mul`` copies of each irrep l with the parity (−1)^l of Y_l: the features an energy model needs."""
    return o3.Irreps([(mul, (l, (-1) ** l)) for l in range(l_max + 1)])


class RadialBasis(torch.nn.Module):
    """Bessel functions sin(nπr/r_c)/r times a polynomial envelope, smooth to zero at the cutoff."""

    def __init__(self, cutoff: float, num_basis: int) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer("frequencies", math.pi / self.cutoff * torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()))

    def envelope(self, length: torch.Tensor) -> torch.Tensor:
        """u(d) = 1 − (p+1)(p+2)/2 dᵖ + p(p+2) dᵖ⁺¹ − p(p+1)/2 dᵖ⁺² with d = r/r_c (edges are within the cutoff)."""
        p, d = ENVELOPE_P, length / self.cutoff
        return 1 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1) - p * (p + 1) / 2 * d ** (p + 2)

    def forward(self, length: torch.Tensor) -> torch.Tensor:
        """(E,) lengths → (E, num_basis) basis values."""
        r = length.unsqueeze(-1)
        bessel = math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies * r) / r
        return bessel * self.envelope(r)


class Interaction(torch.nn.Module):
    """One convolution layer: features ``irreps_in`` → ``irreps_out``, messages weighted per edge by a radial MLP
    of ``num_radial`` edge features (the radial basis, and the separation class when bond-aware)."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_type: o3.Irreps,
        num_radial: int,
        radial_hidden: int,
        avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = irreps_in, irreps_out
        self.avg_num_neighbors = float(avg_num_neighbors)
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
        gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated else o3.Irreps("")
        self.gate = Gate(scalars, [torch.nn.functional.silu], gates, [torch.sigmoid] if gated else [], gated)

        self.linear_in = o3.Linear(irreps_in, irreps_in)
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in self.gate.irreps_in:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        self.tp = o3.TensorProduct(irreps_in, irreps_sh, o3.Irreps(mid), instructions,
                                   shared_weights=False, internal_weights=False)
        self.radial = FullyConnectedNet([num_radial, radial_hidden, radial_hidden, self.tp.weight_numel],
                                        torch.nn.functional.silu)
        self.linear_out = o3.Linear(self.tp.irreps_out, self.gate.irreps_in)
        self.self_connection = o3.FullyConnectedTensorProduct(irreps_in, irreps_type, self.gate.irreps_in)
        self.residual = irreps_in == irreps_out

    def forward(self, h: torch.Tensor, types: torch.Tensor, edge_index: torch.Tensor, sh: torch.Tensor,
                basis: torch.Tensor) -> torch.Tensor:
        """Update node features (N, irreps_in.dim) → (N, irreps_out.dim); messages flow j → i along edge (i, j)."""
        receiver, sender = edge_index
        messages = self.tp(self.linear_in(h)[sender], sh, self.radial(basis))
        aggregated = torch.zeros(h.shape[0], messages.shape[1], dtype=h.dtype, device=h.device)
        aggregated = aggregated.index_add(0, receiver, messages) / math.sqrt(self.avg_num_neighbors)
        out = self.gate(self.linear_out(aggregated) + self.self_connection(h, types))
        return h + out if self.residual else out


class Equivariant(Network):
    """E(3)-equivariant message-passing network (NequIP-style) giving invariant energies and equivariant forces."""

    def __init__(
        self,
        type_names: list[str],
        cutoff: float = 9.0,
        l_max: int = 2,
        num_layers: int = 3,
        channels: int = 32,
        num_basis: int = 8,
        radial_hidden: int = 64,
        avg_num_neighbors: float = 30.0,
        bond_aware: bool = False,
    ) -> None:
        super().__init__(type_names, cutoff)
        if num_layers < 1 or l_max < 0:
            raise ValueError(f"need num_layers ≥ 1 and l_max ≥ 0, got {num_layers} and {l_max}")
        self.l_max, self.num_layers, self.channels = int(l_max), int(num_layers), int(channels)
        self.num_basis, self.radial_hidden = int(num_basis), int(radial_hidden)
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.bond_aware = bool(bond_aware)

        irreps_type = o3.Irreps(f"{len(self.type_names)}x0e")
        irreps_sh = o3.Irreps.spherical_harmonics(self.l_max)
        hidden = natural_irreps(self.channels, self.l_max)
        scalars = natural_irreps(self.channels, 0)
        self.embedding = o3.Linear(irreps_type, scalars)
        self.spherical_harmonics = o3.SphericalHarmonics(irreps_sh, normalize=True, normalization="component")
        self.radial_basis = RadialBasis(self.cutoff, self.num_basis)
        irreps = [scalars] + [hidden] * (self.num_layers - 1) + [scalars]
        num_radial = self.num_basis + (len(SEPARATION_CLASSES) if self.bond_aware else 0)
        self.layers = torch.nn.ModuleList(
            Interaction(irreps_in, irreps_out, irreps_sh, irreps_type, num_radial, self.radial_hidden,
                        self.avg_num_neighbors)
            for irreps_in, irreps_out in itertools.pairwise(irreps)
        )
        self.readout = FullyConnectedNet([self.channels, self.channels, 1], torch.nn.functional.silu)

    def forward(self, graph: CGGraph) -> torch.Tensor:
        """Energy per structure (n_structures,), dimensionless."""
        if graph.cutoff < self.cutoff - 1e-9:
            raise ValueError(f"graph cutoff {graph.cutoff} Å is below the network cutoff {self.cutoff} Å")
        edge_index, vectors, lengths, sep = full_edges(graph, self.cutoff)
        sh = self.spherical_harmonics(vectors)
        basis = self.radial_basis(lengths)
        if self.bond_aware:
            envelope = self.radial_basis.envelope(lengths.unsqueeze(-1))
            basis = torch.cat([basis, separation_one_hot(sep, basis.dtype) * envelope], dim=-1)
        types = torch.nn.functional.one_hot(graph.bead_type, len(self.type_names)).to(graph.pos.dtype)
        h = self.embedding(types)
        for layer in self.layers:
            h = layer(h, types, edge_index, sh, basis)
        per_bead = self.readout(h).squeeze(-1)
        return torch.zeros(graph.n_structures, dtype=per_bead.dtype, device=per_bead.device).index_add(0, graph.batch, per_bead)

    def config(self) -> dict[str, Any]:
        """Constructor kwargs that rebuild this network."""
        return {
            "type_names": self.type_names,
            "cutoff": self.cutoff,
            "l_max": self.l_max,
            "num_layers": self.num_layers,
            "channels": self.channels,
            "num_basis": self.num_basis,
            "radial_hidden": self.radial_hidden,
            "avg_num_neighbors": self.avg_num_neighbors,
            "bond_aware": self.bond_aware,
        }
