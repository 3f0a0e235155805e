"""cgzoo.metrics and cgzoo.forces: the one force-error accumulator and the one autograd force path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cgzoo.forces import energy_derivatives
from cgzoo.metrics import ForceErrors
from cgzoo.neighbors import CGGraph

RNG = np.random.default_rng(3)


def test_force_errors_match_the_formulas_overall_and_per_type_whatever_the_batching():
    ref = RNG.normal(size=(40, 3))
    pred = ref + RNG.normal(scale=0.3, size=(40, 3))
    types = RNG.integers(0, 3, 40)
    types[types == 2] = 1  # type 2 never seen
    whole, batched = ForceErrors(3), ForceErrors(3)
    whole.update(pred, ref, types)
    for part in np.array_split(np.arange(40), 7):
        batched.update(pred[part], ref[part], types[part])
    np.testing.assert_allclose(whole.sums, batched.sums, rtol=1e-13)
    err = pred - ref
    total = whole.total()
    assert total.rmse == pytest.approx(math.sqrt((err**2).mean()))
    assert total.mae == pytest.approx(np.abs(err).mean())
    assert total.r2 == pytest.approx(1 - (err**2).mean() / ref.var())
    assert total.reference_rms == pytest.approx(math.sqrt((ref**2).mean())) and total.components == 120
    per = whole.per_type()
    assert per[2] is None
    assert per[1].rmse == pytest.approx(math.sqrt((err[types == 1] ** 2).mean()))
    values = whole.as_dict(["A", "B", "C"])
    assert set(values) == {f"force_{m}{s}" for m in ("rmse", "mae", "r2") for s in ("", "_A", "_B")}
    whole.reset()
    assert whole.total() is None and whole.as_dict(["A", "B", "C"]) == {}


def test_r2_is_nan_for_a_constant_reference():
    errors = ForceErrors()
    errors.update(np.ones((2, 3)), np.zeros((2, 3)))
    assert math.isnan(errors.total().r2) and errors.total().rmse == 1.0


def _graph(pos: torch.Tensor) -> CGGraph:
    empty = torch.zeros(2, 0, dtype=torch.long)
    return CGGraph(pos=pos, bead_type=torch.zeros(len(pos), dtype=torch.long), cell=torch.eye(3, dtype=pos.dtype)[None] * 10,
                   batch=torch.zeros(len(pos), dtype=torch.long), edge_index=empty, edge_shift=torch.zeros(0, 3),
                   edge_sep=torch.zeros(0, dtype=torch.long), cutoff=0.0)


def test_energy_derivatives_give_minus_the_gradient_and_leave_the_graph_alone():
    pos = torch.tensor(RNG.normal(size=(5, 3)))
    graph = _graph(pos)
    out = energy_derivatives(lambda g: (g.pos**2).sum()[None], graph)
    torch.testing.assert_close(out["forces"], -2 * pos)
    assert not graph.pos.requires_grad
    constant = energy_derivatives(lambda g: torch.zeros(1, dtype=g.pos.dtype), graph, stress=True)
    assert not constant["forces"].any() and not constant["stress"].any()
