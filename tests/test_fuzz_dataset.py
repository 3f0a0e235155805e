"""Property-based fuzzing of the dataset reader: any damaged or hand-made HDF5 file gives a checked dataset or a
one-line :class:`~cgzoo.errors.CGZooError`, never another exception and never unchecked garbage (issue 14)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgzoo.data.dataset import CGDataset, load_topology, verify_checksums
from cgzoo.errors import CGZooError

from conftest import make_dataset

pytestmark = pytest.mark.faults
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_ORIGINAL: dict[str, bytes] = {}


def original_bytes() -> bytes:
    """A small valid dataset file, written once."""
    if "h5" not in _ORIGINAL:
        with tempfile.TemporaryDirectory() as tmp:
            path = make_dataset(n_frames=6, n_mol=3).save(Path(tmp) / "ok.h5")
            _ORIGINAL["h5"] = path.read_bytes()
    return _ORIGINAL["h5"]


def read_all(path: Path) -> CGDataset | None:
    """Every reader of a dataset file; returns the dataset, or None after a :class:`CGZooError`."""
    try:
        verify_checksums(path)
        load_topology(path)
        ds = CGDataset.load(path)
    except CGZooError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return None
    # whatever was accepted is physically sane
    assert ds.positions.shape == ds.forces.shape == (ds.n_frames, ds.n_beads, 3)
    assert (ds.topology.masses > 0).all() and np.isfinite(ds.forces).all()
    assert (np.abs(np.linalg.det(ds.boxes.astype(float))) > 0).all()
    return ds


@FUZZ
@given(st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=64)), min_size=1, max_size=6))
def test_bytes_overwritten_anywhere(patches):
    """Random byte runs written over the file: either rejected in one line or bit-identical arrays."""
    raw = bytearray(original_bytes())
    for where, data in patches:
        start = int(where * (len(raw) - 1))
        raw[start:start + len(data)] = data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.h5"
        path.write_bytes(bytes(raw[:len(original_bytes())]))
        ds = read_all(path)
        if ds is not None:  # the damage missed the arrays (padding, free space): the data are unchanged
            ref = make_dataset(n_frames=6, n_mol=3)
            np.testing.assert_array_equal(ds.positions, ref.positions)
            np.testing.assert_array_equal(ds.forces, ref.forces)
            assert ds.topology.type_names == ref.topology.type_names


@FUZZ
@given(st.floats(0.01, 1.0))
def test_truncated_anywhere(fraction):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cut.h5"
        path.write_bytes(original_bytes()[:int(fraction * len(original_bytes()))])
        if fraction < 1.0:
            assert read_all(path) is None


ARRAYS = ["positions", "forces", "box", "time", "bead_types", "masses", "molecule_ids", "bonds", "angles", "dihedrals"]
EDITS = st.sampled_from(["delete", "zeros", "nan", "negative", "reshape", "huge_index", "strings"])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(ARRAYS), EDITS), min_size=1, max_size=3), st.booleans())
def test_arrays_edited_by_a_foreign_writer(edits, keep_checksums):
    """Arrays replaced by other HDF5 writers (with or without the checksums): valid, or refused in one line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edited.h5"
        path.write_bytes(original_bytes())
        with h5py.File(path, "r+") as h5:
            if not keep_checksums:
                del h5.attrs["checksums"]
            for name, edit in edits:
                if name not in h5:
                    continue
                old = h5[name][()]
                del h5[name]
                if edit == "delete":
                    continue
                new = {"zeros": lambda: np.zeros_like(old),
                       "nan": lambda: np.full(old.shape, np.nan),
                       "negative": lambda: -np.abs(old) - 1,
                       "reshape": lambda: old.reshape(-1),
                       "huge_index": lambda: np.full(old.shape, 10**6, dtype=np.int64),
                       "strings": lambda: np.array([b"x"] * max(1, old.size))}[edit]()
                h5[name] = new
        read_all(path)
