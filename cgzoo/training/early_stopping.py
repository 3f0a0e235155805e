"""Early stopping with an improvement threshold relative to the best score, so one setting fits every system.

Lightning's ``min_delta`` is absolute (kcal/mol/Å for ``val/force_rmse``), but force errors differ tenfold between
systems (CG water ≈ 4, hexane 3-bead ≈ 12), so an absolute threshold either stops water early or lets hexane creep on
at 0.01 % per epoch until the epoch cap. :class:`EarlyStopping` adds ``min_rel_delta``: an epoch counts as an
improvement only when it beats the best score by more than ``min_rel_delta × |best|`` (and by more than ``min_delta``).
"""

from __future__ import annotations

import math

import torch
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import EarlyStopping as LightningEarlyStopping

from cgzoo.errors import InputError


class EarlyStopping(LightningEarlyStopping):
    """Lightning's early stopping, whose improvement threshold is also a fraction of the best score so far."""

    def __init__(self, *args, min_rel_delta: float = 0.0, **kwargs) -> None:
        """Lightning's arguments, plus:

        Args:
            min_rel_delta: smallest improvement that counts, as a fraction of the best score so far (0.002: 0.2 %); the
                larger of it and ``min_delta`` applies. Default 0: Lightning's absolute ``min_delta`` alone.
        """
        super().__init__(*args, **kwargs)
        if not (math.isfinite(min_rel_delta) and min_rel_delta >= 0):
            raise InputError(None, f"--early_stopping.min_rel_delta must be a finite number >= 0, got {min_rel_delta}")
        self.min_rel_delta = float(min_rel_delta)
        self._min_abs_delta = abs(self.min_delta)  # Lightning stores min_delta signed by the monitor's direction

    def _update_threshold(self) -> None:
        """Set ``min_delta`` (signed as Lightning keeps it) from the best score before it is compared."""
        best = float(self.best_score)
        relative = self.min_rel_delta * abs(best) if math.isfinite(best) else 0.0
        sign = 1.0 if self.monitor_op == torch.gt else -1.0
        self.min_delta = sign * max(self._min_abs_delta, relative)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Lightning's check at the train epoch's end (when ``check_on_train_epoch_end``), with the threshold updated."""
        self._update_threshold()
        super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Lightning's check after validation (cgzoo's default), with the threshold updated."""
        self._update_threshold()
        super().on_validation_end(trainer, pl_module)
