"""cgzoo.geometry: the numpy and torch paths give the same numbers, the torch path is differentiable, wrapping is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgzoo.geometry import angles, dihedrals, half_width, image_offsets, lengths, minimum_image, wrap

RNG = np.random.default_rng(7)
#: a cubic and a strongly sheared triclinic cell (rows = lattice vectors, Å)
CELLS = np.array([np.eye(3) * 10.0, [[9.0, 0.0, 0.0], [4.0, 8.0, 0.0], [-3.0, 2.5, 7.0]]])


def both(fn, *arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn`` on numpy float64 arrays, and on the same values as torch tensors (converted back)."""
    return fn(*arrays), fn(*(torch.from_numpy(a) for a in arrays)).numpy()


@pytest.mark.parametrize("fn", [minimum_image, wrap, image_offsets])
def test_cell_functions_agree_between_numpy_and_torch(fn):
    vectors = RNG.normal(scale=15.0, size=(2, 50, 3))
    ours, theirs = both(fn, vectors, CELLS)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_internal_coordinates_agree_between_numpy_and_torch():
    b = RNG.normal(size=(3, 40, 3))
    for fn, args in ((lengths, b[:1]), (angles, b[:2]), (dihedrals, b)):
        ours, theirs = both(fn, *args)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-14)


def test_half_width_agrees_between_numpy_and_torch_and_with_the_cell_widths():
    ours, theirs = both(half_width, CELLS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    assert ours[0] == pytest.approx(5.0)
    # the perpendicular width across each pair of faces is V / |face area|; brute force over image planes
    cell = CELLS[1]
    widths = [abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    assert ours[1] == pytest.approx(min(widths) / 2)


def test_minimum_image_is_the_shortest_image():
    vectors = RNG.normal(scale=3.0, size=(1, 200, 3))
    cell = np.eye(3) * 10.0
    wrapped = minimum_image(vectors, cell[None])
    assert (np.abs(wrapped) <= 5.0 + 1e-12).all()
    shifts = (vectors - wrapped) @ np.linalg.inv(cell)
    np.testing.assert_allclose(shifts, np.round(shifts), atol=1e-12)


def test_wrap_puts_every_fraction_in_zero_one_even_when_rounding_lands_on_one():
    cell = np.eye(3) * 10.0
    # -1e-17 Å: frac - floor(frac) = 1 - 1e-18 rounds to exactly 1.0 in float64
    tiny = np.array([[[-1e-17, 3.0, 9.999999999999999]]])
    for positions in (tiny, torch.from_numpy(tiny)):
        frac = wrap(positions, cell if isinstance(positions, np.ndarray) else torch.from_numpy(cell)) / 10.0
        frac = np.asarray(frac)
        assert (frac >= 0).all() and (frac < 1).all(), frac
    assert wrap(tiny, cell)[0, 0, 0] == 0.0


def test_torch_paths_are_differentiable_with_constant_image_shifts():
    cell = torch.tensor(CELLS[1], requires_grad=True)
    vectors = torch.tensor(RNG.normal(scale=6.0, size=(30, 3)), requires_grad=True)
    out = minimum_image(vectors, cell)
    (grad_v,) = torch.autograd.grad(out.sum(), vectors, retain_graph=True)
    assert torch.equal(grad_v, torch.ones_like(grad_v))  # the shift is a constant: d(out)/d(vectors) = 1
    shifts = ((vectors - out) @ torch.linalg.inv(cell)).detach()
    (grad_c,) = torch.autograd.grad(out.sum(), cell)
    torch.testing.assert_close(grad_c, -shifts.T @ torch.ones_like(out))
    b = torch.tensor(RNG.normal(size=(3, 8, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: dihedrals(x[0], x[1], x[2]), (b,))
    assert torch.autograd.gradcheck(lambda x: angles(x[0], x[1]), (b,))

