"""Lightning data module: a CG dataset, contiguous-block splits, the prior fitted on the training split (cached), PyG batches.

The prior is given as a fit spec (YAML, fitted here on the training frames only), a fitted
prior file (``prior.json``/its directory), or ``none``. Fitted priors are cached under
``cache_dir`` keyed by a hash of the dataset file, the spec text and the split, so every model
trained on the same data and prior shares one fit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch_geometric.loader import DataLoader

from cgzoo.data.dataset import CGDataset
from cgzoo.data.pyg import frame_to_data
from cgzoo.data.splits import SplitError, block_split
from cgzoo.errors import InputError
from cgzoo.neighbors import TopologyCache
from cgzoo.outputs import temp_sibling
from cgzoo.priors import NoPrior, Prior, build_prior, load_prior, prior_spec, save_prior


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


class EpochShuffle(torch.utils.data.Sampler):
    """A shuffle that depends only on (seed, epoch), so a run resumed from a checkpoint sees the same batches."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class CGDataModule(pl.LightningDataModule):
    """Loads ``data`` (a cgzoo ``.h5``), splits it by time blocks, provides the prior and PyG loaders."""

    def __init__(
        self,
        data: str = "datasets/default/spce-water_1bead_com.h5",
        prior: str = "datasets/priors/fm_pair.yaml",
        fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        blocks: PositiveInt = 10,
        gap: NonNegativeInt = 2,
        split_seed: int = 0,
        batch_size: PositiveInt = 4,
        max_train_frames: PositiveInt | None = None,
        num_workers: NonNegativeInt = 0,
        cache_dir: str = "runs/prior_cache",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.data_path = Path(data)
        self.prior_source = prior
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir)
        self.dataset: CGDataset | None = None
        self.splits: dict[str, np.ndarray] = {}
        self.prior: Prior | None = None
        self.prior_report: dict[str, Any] = {}

    # -- set-up ---------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Load the data, cut the splits and obtain the prior (once per process)."""
        if self.dataset is not None:
            return
        self.dataset = CGDataset.load(self.data_path)
        hp = self.hparams
        self.splits = self._split()
        if hp.max_train_frames and len(self.splits["train"]) > hp.max_train_frames:
            train = self.splits["train"]
            self.splits["train"] = train[np.linspace(0, len(train) - 1, hp.max_train_frames).round().astype(int)]
        self.prior = self._obtain_prior()
        top = self.dataset.topology
        self.topology_cache = TopologyCache(top.n_beads, top.bonds, top.molecule_ids)

    def _split(self) -> dict[str, np.ndarray]:
        """The block split of the dataset; a one-line :class:`InputError` naming the file and the ``--data`` options."""
        hp = self.hparams
        try:
            return block_split(self.dataset.n_frames, tuple(hp.fractions), n_blocks=hp.blocks, gap=hp.gap, seed=hp.split_seed)
        except SplitError as exc:
            raise InputError(self.data_path, f"{exc.problem} (--data.fractions {list(hp.fractions)}, --data.blocks "
                                             f"{hp.blocks}, --data.gap {hp.gap})") from None

    def _obtain_prior(self) -> Prior:
        source = self.prior_source
        names = self.type_names
        if source in (None, "", "none"):
            return NoPrior(names)
        path = Path(source)
        if path.suffix == ".json" or path.is_dir():
            prior = load_prior(path)
            self.prior_report = {"source": str(path)}
            return prior
        return self._fit_cached(path)

    def _fit_cached(self, spec_path: Path) -> Prior:
        """Fit the spec on the training split, or reuse an identical earlier fit from the cache."""
        from cgzoo.priors.fit import fit_prior, load_spec

        spec = load_spec(spec_path)
        hp = self.hparams
        spec["split"] = {"fractions": list(hp.fractions), "blocks": hp.blocks, "gap": hp.gap, "seed": hp.split_seed}
        key = hashlib.sha256(json.dumps({"data": file_sha256(self.data_path), "spec": spec}, sort_keys=True).encode()).hexdigest()
        cached = self.cache_dir / key[:16] / "prior.json"
        if cached.exists():
            payload = json.loads(cached.read_text())
            self.prior_report = payload.get("report", {})
            return build_prior(payload["prior"])
        prior, report = fit_prior(self.data_path, spec, progress=lambda msg: None)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(cached)  # per process, renamed when complete: parallel runs may fit the same prior
        save_prior(prior, tmp, {"report": report})
        os.replace(tmp, cached)
        self.prior_report = report
        return prior

    @property
    def type_names(self) -> list[str]:
        if self.dataset is None:
            raise RuntimeError("CGDataModule.setup() has not run")
        return list(self.dataset.topology.type_names)

    def prior_spec(self) -> dict[str, Any]:
        """The prior as a rebuildable spec (for checkpoints)."""
        return prior_spec(self.prior)

    # -- statistics used to normalise the network --------------------------------------------------

    def residual_force_rms(self, max_frames: int = 50, subtract_prior: bool = True) -> float:
        """RMS of the force components the network must learn on training frames (reference − prior, or the
        reference itself for ML-only models): the network's force scale, kcal/mol/Å."""
        from cgzoo.neighbors import batch_graph
        from cgzoo.priors.fit import prior_forces

        top = self.dataset.topology
        frames = self.splits["train"][:: max(1, len(self.splits["train"]) // max_frames)]
        total, count = 0.0, 0
        prior = self.prior.double()
        for f in frames:
            graph = batch_graph(self.dataset.positions[f][None], self.dataset.box[f][None], top.bead_types,
                                self.topology_cache, max(prior.cutoff, 1e-3), top.bonds, top.angles, top.dihedrals)
            residual = self.dataset.forces[f] - (prior_forces(prior, graph) if subtract_prior else 0.0)
            total += float((residual**2).sum())
            count += residual.size
        rms = math.sqrt(total / count)
        if not rms > 0:
            raise InputError(self.data_path, "the prior reproduces the training forces exactly; nothing to learn")
        return rms

    # -- loaders -----------------------------------------------------------------------------------

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        frames = self.splits[split]
        data = [frame_to_data(self.dataset, int(f)) for f in frames]
        sampler = EpochShuffle(len(data), self.hparams.split_seed) if shuffle else None
        return DataLoader(data, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


def batch_tensors(batch: Any, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The tensors of a PyG batch that a CGGraph needs, in ``dtype``."""
    return {"pos": batch.pos.to(dtype), "cell": batch.cell.to(dtype).reshape(-1, 3, 3), "batch": batch.batch,
            "bead_type": batch.bead_type, "bond_index": batch.bond_index, "angle_index": batch.angle_index,
            "dihedral_index": batch.dihedral_index}
