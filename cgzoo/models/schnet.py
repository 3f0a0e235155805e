"""SchNet on periodic CG graphs, built from torch-geometric's interaction blocks.

``torch_geometric.nn.SchNet`` builds its own (non-periodic) radius graph, which needs
torch-cluster; here the blocks are fed the graph's periodic directed edges instead
(:func:`~cgzoo.models.base.full_edges`). Every pair within ``cutoff`` interacts, bonded
neighbours included; with ``bond_aware`` the pair's one-hot bond-separation class is appended to
the Gaussian distance features the filter networks read, so a bond and a non-bonded contact at
one distance get different filters.

Smoothness at the cutoff: PyG's ``CFConv`` multiplies each filter by the cosine cutoff
C(r) = ½(cos(πr/r_c) + 1), whose value and slope vanish at r_c but whose curvature
(π²/2r_c²) does not. Messages, and hence energy and forces, are continuous when a pair
crosses the cutoff; the force *derivative* (Hessian) jumps there, as in PyG's SchNet.
"""

from __future__ import annotations

from typing import Any

import torch
from torch_geometric.nn.models.schnet import GaussianSmearing, InteractionBlock, ShiftedSoftplus

from cgzoo.models.base import SEPARATION_CLASSES, Network, full_edges, separation_one_hot
from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import scatter_energy


class SchNet(Network):
    """Continuous-filter message passing on bead-type embeddings; energy = Σ_beads MLP(h_bead) per structure."""

    def __init__(
        self,
        type_names: list[str],
        cutoff: float = 9.0,
        hidden_channels: int = 64,
        num_filters: int = 64,
        num_interactions: int = 3,
        num_gaussians: int = 32,
        bond_aware: bool = False,
    ) -> None:
        super().__init__(type_names, cutoff)
        self.hidden_channels, self.num_filters = int(hidden_channels), int(num_filters)
        self.num_interactions, self.num_gaussians = int(num_interactions), int(num_gaussians)
        self.bond_aware = bool(bond_aware)
        self.embedding = torch.nn.Embedding(len(self.type_names), self.hidden_channels)
        self.distance_expansion = GaussianSmearing(0.0, self.cutoff, self.num_gaussians)
        edge_features = self.num_gaussians + (len(SEPARATION_CLASSES) if self.bond_aware else 0)
        self.interactions = torch.nn.ModuleList(
            InteractionBlock(self.hidden_channels, edge_features, self.num_filters, self.cutoff)
            for _ in range(self.num_interactions)
        )
        self.readout = torch.nn.Sequential(
            torch.nn.Linear(self.hidden_channels, self.hidden_channels // 2),
            ShiftedSoftplus(),
            torch.nn.Linear(self.hidden_channels // 2, 1),
        )

    def forward(self, graph: CGGraph) -> torch.Tensor:
        edge_index, _, distance, sep = full_edges(graph, self.cutoff)
        edge_attr = self.distance_expansion(distance)
        if self.bond_aware:  # the filter is cut off by C(r) whatever its input, so the energy stays continuous
            edge_attr = torch.cat([edge_attr, separation_one_hot(sep, edge_attr.dtype)], dim=-1)
        h = self.embedding(graph.bead_type)
        for interaction in self.interactions:
            h = h + interaction(h, edge_index, distance, edge_attr)
        return scatter_energy(self.readout(h).squeeze(-1), graph.batch, graph.n_structures)

    def config(self) -> dict[str, Any]:
        return {"type_names": self.type_names, "cutoff": self.cutoff, "hidden_channels": self.hidden_channels,
                "num_filters": self.num_filters, "num_interactions": self.num_interactions,
                "num_gaussians": self.num_gaussians, "bond_aware": self.bond_aware}
