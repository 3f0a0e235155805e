"""Fault suite, type names: long and non-ASCII bead type names survive every command, end to end.

``verylongtypename`` and ``verylongtypename2`` once became one type (fixed-width 16-character
strings) and ``simulate`` ran the wrong physics with exit 0. Here two types whose names share their
first 16 characters, one of them non-ASCII, go through map → fit-prior → fit → simulate → convert,
and every output must keep them apart and give each its own interactions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset
from cgzoo.generate import run_generate

pytestmark = [pytest.mark.faults, pytest.mark.filterwarnings("ignore:.*cutoff reduced")]
os.environ.setdefault("WANDB_MODE", "offline")

ROOT = Path(__file__).parents[1]
END = "verylongtypename_CH3–CH2_ende"  # an en dash and 29 characters
MIDDLE = "verylongtypename_CH2–CH2_βmitte"  # same first 16 characters, a Greek letter


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Path]:
    """Generate a tiny hexane run and take it through map, fit-prior and fit with the long type names."""
    root = tmp_path_factory.mktemp("names")
    run = run_generate("hexane-ua", root / "hexane", n_molecules=20, equil_ps=0.2, prod_ps=3.0, save_every_fs=100.0,
                       seed=1, threads=1, progress=False)
    mapping = yaml.safe_load((ROOT / "datasets" / "mappings" / "hexane-ua_3bead_com.yaml").read_text())
    for bead in mapping["molecules"][0]["beads"]:
        bead["type"] = {"E": END, "M": MIDDLE}[bead["type"]]
    (root / "mapping.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    spec = yaml.safe_load((ROOT / "datasets" / "priors" / "fm_full.yaml").read_text())
    spec["terms"][0]["cutoff"] = 6.0
    spec["split"]["blocks"] = 5
    (root / "prior.yaml").write_text(yaml.safe_dump(spec))
    data = root / "cg.h5"
    assert main(["map", "--top", str(run), "--mapping", str(root / "mapping.yaml"), "--out", str(data), "--quiet"]) == 0
    assert main(["fit-prior", "--data", str(data), "--prior", str(root / "prior.yaml"), "--out", str(root / "prior"),
                 "--no-plots", "--quiet", "--export", "lammps"]) == 0
    cfg = {"seed_everything": 0,
           "model": {"network": "pair_mlp", "network_args": {"cutoff": 5.0, "hidden": [8], "n_rbf": 8}, "mode": "delta"},
           "data": {"data": str(data), "prior": str(root / "prior.yaml"), "blocks": 5, "gap": 0, "batch_size": 2,
                    "cache_dir": str(root / "cache")},
           "trainer": {"max_steps": 2, "default_root_dir": str(root / "train"), "enable_progress_bar": False,
                       "enable_model_summary": False, "logger": False}}
    (root / "fit.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", str(root / "fit.yaml")]) == 0
    return {"root": root, "data": data, "prior": root / "prior", "ckpt": root / "train" / "checkpoints" / "last.ckpt"}


def test_dataset_and_prior_keep_both_names(pipeline):
    ds = CGDataset.load(pipeline["data"])
    assert ds.topology.type_names == [END, MIDDLE] or ds.topology.type_names == [MIDDLE, END]
    assert len(np.unique(ds.topology.bead_types)) == 2
    report = json.loads((pipeline["prior"] / "report.json").read_text())
    fitted = {name for term in report["terms"] for name in term.get("terms", {})}
    assert any(END in key and MIDDLE in key for key in fitted), fitted  # the E–M bond and pairs
    assert any(key.count(END) == 2 for key in fitted), fitted
    tables = (pipeline["prior"] / "tables" / "lammps" / "pair.table").read_text(encoding="utf-8")
    assert f"{END}-{MIDDLE}" in tables or f"{MIDDLE}-{END}" in tables


@pytest.mark.parametrize("engine", ["ase", "lammps"])
def test_simulate_gives_each_long_type_its_own_physics(pipeline, engine, tmp_path):
    """The run's forces at step 0 are the model's forces computed from the dataset's integer type indices."""
    import torch
    from ase.io import read

    from cgzoo.md.calculator import load_any_model
    from cgzoo.neighbors import TopologyCache, batch_graph
    from cgzoo.units import KCAL_MOL_A_TO_EV_A

    model_path = pipeline["prior"] if engine == "lammps" else pipeline["ckpt"]
    out = tmp_path / "run"
    assert main(["simulate", "--model", str(model_path), "--start", f"{pipeline['data']}@0", "--out", str(out),
                 "--ensemble", "nve", "--steps", "10", "--save-every", "5", "--engine", engine, "--quiet"]) == 0
    ds = CGDataset.load(pipeline["data"])
    top = ds.topology
    run = json.loads((out / "run.json").read_text())
    assert run["engine"] == engine
    assert list(run["bead_types"]) == [top.type_names[t] for t in top.bead_types]
    first = read(out / "traj.traj", index=0)
    model = load_any_model(model_path).double()
    graph = batch_graph(first.positions[None], np.asarray(first.cell)[None], top.bead_types,
                        TopologyCache(top.n_beads, top.bonds, top.molecule_ids), model.cutoff, top.bonds, top.angles,
                        top.dihedrals, dtype=torch.float64)
    reference = model(graph, forces=True)["forces"].detach().numpy() * KCAL_MOL_A_TO_EV_A
    scale = np.abs(reference).max()
    np.testing.assert_allclose(first.get_forces(), reference, atol=2e-3 * scale)
    # a restart relabels the beads from run.json: the names must survive that too
    assert main(["simulate", "--model", str(model_path), "--out", str(out), "--restart", "--steps", "20", "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["steps_done"] == 20


def test_convert_writes_full_names(pipeline, tmp_path):
    from ase.io import read

    out = tmp_path / "cg.extxyz"
    assert main(["convert", str(pipeline["data"]), str(out)]) == 0
    atoms = read(out, index=0)
    assert set(atoms.arrays["bead_type"]) == {END, MIDDLE}
