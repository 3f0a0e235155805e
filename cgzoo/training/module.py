"""Lightning module: force matching of a ``CGModel`` (prior + network) with metrics, optimiser, scheduler and EMA.

The loss is the mean squared error of the CG forces, divided by the squared force scale of the
residual the network must learn (so it is O(1) whatever the system), with optional per-type
weights. Metrics — force RMSE, MAE and R² overall and per bead type — are logged for train,
val and test under ``<split>/force_rmse``, ``<split>/force_rmse_<type>`` and so on, in kcal/mol/Å.

Its one job is model + loss + optimisation: the model is built from the
:class:`~cgzoo.training.facts.DataFacts` given to the constructor (bead types, prior, force
scales), never from the trainer's data module, and a batch becomes one graph in which every
frame keeps its own topology, so frames of different systems train together.
A checkpoint carries a ``cgzoo`` block (prior spec, network spec, type names, mode, scales,
units; :mod:`cgzoo.models.checkpoint`) so :func:`cgzoo.models.checkpoint.load_model` rebuilds the model without pickled code.
"""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch
from jsonargparse.typing import (
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    restricted_string_type,
)
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cgzoo.data.pyg import batch_to_graph
from cgzoo.errors import CGZooError, InputError
from cgzoo.fitting.pressure import kinetic_pressure_tensor, stress_pressure
from cgzoo.forces import energy_derivatives
from cgzoo.metrics import ForceErrors
from cgzoo.models import CGModel, build_network
from cgzoo.models.checkpoint import checkpoint_block, model_block, model_from_block
from cgzoo.priors import NoPrior
from cgzoo.training.facts import DataFacts
from cgzoo.units import KCAL_MOL_A3_TO_BAR

SPLITS = ("train", "val", "test")

#: A user network's dotted class path (``mypkg.nets.MyNet``), accepted when its plugin module is enabled.
PluginClassPath = restricted_string_type("PluginClassPath", r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
#: The network choices ``cgzoo fit --help`` shows (kept equal to ``cgzoo.models.NETWORKS`` by a test).
NetworkName = Literal["pair_mlp", "schnet", "equivariant"] | PluginClassPath
ModeName = Literal["delta", "ml_only", "prior_only"]
#: the pressure miss (bar) the pressure term weighs like one force-scale RMS error (``pressure_weight`` 1)
PRESSURE_SCALE_BAR = 1000.0


class CGLightningModule(pl.LightningModule):
    """Trains a CG model by force matching; the model is built from ``data_facts`` (or rebuilt from a checkpoint)."""

    def __init__(
        self,
        network: NetworkName = "schnet",
        network_args: dict[str, Any] | None = None,
        mode: ModeName = "delta",
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        scheduler: Literal["plateau", "cosine", "none"] = "plateau",
        scheduler_patience: NonNegativeInt = 5,
        type_weights: dict[str, NonNegativeFloat] | None = None,
        ema_decay: OpenUnitInterval | None = None,
        dtype: Literal["float32", "float64"] = "float32",
        pressure_bar: float | Literal["prior"] | None = None,
        pressure_weight: NonNegativeFloat = 0.0,
        data_facts: DataFacts | None = None,
    ) -> None:
        """Set the hyperparameters; ``data_facts`` come from the data module (``cgzoo fit`` links them), and without them
        a checkpoint gives the model.

        The pressure term: forces alone do not fix the pressure, so a network trained on them can undo a
        pressure-consistent prior (``experiments/beyond_fm/pressure/delta_inherits.md``). With ``pressure_bar`` set,
        every step logs the batch's mean pressure on the reference frames (virial + N·k_BT/V at the data's
        temperature) and its miss from the target; ``pressure_weight`` > 0 adds the weighted squared mean miss, in
        units of :data:`PRESSURE_SCALE_BAR`, to the loss — Das and Andersen's constraint as a penalty.

        Args:
            network: the network architecture: a registered name (``cgzoo.models.NETWORKS``) or the dotted class
                path of a plugin network whose module ``CGZOO_PLUGINS`` enables.
            network_args: keyword arguments of the network (hidden sizes, cutoff, radial basis...); the zoo configs
                ``models/<network>.yaml`` hold tested ones.
            mode: what the network learns: ``delta`` the residual of the prior's forces, ``ml_only`` all forces
                (no prior), ``prior_only`` nothing (the prior alone, scored like a model).
            lr: AdamW learning rate.
            weight_decay: AdamW weight decay.
            scheduler: learning-rate schedule: ``plateau`` halves it after ``scheduler_patience`` epochs without a
                lower ``val/force_rmse``, ``cosine`` anneals it over ``trainer.max_epochs``, ``none`` keeps it.
            scheduler_patience: epochs without improvement before the plateau scheduler halves the learning rate.
            type_weights: loss weight per bead type name (1 for types not given).
            ema_decay: decay of an exponential moving average of the weights, which validation, test, predict and
                the checkpoint's model use; none without.
            dtype: the model's floating-point precision in training.
            pressure_bar: the pressure target in bar, or ``prior`` (delta mode): each frame's own prior pressure,
                so the network adds no net virial and the model keeps the pressure its prior was refined to in MD
                (:mod:`cgzoo.refine.pressure`); none logs and penalises no pressure.
            pressure_weight: weight of the pressure term in the loss (0: the pressure is only logged).
            data_facts: bead types, prior and force scales of the training data, linked from ``--data``; not an
                option.
        """
        super().__init__()
        self.save_hyperparameters(ignore=["data_facts"])  # the data's facts live in the checkpoint's cgzoo block
        if pressure_weight > 0 and pressure_bar is None:
            raise InputError(None, "--model.pressure_weight needs --model.pressure_bar, the reference pressure (bar)")
        if pressure_bar == "prior" and mode != "delta":
            raise InputError(None, "--model.pressure_bar prior keeps the prior's pressure under the network: it needs "
                                   "--model.mode delta")
        self.temperature = data_facts.temperature if data_facts is not None else None
        if pressure_bar is not None and data_facts is not None and self.temperature is None:
            raise InputError(data_facts.source, "--model.pressure_bar needs the data's temperature, which the "
                                                "dataset does not state (or the datasets disagree on)")
        self.model: CGModel | None = None
        self.ema: AveragedModel | None = None
        self.metrics: dict[str, ForceErrors] = {}
        if data_facts is not None:
            self._adopt(self._model_for(data_facts))

    # -- model construction --------------------------------------------------------------------

    def _model_for(self, facts: DataFacts) -> CGModel:
        """The untrained CG model for these bead types and prior, its network scaled to the forces it must learn."""
        mode = self.hparams.mode
        if mode == "prior_only" and isinstance(facts.prior, NoPrior):
            raise InputError(None, "--model.mode prior_only trains nothing and needs a prior: give --data.prior "
                                   "(a fit spec or a prior.json)")
        scale = {"prior_only": 1.0, "ml_only": facts.force_rms, "delta": facts.residual_rms}[mode]
        if not scale > 0:
            why = " (the prior reproduces them exactly)" if mode == "delta" else ""
            raise InputError(facts.source, f"the training forces the network must learn are all zero{why}; nothing to learn")
        net = None if mode == "prior_only" else self._build_network(facts.type_names)
        return CGModel(facts.prior, net, mode=mode, energy_scale=scale)

    def _adopt(self, model: CGModel) -> None:
        """Train ``model`` (in the configured dtype, prior frozen) with its EMA copy and per-type metrics."""
        hp = self.hparams
        self.model = model.to(getattr(torch, hp.dtype))
        self.model.prior.requires_grad_(False)  # the prior was fitted on its own; only the network learns
        if hp.ema_decay:
            # buffers (type lookup tables, scales) are copied, never averaged: averaging would corrupt integer tables
            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(hp.ema_decay), use_buffers=False)
        self.metrics = {s: ForceErrors(len(self.model.type_names)) for s in SPLITS}

    def _build_network(self, type_names: list[str]) -> Any:
        """The network the hyperparameters name; one-line :class:`InputError` when its arguments do not fit it."""
        hp = self.hparams
        try:
            return build_network(hp.network, type_names, **(hp.network_args or {}))
        except CGZooError:
            raise
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(None, f"--model.network {hp.network} with --model.network_args {hp.network_args}: "
                                   f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None

    # -- steps -----------------------------------------------------------------------------------

    def _evaluate(self, batch: Any, model: CGModel, stress: bool = False) -> tuple[Any, dict[str, torch.Tensor]]:
        """The batch's graph and ``model``'s energy, forces (and stress) on it, with autograd on whatever the loop says."""
        graph = batch_to_graph(batch, model.cutoff, getattr(torch, self.hparams.dtype))
        with torch.enable_grad():
            return graph, model(graph, forces=True, stress=stress)

    def _predict(self, batch: Any, model: CGModel, pressure: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forces and, with ``pressure``, each frame's pressure (bar): virial −tr(σ)/3 plus N·k_BT/V."""
        graph, out = self._evaluate(batch, model, stress=pressure)
        if not pressure:
            return out["forces"], None
        return out["forces"], (stress_pressure(out["stress"]) + kinetic_pressure_tensor(graph, self.temperature)) \
            * KCAL_MOL_A3_TO_BAR

    def _pressure_wanted(self) -> bool:
        """Whether steps compute the pressure: a target is set (and the data's temperature is known)."""
        if self.hparams.pressure_bar is None:
            return False
        if self.temperature is None:
            raise InputError(None, "--model.pressure_bar needs the data's temperature, which is unknown here "
                                   "(the dataset states none, or the model was loaded without its data)")
        return True

    def _pressure_miss(self, batch: Any, pressures: torch.Tensor) -> torch.Tensor:
        """Each frame's pressure minus its target (bar): the fixed ``pressure_bar``, or the prior's own pressure."""
        if self.hparams.pressure_bar != "prior":
            return pressures - float(self.hparams.pressure_bar)
        graph = batch_to_graph(batch, self.model.cutoff, getattr(torch, self.hparams.dtype))
        with torch.enable_grad():
            stress = energy_derivatives(self.model.prior, graph, forces=False, stress=True)["stress"].detach()
        # the kinetic parts are the same for model and prior: the miss is the network's virial pressure
        prior = stress_pressure(stress) + kinetic_pressure_tensor(graph, self.temperature)
        return pressures - prior * KCAL_MOL_A3_TO_BAR

    def _pressure_loss(self, misses: torch.Tensor) -> torch.Tensor:
        """The pressure term: the batch's mean miss squared, in units of :data:`PRESSURE_SCALE_BAR`, times the weight."""
        return self.hparams.pressure_weight * (misses.mean() / PRESSURE_SCALE_BAR) ** 2

    def _loss(self, pred: torch.Tensor, batch: Any) -> torch.Tensor:
        scale = self.model.energy_scale.to(pred.dtype)
        err2 = ((pred - batch.forces.to(pred.dtype)) / scale) ** 2
        weights = self.hparams.type_weights
        if weights:
            w = torch.tensor([float(weights.get(n, 1.0)) for n in self.model.type_names], dtype=pred.dtype, device=pred.device)
            err2 = err2 * w[batch.bead_type][:, None]
        return err2.mean()

    def _eval_model(self) -> CGModel:
        return self.ema.module if self.ema is not None else self.model

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        pred, pressures = self._predict(batch, self.model, self._pressure_wanted())
        self._update_metrics("train", pred, batch)
        if self.hparams.mode == "prior_only":
            return None
        loss = self._loss(pred, batch)
        if pressures is not None:
            misses = self._pressure_miss(batch, pressures)
            self.log("train/pressure_bar", pressures.mean().detach(), batch_size=int(batch.num_graphs))
            self.log("train/pressure_miss_bar", misses.mean().detach(), batch_size=int(batch.num_graphs))
            if self.hparams.pressure_weight > 0:
                loss = loss + self._pressure_loss(misses)
        self.log("train/loss", loss, prog_bar=True, batch_size=int(batch.num_graphs))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def _eval_step(self, split: str, batch: Any) -> None:
        pred, pressures = self._predict(batch, self._eval_model(), self._pressure_wanted())
        self._update_metrics(split, pred, batch)
        if pressures is not None:
            size = int(batch.num_graphs)
            self.log(f"{split}/pressure_bar", pressures.mean().detach(), batch_size=size, sync_dist=True)
            self.log(f"{split}/pressure_miss_bar", self._pressure_miss(batch, pressures).mean().detach(), batch_size=size,
                     sync_dist=True)
        self.log(f"{split}/loss", self._loss(pred.detach(), batch), batch_size=int(batch.num_graphs), sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """Per frame: energy (B,), the dataset and frame it is; per bead: forces, reference forces and frame (``batch``)."""
        _, out = self._evaluate(batch, self._eval_model())
        return {"energy": out["energy"].detach(), "forces": out["forces"].detach(), "reference": batch.forces,
                "batch": batch.batch, "frame": batch.frame, "dataset_id": batch.dataset_id}

    def _update_metrics(self, split: str, pred: torch.Tensor, batch: Any) -> None:
        """Add a batch's predicted and reference forces to the split's running force errors."""
        self.metrics[split].update(pred.detach().double().cpu().numpy(), batch.forces.double().cpu().numpy(),
                                   batch.bead_type.cpu().numpy())

    def _log_epoch(self, split: str) -> None:
        metrics = self.metrics[split]
        if self.trainer.world_size > 1:  # sums are added across DDP processes before the ratios are taken
            sums = torch.from_numpy(metrics.sums).to(self.device)
            metrics.sums = self.trainer.strategy.reduce(sums, reduce_op="sum").cpu().numpy()
        for key, value in metrics.as_dict(self.model.type_names).items():
            # every process holds the same reduced value: sync_dist averages equal numbers, so each process may
            # monitor it (checkpoints, early stopping) and Lightning need not warn of an unsynchronised epoch metric
            self.log(f"{split}/{key}", value, prog_bar=key == "force_rmse" and split == "val", sync_dist=True)
        metrics.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # -- optimisation ------------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad] if self.hparams.mode != "prior_only" else []
        if not params:
            return None
        optimizer = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.scheduler == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.trainer.max_epochs or 1))
            return {"optimizer": optimizer, "lr_scheduler": scheduler}
        if self.hparams.scheduler == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=self.hparams.scheduler_patience)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/force_rmse"}}
        return optimizer

    # -- checkpoints -----------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["cgzoo"] = model_block(self.model, self.ema is not None, self.hparams.dtype)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        source = getattr(self._trainer, "ckpt_path", None) or "checkpoint"
        block = checkpoint_block(checkpoint, source)
        if self.model is None:
            try:
                self._adopt(model_from_block(block))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(source, f"cannot rebuild the model: {exc}") from None
        self._check_weights_fit(checkpoint.get("state_dict"), source)

    def _check_weights_fit(self, state: Any, source: Any) -> None:
        """One-line :class:`InputError` when a checkpoint's weights are not those of the configured model."""
        ours = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        theirs = {k: tuple(getattr(v, "shape", (-1,))) for k, v in state.items()} if isinstance(state, dict) else {}
        if ours != theirs:
            differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
            raise InputError(source, f"its weights do not fit the configured model (--model.* differs from the run "
                                     f"that wrote it; first differing: {differ[:3]})")
