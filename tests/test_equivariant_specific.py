"""Checks specific to the e3nn network: equivariant hidden features, invariant energy, smooth cutoff, second derivatives."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from e3nn import o3

from cgzoo.models import build_network
from cgzoo.models.equivariant import Equivariant
from cgzoo.neighbors import CGGraph, TopologyCache, batch_graph
from cgzoo.testing.systems import TYPES, chain_system, graph_of

CUTOFF = 5.0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run single-threaded: these graphs are tiny, and on a shared CPU two busy-waiting threads are ~30× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> Equivariant:
    """A tiny network with every ingredient: l_max 2, three layers, so two layers carry 1o and 2e features."""
    torch.manual_seed(0)
    return Equivariant(TYPES, cutoff=CUTOFF, l_max=2, num_layers=3, channels=4, num_basis=4, radial_hidden=8,
                       avg_num_neighbors=5.0).double()


def moved(graph: CGGraph, pos: torch.Tensor, cell: torch.Tensor | None = None) -> CGGraph:
    """The same graph (edges and image shifts unchanged) at new positions, optionally a new cell."""
    cell = graph.cell if cell is None else cell
    return CGGraph(**{**graph.__dict__, "pos": pos.detach().requires_grad_(True), "cell": cell})


def transformed(graph: CGGraph, matrix: torch.Tensor) -> CGGraph:
    """The same graph with positions and cell rows mapped by ``matrix``."""
    return moved(graph, graph.pos @ matrix.T, graph.cell @ matrix.T)


def forces(model: Equivariant, graph: CGGraph) -> torch.Tensor:
    """−∂E/∂pos."""
    (grad,) = torch.autograd.grad(model(graph).sum(), graph.pos)
    return -grad


@pytest.fixture(scope="module")
def system() -> dict:
    return chain_system(n_mol=4, box=12.0, n_frames=2, seed=3)


@pytest.mark.parametrize("proper", [True, False])
def test_hidden_features_and_energy_transform_correctly(system: dict, proper: bool, model: Equivariant) -> None:
    graph = graph_of(system, CUTOFF)
    matrix = o3.rand_matrix(dtype=torch.float64) * (1.0 if proper else -1.0)
    captured: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append(out)) for layer in model.layers]
    energy, energy_rot = model(graph), model(transformed(graph, matrix))
    for hook in hooks:
        hook.remove()
    n = len(model.layers)
    for layer, h, h_rot in zip(model.layers, captured[:n], captured[n:]):
        D = layer.irreps_out.D_from_matrix(matrix)  # e3nn builds D through Euler angles: accurate to ~1e-7 only
        torch.testing.assert_close(h_rot, h @ D.T, rtol=0, atol=1e-6 * h.abs().max().item())
    # the 1o block of the first layer, (N, channels, xyz) in e3nn's basis, rotates exactly as the positions do
    assert model.layers[0].irreps_out[1].ir == o3.Irrep("1o")
    vectors, vectors_rot = (h[:, model.channels:4 * model.channels].reshape(-1, model.channels, 3) for h in (captured[0], captured[n]))
    assert vectors.abs().max() > 1e-3
    torch.testing.assert_close(vectors_rot, vectors @ matrix.T, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(energy_rot, energy, rtol=1e-10, atol=1e-10)


def test_forces_rotate_and_energy_is_translation_invariant(system: dict, model: Equivariant) -> None:
    graph = graph_of(system, CUTOFF)
    matrix = o3.rand_matrix(dtype=torch.float64)
    rotated = transformed(graph, matrix)
    torch.testing.assert_close(forces(model, rotated), forces(model, graph) @ matrix.T, rtol=1e-9, atol=1e-10)
    shifted = (system["positions"] + np.array([3.1, -7.4, 5.3])) % 12.0
    torch.testing.assert_close(model(graph_of(system, CUTOFF, positions=shifted)), model(graph), rtol=1e-10, atol=1e-10)


def lone_bead_graph(distance: float) -> CGGraph:
    """One 4-bead chain plus a lone bead at ``distance`` from the chain's first bead, pointing away from the chain."""
    chain = np.array([[0.0, 0.0, 0.0], [3.8, 0.0, 0.0], [4.9, 3.6, 0.3], [8.6, 3.9, 1.4]]) + 15.0
    pos = np.vstack([chain, chain[0] - [distance, 0.0, 0.0]])
    cache = TopologyCache(5, np.array([[0, 1], [1, 2], [2, 3]]), np.array([0, 0, 0, 0, 1]))
    return batch_graph(pos[None], np.eye(3)[None] * 40.0, np.array([0, 1, 1, 0, 1]), cache, CUTOFF, requires_grad=True)


def test_energy_is_smooth_at_the_cutoff(model: Equivariant) -> None:
    far = model(lone_bead_graph(12.0))
    torch.testing.assert_close(model(lone_bead_graph(CUTOFF + 0.01)), far, rtol=0, atol=1e-14)
    assert (model(lone_bead_graph(CUTOFF - 1.0)) - far).abs() > 1e-6  # the bead does interact inside the cutoff
    inside = lone_bead_graph(CUTOFF - 1e-3)
    assert (model(inside) - far).abs() < 1e-9
    assert forces(model, inside)[4].abs().max() < 1e-8  # force on the lone bead vanishes at the cutoff


def test_second_derivatives_match_finite_differences(system: dict, model: Equivariant) -> None:
    graph = graph_of(system, CUTOFF, frames=slice(0, 1))
    (grad,) = torch.autograd.grad(model(graph).sum(), graph.pos, create_graph=True)
    direction = torch.randn(graph.pos.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (hvp,) = torch.autograd.grad((grad * direction).sum(), graph.pos, retain_graph=True)
    step = 1e-5
    plus = forces(model, moved(graph, graph.pos + step * direction))
    minus = forces(model, moved(graph, graph.pos - step * direction))
    torch.testing.assert_close(hvp, -(plus - minus) / (2 * step), rtol=1e-5, atol=1e-7)
    model.zero_grad(set_to_none=True)
    grad.pow(2).sum().backward()  # force-matching loss: gradients reach every weight through double backward
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)


def test_float32_follows_float64_and_config_rebuilds(system: dict, model: Equivariant) -> None:
    single = copy.deepcopy(model).float()
    energy32 = single(graph_of(system, CUTOFF, dtype=torch.float32))
    assert energy32.dtype == torch.float32
    torch.testing.assert_close(energy32.double(), model(graph_of(system, CUTOFF)), rtol=1e-4, atol=1e-4)
    config = json.loads(json.dumps(model.config()))
    rebuilt = build_network("equivariant", **config).double()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(graph_of(system, CUTOFF)), model(graph_of(system, CUTOFF)))
    with pytest.raises(ValueError, match="below the network cutoff"):
        model(graph_of(system, CUTOFF - 1.0))
