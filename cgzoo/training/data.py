"""Lightning data module: CG datasets, contiguous-block splits, the prior fitted on the training split (cached), PyG batches.

Its one job is data in: the frames of one or several datasets (systems of any size and
topology; a batch may mix them, each frame carrying its own topology), and the facts a model
needs from them (:class:`~cgzoo.training.facts.DataFacts`: merged bead type names, the prior,
the training force scales), which the CLI hands to the Lightning module.

The prior is given as a fit spec (YAML, fitted here on the training frames only; one dataset),
a fitted prior file (``prior.json``/its directory), or ``none``. Fitted priors are cached under
``cache_dir`` keyed by a hash of the dataset file, the spec text and the split, so every model
trained on the same data and prior shares one fit.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch_geometric.loader import DataLoader

from cgzoo.data.dataset import CGDataset
from cgzoo.data.pyg import frame_to_data, topology_cache
from cgzoo.data.splits import DEFAULT_SPLIT, SplitError, block_split
from cgzoo.errors import InputError
from cgzoo.hashing import file_sha256
from cgzoo.metrics import ForceErrors
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.outputs import output_lock, replace_file
from cgzoo.priors import NoPrior, Prior, build_prior, load_prior, save_prior
from cgzoo.training.facts import DataFacts


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
    """Loads ``data`` (one cgzoo ``.h5`` or a list of them), splits each by time blocks, provides the prior, the model's
    :class:`DataFacts` and PyG loaders whose batches may mix the datasets."""

    def __init__(
        self,
        data: str | list[str] = "datasets/default/spce-water_1bead_com.h5",
        prior: str = "datasets/priors/fm_pair.yaml",
        fractions: tuple[float, float, float] = DEFAULT_SPLIT["fractions"],
        blocks: PositiveInt = DEFAULT_SPLIT["n_blocks"],
        gap: NonNegativeInt = DEFAULT_SPLIT["gap"],
        split_seed: int = DEFAULT_SPLIT["seed"],
        batch_size: PositiveInt = 4,
        max_train_frames: PositiveInt | None = None,
        max_val_frames: PositiveInt | None = None,
        num_workers: NonNegativeInt = 0,
        cache_dir: str = "runs/prior_cache",
    ) -> None:
        """Keep the options; the data is read in :meth:`setup`.

        Args:
            data: a cgzoo dataset (``.h5``, from ``cgzoo map``) or a list of them; their frames train together.
            prior: the prior under the network: a fit spec (YAML, fitted here on the training split, one dataset
                only, cached), a fitted ``prior.json`` or its directory, or ``none``.
            fractions: train, validation and test fractions of each dataset's frames.
            blocks: contiguous time blocks each dataset is cut into before the blocks are dealt to the splits.
            gap: frames dropped where two splits meet, so correlated neighbours do not straddle them.
            split_seed: which blocks go to which split; also seeds the per-epoch shuffle of the training frames.
            batch_size: frames per batch.
            max_train_frames: thin each dataset's training split evenly in time to this many frames.
            max_val_frames: thin each validation split likewise, which bounds the cost of the per-epoch validation
                early stopping needs when the training set is small.
            num_workers: data loader worker processes.
            cache_dir: where priors fitted from a spec are cached, keyed by dataset, spec and split.
        """
        super().__init__()
        self.save_hyperparameters()
        self.data_paths = [Path(p) for p in ([data] if isinstance(data, str) else data)]
        self.prior_source = prior
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir)
        self.datasets: list[CGDataset] = []
        self.topologies: list[TopologyCache] = []
        self.splits: list[dict[str, np.ndarray]] = []
        self.type_names: list[str] = []
        self.prior: Prior | None = None

    @property
    def source(self) -> str:
        """The data file(s), as error messages name them."""
        return ", ".join(str(p) for p in self.data_paths)

    # -- set-up ---------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Load the data, merge the bead types, cut the splits and obtain the prior (once per process)."""
        if self.datasets:
            return
        if not self.data_paths:
            raise InputError(None, "--data.data: no dataset given")
        loaded = [CGDataset.load(path) for path in self.data_paths]
        self.type_names = list(dict.fromkeys(name for ds in loaded for name in ds.topology.type_names))
        self.datasets = [with_type_names(ds, self.type_names) for ds in loaded]
        self.topologies = [topology_cache(ds.topology) for ds in self.datasets]
        self.splits = [self._split(path, ds) for path, ds in zip(self.data_paths, self.datasets)]
        self.prior = self._obtain_prior()

    def _split(self, path: Path, dataset: CGDataset) -> dict[str, np.ndarray]:
        """The block split of one dataset, training and validation frames thinned to ``max_train_frames`` and
        ``max_val_frames``; a one-line
        :class:`InputError` naming the file and the ``--data`` options."""
        hp = self.hparams
        try:
            splits = block_split(dataset.n_frames, tuple(hp.fractions), n_blocks=hp.blocks, gap=hp.gap, seed=hp.split_seed)
        except SplitError as exc:
            raise InputError(path, f"{exc.problem} (--data.fractions {list(hp.fractions)}, --data.blocks "
                                   f"{hp.blocks}, --data.gap {hp.gap})") from None
        for part, limit in (("train", hp.max_train_frames), ("val", hp.max_val_frames)):
            frames = splits[part]
            if limit and len(frames) > limit:
                splits[part] = frames[np.linspace(0, len(frames) - 1, limit).round().astype(int)]
        return splits

    def _obtain_prior(self) -> Prior:
        """The prior ``--data.prior`` names, for exactly the data's bead types."""
        source = self.prior_source
        if source in (None, "", "none"):
            return NoPrior(self.type_names)
        path = Path(source)
        if path.suffix == ".json" or path.is_dir():
            prior = load_prior(path)
        elif len(self.data_paths) > 1:
            raise InputError(path, "a prior fit spec is fitted on one dataset; fit it with cgzoo fit-prior and give "
                                   "--data.prior its prior.json, or --data.prior none")
        else:
            prior = self._fit_cached(path)
        if prior.type_names and list(prior.type_names) != self.type_names:
            raise InputError(path, f"the prior's bead types {prior.type_names} are not the data's {self.type_names}")
        return prior

    def _fit_cached(self, spec_path: Path) -> Prior:
        """Fit the spec on the training split, or reuse an identical earlier fit from the cache."""
        from cgzoo.fitting.spec import fit_prior, load_spec

        (data_path,) = self.data_paths
        spec = load_spec(spec_path)
        hp = self.hparams
        spec["split"] = {"fractions": list(hp.fractions), "blocks": hp.blocks, "gap": hp.gap, "seed": hp.split_seed}
        key = hashlib.sha256(json.dumps({"data": file_sha256(data_path), "spec": spec}, sort_keys=True).encode()).hexdigest()
        cached = self.cache_dir / key[:16] / "prior.json"
        # one process fits, others wanting the same prior (the processes of a DDP run, parallel runs) wait and reuse it
        with output_lock(cached.parent, wait=True):
            if cached.exists():
                return build_prior(json.loads(cached.read_text())["prior"])
            print(f"fitting the prior {spec_path} on the training split of {data_path} (once: cached in "
                  f"{cached.parent}; --data.prior takes a fitted prior.json)")
            prior, report = fit_prior(data_path, spec, progress=lambda msg: None)
            cached.parent.mkdir(parents=True, exist_ok=True)
            replace_file(cached, lambda tmp: save_prior(prior, tmp, {"report": report}))
        return prior

    # -- what the model needs from the data ---------------------------------------------------------

    def facts(self) -> DataFacts:
        """Set up, then the bead types, prior and training force scales a model is built from."""
        self.setup("fit")
        force_rms, residual_rms = self._training_force_rms()
        temperatures = {ds.temperature for ds in self.datasets}
        temperature = temperatures.pop() if len(temperatures) == 1 else None
        if temperature is not None and not math.isfinite(temperature):
            temperature = None
        return DataFacts(list(self.type_names), self.prior, force_rms, residual_rms, self.source, temperature)

    def _training_force_rms(self, max_frames: int = 50) -> tuple[float, float]:
        """RMS of the reference and of the reference − prior force components over (at most about ``max_frames``)
        training frames, kcal/mol/Å: the force scales of ML-only and delta networks."""
        from cgzoo.fitting.spec import prior_forces

        train = [(d, int(f)) for d, splits in enumerate(self.splits) for f in splits["train"]]
        prior = self.prior.double()
        errors = ForceErrors()
        for d, f in train[:: max(1, len(train) // max_frames)]:
            ds, top = self.datasets[d], self.datasets[d].topology
            graph = batch_graph(ds.positions[f][None], ds.boxes[f][None], top.bead_types, self.topologies[d],
                                max(prior.cutoff, 1e-3), top.bonds, top.angles, top.dihedrals)
            errors.update(prior_forces(prior, graph), ds.forces[f])
        stats = errors.total()
        return stats.reference_rms, stats.rmse

    # -- loaders -----------------------------------------------------------------------------------

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        data = [frame_to_data(ds, int(f), topology=top, dataset_id=d)
                for d, (ds, top, splits) in enumerate(zip(self.datasets, self.topologies, self.splits))
                for f in splits[split]]
        if shuffle:
            sampler = EpochShuffle(len(data), self.hparams.split_seed)
        else:
            sampler = self._evaluation_share(split, len(data))
        return DataLoader(data, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers)

    def _evaluation_share(self, split: str, n_frames: int) -> UnrepeatedDistributedSampler | None:
        """Under DDP, this process's frames of an evaluation split, every frame on exactly one process; None otherwise.

        Lightning's default distributed sampler pads a split that the processes cannot share evenly with repeated
        frames, which the force errors reduced across processes would count twice. Here the processes' shares may
        differ by one frame (safe: an evaluation step has no collective operation after the first batch).
        """
        shares = self.trainer.distributed_sampler_kwargs if self.trainer is not None else None
        if not shares or shares["num_replicas"] < 2:
            return None
        if n_frames < shares["num_replicas"]:
            limit = ", --data.max_val_frames" if split == "val" else ""
            raise InputError(self.source, f"the {split} split has {n_frames} frame{'s' * (n_frames != 1)}, fewer "
                                          f"than the {shares['num_replicas']} processes (--data.fractions{limit})")
        return UnrepeatedDistributedSampler(range(n_frames), shuffle=False, **shares)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The test split: the frames ``cgzoo predict`` writes the model's energies and forces of."""
        return self._loader("test", shuffle=False)


def with_type_names(dataset: CGDataset, type_names: list[str]) -> CGDataset:
    """``dataset`` with its bead types renumbered into ``type_names`` (a superset of its own), so datasets batch together."""
    top = dataset.topology
    index = np.array([type_names.index(name) for name in top.type_names], dtype=np.int64)
    return replace(dataset, topology=replace(top, bead_types=index[np.asarray(top.bead_types, dtype=np.int64)],
                                             type_names=list(type_names)))
