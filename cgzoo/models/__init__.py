"""Model zoo: interchangeable networks wrapped with any prior in a Δ-model (see :mod:`cgzoo.models.base`)."""

from cgzoo.models.base import MODES, SEPARATION_CLASSES, CGModel, Network, full_edges, separation_one_hot
from cgzoo.models.registry import NETWORKS, build_network, network_class, network_spec

__all__ = ["MODES", "NETWORKS", "SEPARATION_CLASSES", "CGModel", "Network", "build_network", "full_edges", "network_class",
           "network_spec", "separation_one_hot"]
