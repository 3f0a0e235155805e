"""Small configurations of every registered network and a physics prior, for the shared model suite."""

from __future__ import annotations

from cgzoo.models import CGModel, build_network
from cgzoo.priors import build_prior
from prior_cases import LJ_TRUE, TYPES

CUTOFF = 6.0

#: tiny hyper-parameters so the suite stays fast; every registered name must appear here
NETWORK_CASES = {
    "pair_mlp": {"cutoff": CUTOFF, "n_rbf": 8, "hidden": [16, 16], "embedding_dim": 4},
    "schnet": {"cutoff": CUTOFF, "hidden_channels": 16, "num_filters": 16, "num_interactions": 2, "num_gaussians": 12},
    "equivariant": {"cutoff": CUTOFF, "l_max": 2, "num_layers": 2, "channels": 8, "num_basis": 6, "radial_hidden": 16},
}


def physics_prior():
    """LJ pairs (switched), harmonic bonds and angles, a Fourier dihedral: the prior of every Δ case."""
    return build_prior([
        {"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": CUTOFF, "params": LJ_TRUE,
                                                      "smoothing": "switch", "r_switch": 5.0}},
        {"class_path": "harmonic_bond", "init_args": {"type_names": TYPES, "params": {"A-B": {"k": 20.0, "r0": 3.8},
                                                                                   "B-B": {"k": 30.0, "r0": 3.7}}}},
        {"class_path": "harmonic_angle", "init_args": {"type_names": TYPES, "params": {"A-B-B": {"k": 8.0, "theta0": 110.0}}}},
        {"class_path": "fourier_dihedral", "init_args": {"type_names": TYPES, "params": {"A-B-B-A": {"k": [0.7, -0.2, 0.4]}}}},
    ])


def make_model(name: str, mode: str, seed: int = 0) -> CGModel:
    """A float64 model of network ``name`` in ``mode`` with the physics prior."""
    import torch

    torch.manual_seed(seed)
    net = None if mode == "prior_only" else build_network(name, TYPES, **NETWORK_CASES[name])
    return CGModel(physics_prior(), net, mode=mode, energy_scale=0.5, type_shift=[0.1, -0.2]).double()
