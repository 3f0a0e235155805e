"""Training: a few steps of every architecture in every mode, exact resume, checkpoint reload, offline wandb (DDP: test_ddp.py)."""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from synthetic import build_prior_for_tests, forces_of, lj_fluid_system

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset, CGTopology
from cgzoo.errors import InputError
from cgzoo.models import MODES, NETWORKS
from cgzoo.models.checkpoint import load_model
from cgzoo.testing.cases import LJ_TRUE, NETWORK_CASES
from cgzoo.testing.systems import TYPES
from cgzoo.training import cli
from cgzoo.training.early_stopping import EarlyStopping

os.environ["WANDB_MODE"] = "offline"
CUT = 6.0
ZOO = Path(__file__).parents[1] / "models"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 64-bead LJ fluid, 20 frames, with a force-matching prior spec."""
    root = tmp_path_factory.mktemp("train")
    system = lj_fluid_system(n_frames=20, seed=4)
    forces = forces_of(build_prior_for_tests(LJ_TRUE, CUT), system, CUT + 0.5)
    rng = np.random.default_rng(0)
    n = len(system["bead_types"])
    top = CGTopology(bead_types=system["bead_types"], type_names=TYPES, bead_names=np.array(["X"] * n),
                     masses=np.full(n, 20.0), molecule_ids=system["molecule_ids"])
    data = CGDataset(system["positions"].astype(np.float32), (forces + rng.normal(0, 0.5, forces.shape)).astype(np.float32),
                     system["boxes"], np.arange(20) * 500.0, top, 300.0, {}).save(root / "tiny.h5")
    spec = root / "fm.yaml"
    spec.write_text(yaml.safe_dump({"terms": [{"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.25}]}))
    return root, data, spec


def config(tiny, network: str, mode: str, root: Path, **trainer) -> list[str]:
    """An architecture config written here, then the shipped mode config, as the zoo combines them; the tiny prior spec."""
    base, data, spec = tiny
    cfg = {"seed_everything": 0,
           "model": {"network": network, "network_args": NETWORK_CASES[network], "lr": 1e-3},
           "data": {"data": str(data), "fractions": [0.6, 0.2, 0.2],
                    "blocks": 5, "gap": 0, "batch_size": 2, "cache_dir": str(base / "cache")},
           "trainer": {"max_epochs": 1, "default_root_dir": str(root), "enable_progress_bar": False,
                       "enable_model_summary": False, "log_every_n_steps": 1, **trainer}}
    path = root.with_suffix(".yaml")
    root.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return ["--config", str(path), "--config", str(ZOO / "modes" / f"{mode}.yaml"),
            "--data.prior", "none" if mode == "ml_only" else str(spec)]


def test_zoo_configs_cover_every_network_and_mode():
    """``models/<arch>.yaml`` for every registered network (with arguments that fit it), ``models/modes/<mode>.yaml``
    for every mode, and nothing else: the zoo is architectures × modes by combination, not by copies."""
    missing = sorted(n for n in NETWORKS if not (ZOO / f"{n}.yaml").exists())
    assert not missing, f"no zoo config for networks {missing}: add models/<name>.yaml (see docs/extending.md)"
    for name in NETWORKS:
        model = yaml.safe_load((ZOO / f"{name}.yaml").read_text())["model"]
        assert model["network"] == name and "mode" not in model
        cli.check_network(name, model["network_args"])
    for mode in MODES:
        assert yaml.safe_load((ZOO / "modes" / f"{mode}.yaml").read_text())["model"] == {"mode": mode}
    models = [p.name for p in ZOO.rglob("*.yaml") if ZOO / "ddp" not in p.parents]  # models/ddp/: trainer fragments
    assert sorted(models) == sorted([f"{n}.yaml" for n in NETWORKS] + [f"{m}.yaml" for m in MODES])


def test_default_run_directory_is_network_and_mode():
    """Without ``--trainer.default_root_dir`` a zoo pair trains into ``runs/train/<arch>_<mode>``."""
    assert cli.run_directory("schnet", "delta") == "runs/train/schnet_delta"
    assert cli.run_directory("mypkg.nets.MyNet", "ml_only") == "runs/train/MyNet_ml_only"


# prior_only does not depend on the architecture: once is enough
CASES = [(n, m) for n in sorted(NETWORKS) for m in ("delta", "ml_only")] + [("pair_mlp", "prior_only")]


@pytest.mark.parametrize("network, mode", CASES)
def test_few_steps_every_architecture_and_mode(tiny, tmp_path, network, mode):
    root = tmp_path / "run"
    assert main(["fit", *config(tiny, network, mode, root, max_steps=3)]) == 0
    last = root / "checkpoints" / "last.ckpt"
    assert last.exists()
    model = load_model(last)
    assert model.mode == mode and model.type_names == TYPES
    assert (model.net is None) == (mode == "prior_only")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in torch.load(path, weights_only=True)["state_dict"].items()}


def test_resume_equals_uninterrupted_run(tiny, tmp_path):
    straight = tmp_path / "straight"
    assert main(["fit", *config(tiny, "pair_mlp", "delta", straight, max_epochs=4)]) == 0
    broken = tmp_path / "broken"
    assert main(["fit", *config(tiny, "pair_mlp", "delta", broken, max_epochs=2)]) == 0  # "killed" after epoch 2
    assert main(["fit", *config(tiny, "pair_mlp", "delta", broken, max_epochs=4), "--ckpt_path", "last"]) == 0
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(broken / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 4 * 6
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-6, atol=1e-7)


def test_checkpoint_reload_predicts_identically_and_bad_files_fail(tiny, tmp_path):
    root = tmp_path / "run"
    assert main(["fit", *config(tiny, "schnet", "delta", root, max_steps=4)]) == 0
    ckpt = root / "checkpoints" / "last.ckpt"
    test_root = tmp_path / "test"
    assert main(["test", *config(tiny, "schnet", "delta", test_root), "--ckpt_path", str(ckpt)]) == 0
    import csv

    rows = [r for f in test_root.glob("csv/*/metrics.csv") for r in csv.DictReader(f.open()) if r.get("test/force_rmse")]
    assert rows and float(rows[-1]["test/force_rmse"]) > 0
    first, second = load_model(ckpt), load_model(ckpt)
    from cgzoo.neighbors import TopologyCache, batch_graph

    dataset = CGDataset.load(tiny[1])
    top = dataset.topology
    graph = batch_graph(dataset.positions[:2], dataset.boxes[:2], top.bead_types,
                        TopologyCache(top.n_beads, top.bonds, top.molecule_ids), first.cutoff, dtype=torch.float32)
    torch.testing.assert_close(first(graph)["forces"], second(graph)["forces"], rtol=0, atol=0)
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(ckpt.read_bytes()[:5000])
    with pytest.raises(InputError, match="broken.ckpt: not a readable checkpoint"):
        load_model(broken)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(InputError, match="foreign.ckpt: not a cgzoo model checkpoint"):
        load_model(foreign)


def test_wandb_offline_run_directory_without_network(tiny, tmp_path):
    root = tmp_path / "run"
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_steps=2)]) == 0
    runs = list((root / "wandb").glob("offline-run-*"))
    assert runs, "no offline wandb run directory"
    assert list((root / "csv").rglob("metrics.csv"))


def test_delta_training_freezes_the_prior_and_ema_keeps_integer_tables():
    """Only the network is optimised; the EMA copy never averages buffers such as a prior's type lookup table."""
    from cgzoo.priors import build_prior
    from cgzoo.training.facts import DataFacts
    from cgzoo.training.module import CGLightningModule

    names = ["A", "B", "C", "D"]
    table = {"x": list(np.linspace(2.5, 6.0, 8)), "u": list(np.linspace(1.0, 0.0, 8))}
    tab = {"class_path": "tabulated", "init_args": {"type_names": names, "kind": "pair",
                                                    "tables": {f"{a}-{b}": table for i, a in enumerate(names) for b in names[i:]}}}
    lj = {"class_path": "lennard_jones", "init_args": {"type_names": names, "cutoff": CUT,
                                                       "default": {"sigma": 3.4, "epsilon": 0.2}, "params": {}}}
    facts = DataFacts(names, build_prior([tab, lj]), force_rms=1.0, residual_rms=1.0, source="test")
    module = CGLightningModule(network="pair_mlp", network_args=NETWORK_CASES["pair_mlp"], ema_decay=0.9, data_facts=facts)
    trainable = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("net.") for n in trainable)
    lookup = module.model.prior.priors[0].lookup.clone()
    for _ in range(5):
        with torch.no_grad():
            for p in module.model.net.parameters():
                p.add_(0.1)
        module.ema.update_parameters(module.model)
    torch.testing.assert_close(module.ema.module.prior.priors[0].lookup, lookup)


@pytest.mark.parametrize("threshold", [("--early_stopping.min_delta", "100"), ("--early_stopping.min_rel_delta", "0.9")])
def test_early_stopping_stops_and_learning_curve_has_every_epoch(tiny, tmp_path, threshold):
    """No epoch improves by the (huge) absolute or relative threshold: training stops after the patience; the curve
    holds each epoch run."""
    root = tmp_path / "stop"
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=30),
                 "--early_stopping.patience", "2", *threshold]) == 0
    rows = (root / "learning_curve.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train/force_rmse,val/force_rmse")
    epochs = [int(r.split(",")[0]) for r in rows[1:]]
    assert epochs == list(range(3))  # the first epoch sets the best, two more without improvement stop it
    assert all(r.split(",")[2] for r in rows[1:]) and (root / "learning_curve.png").stat().st_size > 0


@pytest.mark.parametrize("mode, sign", [("min", -1.0), ("max", 1.0)])
def test_relative_early_stopping_threshold_follows_the_best_score(mode, sign):
    """The threshold is the larger of min_delta and min_rel_delta × |best|, signed as Lightning compares it."""
    stopper = EarlyStopping(monitor="val/force_rmse", mode=mode, min_delta=0.05, min_rel_delta=0.01)
    stopper._update_threshold()  # no best yet: the absolute threshold
    assert stopper.min_delta == pytest.approx(sign * 0.05)
    stopper.best_score = torch.tensor(12.0)
    stopper._update_threshold()
    assert stopper.min_delta == pytest.approx(sign * 0.12)
    stopper.best_score = torch.tensor(2.0)
    stopper._update_threshold()
    assert stopper.min_delta == pytest.approx(sign * 0.05)
    with pytest.raises(InputError, match="min_rel_delta"):
        EarlyStopping(monitor="val/force_rmse", min_rel_delta=-0.1)


def test_a_new_fit_into_an_earlier_runs_folder_is_refused_and_its_resume_is_quiet(tiny, tmp_path, capsys):
    """Without --ckpt_path a second fit would overwrite the first run's last.ckpt: one line, exit 2, nothing touched; a
    resume does not repeat Lightning's warning that its own checkpoint folder is not empty."""
    root = tmp_path / "run"
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=1)]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in (root / "checkpoints").iterdir()}
    capsys.readouterr()
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=2)]) == 2
    err = capsys.readouterr().err.strip()
    assert "checkpoint(s) of an earlier run: continue it with --ckpt_path last" in err and len(err.splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in (root / "checkpoints").iterdir()} == before
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=2), "--ckpt_path", "last"]) == 0
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]


def test_learning_curve_continues_across_resume(tiny, tmp_path):
    root = tmp_path / "resume"
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=2)]) == 0
    assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=3), "--ckpt_path", "last"]) == 0
    epochs = [int(r.split(",")[0]) for r in (root / "learning_curve.csv").read_text().splitlines()[1:]]
    assert epochs == [0, 1, 2]


def test_pressure_term_pulls_the_model_pressure_to_its_target(tiny, tmp_path):
    """Forces do not fix the pressure; the pressure term does: the same training with a weight ends far closer."""
    target = -3000.0
    final = {}
    for weight in (0.0, 30.0):
        root = tmp_path / f"p{weight:g}"
        assert main(["fit", *config(tiny, "pair_mlp", "ml_only", root, max_epochs=4), "--model.pressure_bar",
                     str(target), "--model.pressure_weight", str(weight)]) == 0
        rows = [r for r in csv.DictReader(next(root.glob("csv/version_*/metrics.csv")).open()) if r.get("val/pressure_bar")]
        final[weight] = float(rows[-1]["val/pressure_bar"])
    assert abs(final[30.0] - target) < 0.5 * abs(final[0.0] - target), final


def test_pressure_target_prior_keeps_the_network_virial_free(tiny, tmp_path):
    """``--model.pressure_bar prior``: the Δ network is pushed to add no net virial to its prior's pressure."""
    final = {}
    for weight in (0.0, 1.0e4):
        root = tmp_path / f"d{weight:g}"
        assert main(["fit", *config(tiny, "pair_mlp", "delta", root, max_epochs=4), "--model.pressure_bar", "prior",
                     "--model.pressure_weight", str(weight), "--model.lr", "1e-2"]) == 0
        rows = [r for r in csv.DictReader(next(root.glob("csv/version_*/metrics.csv")).open())
                if r.get("val/pressure_miss_bar")]
        final[weight] = abs(float(rows[-1]["val/pressure_miss_bar"]))
    assert final[1.0e4] < 0.5 * final[0.0], final  # the tiny net's virial is tens of bar: a strong weight


def test_pressure_options_are_checked(tiny, tmp_path, capsys):
    assert main(["fit", *config(tiny, "pair_mlp", "ml_only", tmp_path / "x"), "--model.pressure_weight", "1"]) == 2
    assert "needs --model.pressure_bar" in capsys.readouterr().err
    assert main(["fit", *config(tiny, "pair_mlp", "ml_only", tmp_path / "y"), "--model.pressure_bar", "prior"]) == 2
    assert "needs --model.mode delta" in capsys.readouterr().err
