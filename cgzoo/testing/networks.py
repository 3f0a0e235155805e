"""The shared network suite as plain functions: run it on any network class with :func:`check_network`.

Two levels of checks. :data:`NETWORK_CHECKS` take the bare network (double backward for force
training, float32 against float64, a JSON config round trip). :data:`MODEL_CHECKS` take a float64
:class:`~cgzoo.models.CGModel` of the network on :func:`~cgzoo.testing.cases.physics_prior` in a
mode, and a system: forces equal −∇E (finite differences); energy is invariant to translation,
rotation, permutation of identical beads and choice of periodic image; forces rotate with the
structure; a batch equals its structures one by one; stress equals the finite-difference strain
derivative; energy is continuous where a pair crosses a cutoff. Every check raises
``AssertionError`` on failure and needs no pytest.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cgzoo.models import MODES, CGModel, Network, build_network, network_class, network_spec
from cgzoo.neighbors import CGGraph, TopologyCache, batch_graph
from cgzoo.testing.assertions import assert_approx, run_named
from cgzoo.testing.cases import physics_prior
from cgzoo.testing.systems import TYPES, graph_of, separated_chains, two_beads

#: a small cluster the network-level checks evaluate: four beads in separate molecules, types A B B A
CLUSTER = [[10.0, 10.0, 10.0], [13.5, 10.2, 9.8], [11.2, 13.1, 10.5], [12.0, 11.0, 13.0]]


def build(network: str | type[Network], args: dict[str, Any], seed: int = 0) -> Network:
    """Network ``network`` (registered name, dotted path or class) for bead types A and B, seeded, in the default dtype."""
    torch.manual_seed(seed)
    if isinstance(network, str):
        return build_network(network, TYPES, **args)
    return network(type_names=TYPES, **args)


def cluster_graph(net: Network, n_beads: int, dtype: torch.dtype = torch.float64) -> CGGraph:
    """Graph of the first ``n_beads`` of :data:`CLUSTER` in a 30 Å box, with the neighbour list ``net`` needs."""
    positions = np.asarray(CLUSTER[:n_beads])
    cache = TopologyCache(n_beads, np.zeros((0, 2), int), np.arange(n_beads))
    return batch_graph(positions[None], np.eye(3)[None] * 30.0, np.array([0, 1, 1, 0][:n_beads]), cache, net.cutoff + 0.5,
                       dtype=dtype, requires_grad=True)


def check_double_backward(net: Network) -> None:
    """A force loss reaches the positions and the weights through a second derivative, finitely (force matching needs it)."""
    net = copy.deepcopy(net).double()
    g = cluster_graph(net, 4)
    (grad,) = torch.autograd.grad(net(g).sum(), g.pos, create_graph=True)
    loss = (grad**2).sum()
    params = [p for p in net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [g.pos, *params], create_graph=True, allow_unused=True)
    grads = [x for x in grads if x is not None]
    assert all(torch.isfinite(x).all() for x in grads), "non-finite second derivatives"
    assert float(grads[0].detach().abs().sum()) > 0, "the force loss does not depend on the positions"
    assert any(float(x.detach().abs().sum()) > 0 for x in grads[1:]), "the force loss reaches no weight"


def check_float32_and_config_round_trip(net: Network) -> None:
    """The network rebuilt from its JSON spec with the same weights gives, in float32, the float64 energy (rtol 1e-5)."""
    spec = json.loads(json.dumps(network_spec(net)))
    rebuilt = network_class(spec.pop("name"))(**spec)
    rebuilt.load_state_dict(net.state_dict())
    e32 = rebuilt.float()(cluster_graph(net, 3, dtype=torch.float32))
    assert e32.dtype == torch.float32, f"float32 input gave {e32.dtype} energies"
    e64 = copy.deepcopy(net).double()(cluster_graph(net, 3))
    torch.testing.assert_close(e32.double(), e64, rtol=1e-5, atol=1e-5)


#: checks of a bare network, by name; each takes the network as built from its arguments and leaves it unchanged
NETWORK_CHECKS: dict[str, Callable[[Network], None]] = {
    "double_backward": check_double_backward,
    "float32_and_config_round_trip": check_float32_and_config_round_trip,
}


def make_model(network: str | type[Network] | None, args: dict[str, Any], mode: str, seed: int = 0) -> CGModel:
    """A float64 model of ``network`` in ``mode`` on the physics prior, in eval mode (``network`` None: prior only)."""
    net = None if mode == "prior_only" else build(network, args, seed)
    return CGModel(physics_prior(), net, mode=mode, energy_scale=0.5, type_shift=[0.1, -0.2]).double().eval()


def model_system() -> dict:
    """Two frames of eight separated chains: the system every model check runs on."""
    return separated_chains(n_frames=2, seed=5)


def evaluate(model: CGModel, system: dict, stress: bool = False, **kw: Any) -> dict[str, torch.Tensor]:
    """Detached energy, forces (and stress) of ``model`` on frames of ``system`` (``kw`` as :func:`graph_of`)."""
    out = model(graph_of(system, model.cutoff + 0.5, **kw), forces=True, stress=stress)
    return {k: v.detach() for k, v in out.items()}



def check_forces_are_minus_gradient(model: CGModel, system: dict) -> None:
    """Forces equal the central finite difference (h = 1e-5 Å, float64) of the energy for 3 beads × 3 directions."""
    out = evaluate(model, system, frames=slice(0, 1))
    rng = np.random.default_rng(0)
    h = 1e-5
    for bead in rng.choice(system["positions"].shape[1], 3, replace=False):
        for dim in range(3):
            e = []
            for sign in (1, -1):
                pos = system["positions"][:1].copy()
                pos[0, bead, dim] += sign * h
                e.append(float(evaluate(model, system, frames=slice(0, 1), positions=pos)["energy"][0]))
            assert_approx(-(e[0] - e[1]) / (2 * h), float(out["forces"][bead, dim]), 1e-5, 1e-6, f"force on bead {bead}, axis {dim}")


def check_translation_rotation_and_periodic_images(model: CGModel, system: dict) -> None:
    """Energy is unchanged by a translation, by moving beads to other periodic images and by a rotation; forces rotate."""
    ref = evaluate(model, system, frames=slice(0, 1))
    moved = evaluate(model, system, frames=slice(0, 1), positions=system["positions"][:1] + [3.1, -7.7, 12.5])
    torch.testing.assert_close(moved["energy"], ref["energy"], rtol=1e-9, atol=1e-9)
    pos = system["positions"][:1].copy()
    pos[0, 1::3] += system["boxes"][0, 0] - system["boxes"][0, 2]
    imaged = evaluate(model, system, frames=slice(0, 1), positions=pos)
    torch.testing.assert_close(imaged["energy"], ref["energy"], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(imaged["forces"], ref["forces"], rtol=1e-7, atol=1e-7)
    rot, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rotated = evaluate(model, system, frames=slice(0, 1), positions=system["positions"][:1] @ rot.T,
                       boxes=system["boxes"][:1] @ rot.T)
    torch.testing.assert_close(rotated["energy"], ref["energy"], rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(rotated["forces"], ref["forces"] @ torch.as_tensor(rot.T), rtol=1e-6, atol=1e-6)


def check_permutation_of_identical_beads(model: CGModel, system: dict) -> None:
    """Relabelling the beads (with their types, molecules and bonded lists) permutes the forces and keeps the energy."""
    ref = evaluate(model, system, frames=slice(0, 1))
    n = len(system["bead_types"])
    perm = np.random.default_rng(2).permutation(n)
    inverse = np.argsort(perm)
    permuted = dict(system, positions=system["positions"][:, perm], bead_types=system["bead_types"][perm],
                    molecule_ids=system["molecule_ids"][perm], bonds=inverse[system["bonds"]],
                    angles=inverse[system["angles"]], dihedrals=inverse[system["dihedrals"]])
    out = evaluate(model, permuted, frames=slice(0, 1))
    torch.testing.assert_close(out["energy"], ref["energy"], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["forces"], ref["forces"][perm], rtol=1e-7, atol=1e-7)


def check_batch_equals_single_structures(model: CGModel, system: dict) -> None:
    """A batch of two frames gives each frame's energy and forces as evaluated alone."""
    both = evaluate(model, system)
    n = len(system["bead_types"])
    for f in range(2):
        one = evaluate(model, system, frames=slice(f, f + 1))
        torch.testing.assert_close(one["energy"][0], both["energy"][f], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(one["forces"], both["forces"][f * n:(f + 1) * n], rtol=1e-8, atol=1e-8)


def check_stress_is_strain_derivative(model: CGModel, system: dict) -> None:
    """Stress equals (1/V) ∂E/∂ε by central finite differences of a homogeneous strain, diagonal and shear."""
    out = evaluate(model, system, stress=True, frames=slice(0, 1))
    volume = abs(np.linalg.det(system["boxes"][0]))
    h = 1e-5
    for a, b in ((0, 0), (1, 2), (2, 1)):
        e = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h
            e.append(float(evaluate(model, system, frames=slice(0, 1), positions=system["positions"][:1] @ strain,
                                    boxes=system["boxes"][:1] @ strain)["energy"][0]))
        assert_approx((e[0] - e[1]) / (2 * h) / volume, float(out["stress"][0, a, b]), 1e-4, 1e-8, f"stress[{a}, {b}]")


def check_energy_continuous_across_cutoff(model: CGModel, system: dict) -> None:
    """Two beads just inside and just outside each cutoff (network's and prior's) have the same energy and ~no force."""
    cutoffs = {model.prior.cutoff, model.net.cutoff if model.net is not None else 0.0} - {0.0}
    for cutoff in sorted(cutoffs):
        inside = evaluate(model, two_beads([cutoff - 1e-6], box=30.0))
        outside = evaluate(model, two_beads([cutoff + 1e-6], box=30.0))
        assert abs(float(inside["energy"][0] - outside["energy"][0])) < 1e-6, f"energy jumps at the cutoff {cutoff} Å"
        assert float(inside["forces"].abs().max()) < 1e-4, f"force does not vanish at the cutoff {cutoff} Å"


#: checks of a float64 model on :func:`model_system`, by name
MODEL_CHECKS: dict[str, Callable[[CGModel, dict], None]] = {
    "forces_are_minus_gradient": check_forces_are_minus_gradient,
    "translation_rotation_and_periodic_images": check_translation_rotation_and_periodic_images,
    "permutation_of_identical_beads": check_permutation_of_identical_beads,
    "batch_equals_single_structures": check_batch_equals_single_structures,
    "stress_is_strain_derivative": check_stress_is_strain_derivative,
    "energy_continuous_across_cutoff": check_energy_continuous_across_cutoff,
}

#: modes the model checks run a network in (``prior_only`` ignores the network: :func:`check_model` covers it once)
NETWORK_MODES = tuple(m for m in MODES if m != "prior_only")


def check_model(model: CGModel, system: dict | None = None) -> None:
    """Every model check on ``model`` (float64), on :func:`model_system` unless another system is given."""
    system = model_system() if system is None else system
    for name, check in MODEL_CHECKS.items():
        run_named(name, check, model, system)


def check_network(network: str | type[Network], args: dict[str, Any], modes: tuple[str, ...] = NETWORK_MODES) -> None:
    """Every network check, then every model check in each of ``modes``, on ``network`` built with ``args``.

    ``network`` is a registered name or a :class:`~cgzoo.models.Network` subclass; ``args`` are
    small hyper-parameters (``type_names`` excluded). The config round trip rebuilds the network
    from its dotted path, so a user's class must come from an enabled plugin module
    (:func:`cgzoo.plugins.register_plugin`).
    """
    net = build(network, args)
    for name, check in NETWORK_CHECKS.items():
        run_named(name, check, net)
    system = model_system()
    for mode in modes:
        check_model(make_model(network, args, mode), system)
