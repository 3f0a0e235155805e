"""``cgzoo fit|validate|test|predict``: the Lightning CLI over :class:`CGLightningModule` and :class:`CGDataModule`.

Defaults: CPU (``--trainer.accelerator gpu`` and ``--trainer.strategy ddp`` work as in any
Lightning project), wandb logging offline (``WANDB_MODE`` respected; it never waits for the
network) next to a CSV logger, and checkpoints ``best-*.ckpt`` (lowest ``val/force_rmse``) and
``last.ckpt`` written at every epoch end into ``<default_root_dir>/checkpoints`` so that
``--ckpt_path last`` resumes a killed run, losing at most the epoch in progress.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("WANDB_MODE", "offline")  # before anything imports wandb

from pytorch_lightning.callbacks import ModelCheckpoint  # noqa: E402
from pytorch_lightning.cli import LightningCLI  # noqa: E402

from cgzoo.training.data import CGDataModule  # noqa: E402
from cgzoo.training.module import CGLightningModule  # noqa: E402

DEFAULT_ROOT = "runs/train"


def default_loggers(save_dir: str = DEFAULT_ROOT) -> list[dict[str, Any]]:
    """wandb (offline unless WANDB_MODE says otherwise) plus CSV; CSV alone when wandb is not installed."""
    loggers = [{"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"save_dir": save_dir, "name": "csv"}}]
    try:
        import wandb  # noqa: F401
    except ImportError:
        return loggers
    offline = os.environ.get("WANDB_MODE", "offline") in ("offline", "disabled", "dryrun")
    return [{"class_path": "pytorch_lightning.loggers.WandbLogger",
             "init_args": {"project": "cgzoo", "save_dir": save_dir, "offline": offline}}] + loggers


class CGZooCLI(LightningCLI):
    """LightningCLI with cgzoo's defaults and a fixed checkpoint directory (so ``--ckpt_path last`` finds it)."""

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = config.trainer.default_root_dir or DEFAULT_ROOT
        if config.trainer.logger is None or config.trainer.logger is True:
            config.trainer.logger = default_loggers(root)

    def _checkpoint_dir(self) -> Path:
        return Path(self.trainer.default_root_dir) / "checkpoints"

    def before_fit(self) -> None:
        for callback in self.trainer.checkpoint_callbacks:
            if callback.dirpath is None:
                callback.dirpath = str(self._checkpoint_dir())

    def _finish_wandb(self) -> None:
        """Close the wandb run so the next run in this process (a sweep, a test) gets its own directory."""
        from pytorch_lightning.loggers import WandbLogger

        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()

    def after_fit(self) -> None:
        self._finish_wandb()

    def after_validate(self) -> None:
        self._finish_wandb()

    def after_test(self) -> None:
        self._finish_wandb()

    def after_predict(self) -> None:
        self._finish_wandb()


def trainer_defaults() -> dict[str, Any]:
    """CPU, epoch-end checkpoints (best by val/force_rmse, and last), gradient clipping, autograd in test/predict."""
    return {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 50,
        "gradient_clip_val": 10.0,
        "inference_mode": False,  # forces are gradients: test/predict must keep autograd on
        "default_root_dir": DEFAULT_ROOT,
        # two callbacks: Lightning 2.6 writes last.ckpt only when its own callback saved that step
        "callbacks": [ModelCheckpoint(monitor="val/force_rmse", mode="min", save_top_k=1,
                                      filename="best-{epoch}-{step}", auto_insert_metric_name=False),
                      ModelCheckpoint(save_top_k=1, save_last=True, filename="latest-{epoch}-{step}",
                                      auto_insert_metric_name=False)],
    }


def run_lightning(argv: list[str]) -> None:
    """Run a Lightning subcommand (``fit``, ``validate``, ``test``, ``predict``) with ``argv`` after it."""
    CGZooCLI(CGLightningModule, CGDataModule, args=argv, trainer_defaults=trainer_defaults(), seed_everything_default=0,
             save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "cgzoo"})
