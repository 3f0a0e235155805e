"""Training on several systems at once: batches that mix topologies give each frame its own forces, types merge by name."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import yaml
from synthetic import forces_of, lj_fluid_system
from torch_geometric.data import Batch

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset, CGTopology
from cgzoo.data.pyg import frame_to_data
from cgzoo.errors import InputError
from cgzoo.models.checkpoint import load_model, read_checkpoint
from cgzoo.neighbors import batch_graph
from cgzoo.priors import save_prior
from cgzoo.testing.cases import CUTOFF, NETWORK_CASES, physics_prior
from cgzoo.testing.systems import TYPES, separated_chains
from cgzoo.training.data import CGDataModule
from cgzoo.training.module import CGLightningModule

os.environ["WANDB_MODE"] = "offline"
SPLIT = {"fractions": (0.6, 0.2, 0.2), "blocks": 5, "gap": 0}


@pytest.fixture(scope="module")
def two_systems(tmp_path_factory):
    """A 64-bead LJ fluid (types A, B) and eight bonded 4-bead chains whose file lists its types as B, A; their prior."""
    root = tmp_path_factory.mktemp("batches")
    prior = physics_prior().double()
    rng = np.random.default_rng(0)
    paths = []
    for name, system, type_names in (("fluid", lj_fluid_system(n_frames=10, seed=1), TYPES),
                                     ("chains", separated_chains(n_frames=10, seed=2), TYPES[::-1])):
        n = len(system["bead_types"])
        forces = forces_of(prior, system, CUTOFF) + rng.normal(0, 0.5, (10, n, 3))
        bead_types = system["bead_types"] if type_names == TYPES else 1 - system["bead_types"]
        top = CGTopology(bead_types=bead_types, type_names=type_names, bead_names=np.array(["X"] * n),
                         masses=np.full(n, 20.0), molecule_ids=system["molecule_ids"], bonds=system["bonds"],
                         angles=system["angles"], dihedrals=system["dihedrals"])
        paths.append(CGDataset(system["positions"].astype(np.float32), forces.astype(np.float32), system["boxes"],
                               np.arange(10) * 500.0, top, 300.0, {}).save(root / f"{name}.h5"))
    return root, paths, save_prior(physics_prior(), root / "prior.json")


def data_module(two_systems, **kwargs) -> CGDataModule:
    root, paths, prior = two_systems
    args = {"data": [str(p) for p in paths], "prior": str(prior), "batch_size": 4, "cache_dir": str(root / "cache"),
            **SPLIT, **kwargs}
    return CGDataModule(**args)


def test_types_merge_by_name_and_train_batches_mix_systems(two_systems):
    dm = data_module(two_systems)
    facts = dm.facts()
    assert facts.type_names == TYPES and facts.residual_rms > 0 and facts.force_rms > facts.residual_rms
    chains = CGDataset.load(two_systems[1][1]).topology
    assert [TYPES[t] for t in dm.datasets[1].topology.bead_types] == [chains.type_names[t] for t in chains.bead_types]
    sizes = [sorted(t.n_beads for t in batch.topology) for batch in dm.train_dataloader()]
    assert sum(len(s) for s in sizes) == 12 and any(s[0] != s[-1] for s in sizes)


def test_mixed_batch_forces_equal_per_frame_forces_and_a_step_trains(two_systems):
    """Fluid, chains, fluid in one batch: bonded offsets and each frame's exclusions are its own."""
    dm = data_module(two_systems)
    torch.manual_seed(0)
    module = CGLightningModule(network="schnet", network_args=NETWORK_CASES["schnet"], mode="delta", dtype="float64",
                               data_facts=dm.facts())
    picks = [(0, 0), (1, 3), (0, 5)]
    frames = [frame_to_data(dm.datasets[d], f, topology=dm.topologies[d]) for d, f in picks]
    batch = Batch.from_data_list(frames)
    batched = module.predict_step(batch, 0)["forces"]
    singles = [module.predict_step(Batch.from_data_list([frame]), 0)["forces"] for frame in frames]
    torch.testing.assert_close(batched, torch.cat(singles), rtol=1e-10, atol=1e-10)
    for (d, f), single in zip(picks, singles):  # the graph MD and evaluation build from the dataset itself
        ds, top = dm.datasets[d], dm.datasets[d].topology
        graph = batch_graph(ds.positions[f][None], ds.boxes[f][None], top.bead_types, dm.topologies[d], module.model.cutoff,
                            top.bonds, top.angles, top.dihedrals)
        torch.testing.assert_close(module.model(graph)["forces"], single, rtol=1e-10, atol=1e-10)
    loss = module.training_step(batch, 0)
    loss.backward()
    grads = [p.grad for p in module.model.net.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and grads and all(torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    assert all(p.grad is None for p in module.model.prior.parameters())


def test_fit_on_two_datasets_then_resume(two_systems, tmp_path):
    root, paths, prior = two_systems
    run = tmp_path / "run"
    cfg = {"seed_everything": 0,
           "model": {"network": "pair_mlp", "network_args": NETWORK_CASES["pair_mlp"], "mode": "delta"},
           "data": {"data": [str(p) for p in paths], "prior": str(prior), "fractions": list(SPLIT["fractions"]),
                    "blocks": SPLIT["blocks"], "gap": SPLIT["gap"], "batch_size": 4, "cache_dir": str(root / "cache")},
           "trainer": {"max_epochs": 1, "default_root_dir": str(run), "enable_progress_bar": False,
                       "enable_model_summary": False, "log_every_n_steps": 1}}
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", str(config)]) == 0
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = read_checkpoint(last)
    assert "data_facts" not in checkpoint["hyper_parameters"] and checkpoint["global_step"] == 3
    assert load_model(last).type_names == TYPES
    assert main(["fit", "--config", str(config), "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    assert read_checkpoint(last)["global_step"] == 6


def test_fit_spec_needs_one_dataset_and_prior_types_must_be_the_datas(two_systems, tmp_path):
    spec = tmp_path / "fm.yaml"
    spec.write_text(yaml.safe_dump({"terms": [{"fit": "force_matching", "cutoff": CUTOFF}]}))
    with pytest.raises(InputError, match="fm.yaml: a prior fit spec is fitted on one dataset"):
        data_module(two_systems, prior=str(spec)).setup()
    swapped = save_prior(physics_prior(), tmp_path / "swapped.json")
    swapped.write_text(swapped.read_text().replace('"A"', '"tmp"').replace('"B"', '"A"').replace('"tmp"', '"B"'))
    with pytest.raises(InputError, match=r"swapped.json: the prior's bead types \['B', 'A'\] are not the data's"):
        data_module(two_systems, prior=str(swapped)).setup()
