"""Model zoo: interchangeable networks wrapped with any prior in a Δ-model (see :mod:`cgzoo.models.base`)."""

from cgzoo.models.base import MODES, CGModel, Network, full_edges
from cgzoo.models.registry import NETWORKS, build_network, network_class, network_spec

__all__ = ["MODES", "NETWORKS", "CGModel", "Network", "build_network", "full_edges", "network_class", "network_spec"]
