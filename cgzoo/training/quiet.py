"""Silence the Lightning and wandb output that says nothing about a cgzoo run, so progress and real warnings stand out.

What goes: wandb's banner, run summary and sync hints (``WANDB_SILENT``; set ``WANDB_SILENT=false`` to see them),
Lightning's advertisement for its own logger, wandb's deprecation warning of the ``anonymous`` setting that Lightning
always passes, and a deprecation inside Lightning that torch announces at every
validation (``LeafSpec``), which no cgzoo option can avoid. Warnings about the run itself stay.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from typing import Any

#: the logger Lightning's ``rank_zero_info`` writes to
LIGHTNING_INFO_LOGGER = "pytorch_lightning.utilities.rank_zero"
#: how Lightning's logger advertisement begins (``Trainer`` logs it whenever no LitLogger is configured)
LITLOGGER_TIP = "💡 Tip:"


def drop_litlogger_tip(record: logging.LogRecord) -> bool:
    """False for Lightning's advertisement of its LitLogger, True for every other record."""
    return not str(record.msg).startswith(LITLOGGER_TIP)


def silence_third_party() -> None:
    """Quiet wandb (unless ``WANDB_SILENT`` is set) and drop Lightning's logger tip and its ``LeafSpec`` deprecation."""
    os.environ.setdefault("WANDB_SILENT", "true")
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if drop_litlogger_tip not in logger.filters:
        logger.addFilter(drop_litlogger_tip)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


def drop_wandb_anonymous(loggers: Iterable[Any]) -> None:
    """Remove the ``anonymous`` setting Lightning's WandbLogger passes to ``wandb.init`` even when unset (wandb warns at
    any value); done before the logger's lazily created run starts."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is None:
            logger._wandb_init.pop("anonymous", None)
