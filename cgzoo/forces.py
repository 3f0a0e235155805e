"""Forces and stress of any energy of a :class:`~cgzoo.neighbors.CGGraph` by autograd: one code path for models and prior fits."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cgzoo.neighbors import CGGraph


def energy_derivatives(energy_fn: Callable[[CGGraph], torch.Tensor], graph: CGGraph, forces: bool = True,
                       stress: bool = False, create_graph: bool = False) -> dict[str, torch.Tensor]:
    """``energy`` (B,) of ``energy_fn`` on ``graph`` and, in one backward pass, ``forces`` −∂E/∂x (N,3) and ``stress``.

    Stress is ∂E/∂ε (B,3,3) of a homogeneous strain ε of positions and cell, divided by the volume.
    Terms the energy does not depend on get zero forces (an energy without any gradient gives all
    zeros); ``create_graph`` keeps the derivatives differentiable, for losses on forces. The caller's
    graph is not modified.
    """
    pos, cell = graph.pos, graph.cell
    strain = None
    if stress:
        strain = torch.zeros_like(cell, requires_grad=True)
        pos, cell = apply_strain(pos, cell, graph.batch, strain)
    if forces and not pos.requires_grad:
        pos = pos.detach().requires_grad_(True)
    energy = energy_fn(CGGraph(**{**graph.__dict__, "pos": pos, "cell": cell}))
    out = {"energy": energy}
    wrt = ([pos] if forces else []) + ([strain] if stress else [])
    if wrt:
        grads = (torch.autograd.grad(energy.sum(), wrt, create_graph=create_graph, allow_unused=True)
                 if energy.requires_grad else [None] * len(wrt))
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads)]
        if forces:
            out["forces"] = -grads[0]
        if stress:
            out["stress"] = strain_stress(grads[-1], graph.cell)
    return out


def apply_strain(pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor,
                 strain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (N,3) and cells (B,3,3) deformed by the homogeneous strains ``strain`` (B,3,3): x·(1+ε), h·(1+ε).

    TorchScript compiles this function too (:mod:`cgzoo.models.export`), so compiled models take stress the same way.
    """
    deform = torch.eye(3, dtype=cell.dtype, device=cell.device) + strain
    return torch.bmm(pos.unsqueeze(1), deform[batch]).squeeze(1), torch.bmm(cell, deform)


def strain_stress(strain_grad: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Stress (B,3,3) from ∂E/∂ε of the undeformed cells (B,3,3): the derivative divided by each cell's volume."""
    return strain_grad / torch.abs(torch.linalg.det(cell))[:, None, None]
