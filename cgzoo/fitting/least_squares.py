"""Least squares: an analytic prior's parameters fitted to (residual) reference forces with L-BFGS."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from cgzoo.errors import FitError
from cgzoo.forces import energy_derivatives
from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import Prior


def fit_least_squares(prior: Prior, frames: list[tuple[CGGraph, np.ndarray]], max_iter: int = 100) -> dict[str, Any]:
    """Fit an analytic prior's parameters to residual forces with L-BFGS; report the training force RMSE."""
    params = [p for p in prior.parameters() if p.requires_grad]
    if not params:
        raise FitError(f"least squares: {type(prior).__name__} has no parameters to fit")
    prior.double()
    targets = [torch.as_tensor(f) for _, f in frames]
    n_comp = sum(t.numel() for t in targets)

    def loss_fn() -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64)
        for (graph, _), target in zip(frames, targets):
            forces = energy_derivatives(prior, graph, create_graph=True)["forces"]
            total = total + ((forces - target) ** 2).sum()
        return total / n_comp

    optimizer = torch.optim.LBFGS(params, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)
    loss = float(loss_fn().detach())
    if not math.isfinite(loss) or any(not torch.isfinite(p).all() for p in params):
        raise FitError(f"least squares: fit of {type(prior).__name__} diverged (non-finite parameters)")
    return {"method": "least_squares", "prior": type(prior).__name__, "frames": len(frames),
            "train_force_rmse": math.sqrt(loss), "params": prior.config().get("params")}
