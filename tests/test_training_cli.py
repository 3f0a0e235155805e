"""The Lightning CLI's conventions: predictions written, the printed config is what runs, help with descriptions, no
argv warning, a resumed fit continues its wandb run."""

from __future__ import annotations

import re
import shutil
import sys
import warnings

import ase.io
import h5py
import numpy as np
import pytest
import torch
import yaml
from test_training import config, tiny  # noqa: F401 - the tiny dataset fixture

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset
from cgzoo.data.splits import block_split
from cgzoo.models import NETWORKS
from cgzoo.models.checkpoint import load_model
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.training.cli import WANDB_ID_FILE
from cgzoo.units import KCAL_MOL_A_TO_EV_A, KCAL_MOL_TO_EV


def test_predict_writes_the_model_energies_and_forces_of_the_test_frames(tiny, tmp_path):  # noqa: F811
    root = tmp_path / "run"
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_steps=2)]) == 0
    ckpt = root / "checkpoints" / "last.ckpt"
    out = tmp_path / "pred" / "forces.h5"
    assert main(["predict", *config(tiny, "pair_mlp", "delta", tmp_path / "predict"), "--ckpt_path", str(ckpt),
                 "--predictions.path", str(out)]) == 0
    dataset = CGDataset.load(tiny[1])
    frames = block_split(dataset.n_frames, (0.6, 0.2, 0.2), n_blocks=5, gap=0, seed=0)["test"]
    model, top = load_model(ckpt).double(), dataset.topology
    graph = batch_graph(dataset.positions[frames], dataset.boxes[frames], top.bead_types,
                        TopologyCache(top.n_beads, top.bonds, top.molecule_ids), model.cutoff, dtype=torch.float64)
    expected = model(graph)
    with h5py.File(out) as handle:
        assert handle.attrs["energy_unit"] == "kcal/mol" and handle.attrs["force_unit"] == "kcal/mol/Å"
        group = handle["dataset_0"]
        assert group.attrs["path"] == str(tiny[1])
        assert group["frame"][:].tolist() == frames.tolist()
        forces, energies = group["forces"][:], group["energy"][:]
        assert forces.shape == (len(frames), top.n_beads, 3)
        # trained in float32: the file holds the float32 model's numbers
        torch.testing.assert_close(torch.from_numpy(forces).reshape(-1, 3), expected["forces"].detach(), rtol=1e-4,
                                   atol=1e-4)
        torch.testing.assert_close(torch.from_numpy(group["energy"][:]), expected["energy"].detach(), rtol=1e-5, atol=1e-3)
        torch.testing.assert_close(torch.from_numpy(group["reference_forces"][:]),
                                   torch.from_numpy(dataset.forces[frames]).double())
    xyz = tmp_path / "pred" / "forces.extxyz"  # the same numbers for ASE, in its units
    assert main(["predict", *config(tiny, "pair_mlp", "delta", tmp_path / "predict"), "--ckpt_path", str(ckpt),
                 "--predictions.path", str(xyz)]) == 0
    atoms = ase.io.read(xyz, index=":")
    assert [a.info["frame"] for a in atoms] == frames.tolist()
    np.testing.assert_allclose(np.stack([a.get_forces() for a in atoms]), forces * KCAL_MOL_A_TO_EV_A, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose([a.get_potential_energy() for a in atoms], energies * KCAL_MOL_TO_EV, rtol=1e-6)


def test_print_config_shows_the_loggers_and_callbacks_that_run(tiny, tmp_path, capsys):  # noqa: F811
    root = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["fit", *config(tiny, "pair_mlp", "delta", root), "--print_config"])
    assert info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    loggers = {entry["class_path"].rpartition(".")[2]: entry["init_args"] for entry in printed["trainer"]["logger"]}
    assert loggers["CSVLogger"]["save_dir"] == str(root) and loggers["WandbLogger"]["offline"] is True
    assert printed["best_checkpoint"]["monitor"] == "val/force_rmse" and printed["last_checkpoint"]["save_last"] is True
    assert printed["early_stopping"]["patience"] == 10 and "learning_curves" in printed
    assert printed["predictions"] == {"path": None}
    assert not root.exists()  # printing runs nothing
    # the printed config is one a run takes back
    saved = tmp_path / "printed.yaml"
    saved.write_text(yaml.safe_dump({**printed, "trainer": {**printed["trainer"], "max_steps": 1}}))
    assert main(["fit", "--config", str(saved)]) == 0
    assert (root / "checkpoints" / "last.ckpt").exists() and (root / "learning_curve.csv").exists()


def _option_help(text: str) -> dict[str, str]:
    """``--option`` → its help text, from argparse's help output."""
    blocks = re.split(r"\n  (?=--)", text)
    return {block.split()[0]: " ".join(block.split()[1:]) for block in blocks if block.startswith("--")}


def test_fit_help_describes_every_model_and_data_option(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    options = _option_help(capsys.readouterr().out)
    ours = {k: v for k, v in options.items() if k.startswith(("--model.", "--data.")) and not k.endswith(".help")}
    assert len(ours) > 20
    undescribed = [k for k, v in ours.items() if re.match(r"^[A-Z_]+ \(type:", v) or v.startswith("(type:")]
    assert not undescribed, undescribed
    assert all(f"'{name}'" in options["--model.network"] for name in NETWORKS)
    assert "{plateau,cosine,none}" in options["--model.scheduler"] and "AdamW learning rate" in options["--model.lr"]


def test_no_argv_warning_and_a_resumed_fit_continues_its_wandb_run(tiny, tmp_path, monkeypatch):  # noqa: F811
    """A command line of its own (as under pytest or ``cgzoo study``) beside the CLI's arguments: no Lightning warning,
    sys.argv restored; the fit resumed from ``last`` logs into the wandb run the first one started, a new fit does not."""
    monkeypatch.setattr(sys, "argv", ["cgzoo", "study", "some.yaml", "--preset", "cpu"])
    root = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=1)]) == 0
    assert not [w for w in caught if "args parameter" in str(w.message)], [str(w.message) for w in caught]
    assert sys.argv == ["cgzoo", "study", "some.yaml", "--preset", "cpu"]
    first = (root / WANDB_ID_FILE).read_text().strip()
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=2), "--ckpt_path", "last"]) == 0
    runs = sorted((root / "wandb").glob("offline-run-*"))
    # wandb names a run's directory offline-run-<time>-<id>, with "-1" appended when a run of that id already has a
    # directory from the same second
    assert len(runs) == 2 and all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{first}(-\d+)?", run.name) for run in runs)
    assert (root / WANDB_ID_FILE).read_text().strip() == first
    saved = yaml.safe_load((root / "config.yaml").read_text())["trainer"]["logger"]  # a new run from it: a new wandb run
    assert [entry["init_args"].get("id") for entry in saved if entry["class_path"].endswith("WandbLogger")] == [None]
    shutil.rmtree(root / "checkpoints")  # a new run in the same folder (refused while the old checkpoints are there)
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=1)]) == 0
    assert (root / WANDB_ID_FILE).read_text().strip() != first


def test_a_fit_says_nothing_that_is_not_about_the_run(tiny, tmp_path, capfd):  # noqa: F811
    """No wandb banner or summary, no Lightning logger advertisement, no LeafSpec deprecation and no warning that an
    epoch is shorter than the logging interval (the interval is capped at the epoch, so train metrics are logged)."""
    root = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=1), "--trainer.log_every_n_steps", "50"]) == 0
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "logging interval" in m or "LeafSpec" in m], messages
    out, err = capfd.readouterr()
    assert not [line for line in (out + err).splitlines() if line.startswith(("wandb:", "💡 Tip"))], out + err
    (metrics,) = root.glob("csv/version_*/metrics.csv")
    assert "train/loss" in metrics.read_text().splitlines()[0]
