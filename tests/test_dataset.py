"""CG dataset format: round trips, extxyz export, PyG frames, block splits and bad-file errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset
from cgzoo.data.splits import block_split
from cgzoo.errors import InputError, OutputExistsError
from cgzoo.units import KCAL_MOL_A_TO_EV_A


def test_hdf5_round_trip(cg_dataset, tmp_path):
    path = cg_dataset.save(tmp_path / "ds.h5")
    back = CGDataset.load(path)
    np.testing.assert_array_equal(back.positions, cg_dataset.positions)
    np.testing.assert_array_equal(back.forces, cg_dataset.forces)
    np.testing.assert_array_equal(back.boxes, cg_dataset.boxes)
    np.testing.assert_array_equal(back.times, cg_dataset.times)
    assert back.topology.type_names == ["E", "M"]
    np.testing.assert_array_equal(back.topology.bead_types, cg_dataset.topology.bead_types)
    np.testing.assert_array_equal(back.topology.bonds, cg_dataset.topology.bonds)
    np.testing.assert_array_equal(back.topology.angles, cg_dataset.topology.angles)
    assert back.topology.dihedrals.shape == (0, 4)
    assert list(back.topology.bead_names[:3]) == ["A", "B", "C"]
    assert back.temperature == pytest.approx(298.15)
    assert back.provenance["mapping"]["name"] == "test"


def test_existing_output_refused_unless_overwrite(cg_dataset, tmp_path):
    path = cg_dataset.save(tmp_path / "ds.h5")
    with pytest.raises(OutputExistsError, match="ds.h5"):
        cg_dataset.save(path)
    cg_dataset.save(path, overwrite=True)


def test_extxyz_export_readable_by_ase(cg_dataset, tmp_path):
    from ase.io import read

    path = cg_dataset.save(tmp_path / "ds.extxyz")
    frames = read(path, index=":")
    assert len(frames) == cg_dataset.n_frames
    atoms = frames[3]
    np.testing.assert_allclose(atoms.positions, cg_dataset.positions[3], atol=1e-5)
    np.testing.assert_allclose(atoms.cell.array, cg_dataset.boxes[3], atol=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), cg_dataset.forces[3] * KCAL_MOL_A_TO_EV_A, rtol=1e-5, atol=1e-6)
    assert list(atoms.arrays["bead_type"][:3]) == ["E", "M", "E"]
    np.testing.assert_allclose(atoms.get_masses(), cg_dataset.topology.masses)
    assert atoms.pbc.all()


def test_pyg_batch_offsets_bonded_indices(cg_dataset):
    from torch_geometric.data import Batch

    from cgzoo.data.pyg import to_pyg_list

    data = to_pyg_list(cg_dataset, np.array([0, 1]))
    batch = Batch.from_data_list(data)
    n = cg_dataset.n_beads
    assert batch.cell.shape == (2, 3, 3)
    assert batch.pos.shape == (2 * n, 3)
    assert batch.bond_index.shape == (2, 2 * len(cg_dataset.topology.bonds))
    second = batch.bond_index[:, len(cg_dataset.topology.bonds):]
    np.testing.assert_array_equal(second.numpy().T, cg_dataset.topology.bonds + n)
    assert batch.angle_index.shape == (3, 2 * len(cg_dataset.topology.angles))


@pytest.mark.parametrize("gap", [0, 3])
def test_block_split_disjoint_contiguous(gap):
    splits = block_split(200, (0.8, 0.1, 0.1), n_blocks=10, gap=gap, seed=1)
    all_frames = np.concatenate(list(splits.values()))
    assert len(np.unique(all_frames)) == len(all_frames)
    assert set(splits["train"]).isdisjoint(splits["val"]) and set(splits["val"]).isdisjoint(splits["test"])
    assert len(splits["val"]) > 0 and len(splits["test"]) > 0
    labels = np.full(200, -1)
    for k, name in enumerate(("train", "val", "test")):
        labels[splits[name]] = k
    kept = labels[labels >= 0]
    assert np.count_nonzero(np.diff(kept)) <= 9  # at most one change per block boundary
    # where the split changes between kept frames, at least `gap` frames were dropped in between
    kept_idx = np.flatnonzero(labels >= 0)
    change = np.flatnonzero(np.diff(labels[kept_idx]) != 0)
    assert change.size > 0
    assert np.all(np.diff(kept_idx)[change] == gap + 1)


def test_block_split_deterministic_and_validated():
    a = block_split(100, seed=3)
    b = block_split(100, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError):
        block_split(5, n_blocks=10)


def test_load_rejects_foreign_and_broken_files(cg_dataset, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="junk.h5.*HDF5"):
        CGDataset.load(junk)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(InputError, match="foreign.h5.*not a cgzoo"):
        CGDataset.load(foreign)
    bad = cg_dataset.save(tmp_path / "nan.h5")
    with h5py.File(bad, "r+") as h5:  # a file from a writer that keeps no checksums
        h5["forces"][4, 0, 1] = np.nan
        del h5.attrs["checksums"]
    with pytest.raises(InputError, match="nan.h5: frame 4 has NaN"):
        CGDataset.load(bad)
    with pytest.raises(InputError, match="missing.h5"):
        CGDataset.load(tmp_path / "missing.h5")


def test_cli_info_convert_split(cg_dataset, tmp_path, capsys):
    path = cg_dataset.save(tmp_path / "ds.h5")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "frames            12" in out and "E " in out and "density" in out
    assert main(["convert", str(path), str(tmp_path / "ds.extxyz")]) == 0
    assert main(["convert", str(path), str(tmp_path / "ds.extxyz")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["split", str(path), "--blocks", "4"]) == 0
    assert main(["info", str(tmp_path / "nope.h5")]) == 2
    assert "nope.h5: dataset file does not exist" in capsys.readouterr().err


def test_info_shows_source_paths_without_the_build_machines_absolute_path(tmp_path):
    """Recorded source paths are shown as given, relative to the working directory, or by file name only."""
    from cgzoo.data.summary import format_summary, shown_path, source_line, summarize_file

    assert shown_path("runs/raw/traj.trr") == "runs/raw/traj.trr"
    assert shown_path(str(tmp_path / "raw" / "traj.trr"), cwd=tmp_path) == "raw/traj.trr"
    assert shown_path("/elsewhere/build/raw/traj.trr", cwd=tmp_path) == "traj.trr"
    assert source_line({"path": "/elsewhere/t.trr", "bytes": 3, "sha256": "ab" * 32}) == "t.trr (3 bytes, sha256 abababababab)"
    shipped = Path(__file__).resolve().parents[1] / "datasets" / "default" / "spce-water_1bead_com.h5"
    source = next(line for line in format_summary(summarize_file(shipped)).splitlines() if line.startswith("source"))
    # by file name, or relative when the checkout sits where the dataset was built: never the absolute build path
    shown = source.split(None, 1)[1]
    assert shown.startswith(("topology.json (", "runs/default_raw/topology.json (")) and " /" not in f" {shown}"
