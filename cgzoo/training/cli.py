"""``cgzoo fit|validate|test|predict``: the Lightning CLI over :class:`CGLightningModule` and :class:`CGDataModule`.

Defaults: CPU (``--trainer.accelerator gpu`` and ``--trainer.strategy ddp`` work as in any
Lightning project, one process writing: docs/training.md, "Many processes and nodes"), wandb logging
offline (``WANDB_MODE`` respected; it never waits for the network) next to a CSV logger, a fit resumed
with ``--ckpt_path`` continuing the wandb run of its directory (``wandb_id.txt``), and checkpoints
``best-*.ckpt`` (lowest ``val/force_rmse``) and ``last.ckpt`` written at every epoch end into
``<default_root_dir>/checkpoints`` so that
``--ckpt_path last`` resumes a killed run, losing at most the epoch in progress; early stopping
on ``val/force_rmse`` (``--early_stopping.patience``, 10 epochs; ``--early_stopping.min_rel_delta``, the smallest
improvement that counts as a fraction of the best; ``--trainer.max_epochs`` is the cap),
``learning_curve.csv``/``.png`` (train and validation force error per epoch) in the run directory,
and ``cgzoo predict`` writing ``predictions.h5`` there (:mod:`cgzoo.training.predictions`);
``default_root_dir`` is ``runs/train/<network>_<mode>`` unless given. Every one of these is a parser
default, so ``--print_config`` shows the loggers and callbacks a run will use (the sections
``best_checkpoint``, ``last_checkpoint``, ``early_stopping``, ``learning_curves``, ``predictions``). A zoo model is two
configs, its architecture and its mode: ``--config models/schnet.yaml --config models/modes/delta.yaml``
(later configs and options override earlier ones).

Safety: a run holds the exclusive lock of its ``default_root_dir`` from parsing to exit (a
second run into the same directory is refused in one line), checkpoints are written by rename
and read with ``weights_only=True`` only (:class:`~cgzoo.training.checkpoint.SafeCheckpointIO`,
also for Lightning's own ``--ckpt_path``), and every bad option or checkpoint is a one-line
:class:`~cgzoo.errors.InputError`.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import re
import secrets
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("WANDB_MODE", "offline")  # before anything imports wandb


from jsonargparse import ArgumentError, Namespace
from jsonargparse._actions import _ActionPrintConfig
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from cgzoo.errors import CGZooError, InputError
from cgzoo.models import network_class
from cgzoo.models.checkpoint import load_model
from cgzoo.outputs import output_lock, write_atomic
from cgzoo.training.checkpoint import SafeCheckpointIO
from cgzoo.training.curves import LearningCurves
from cgzoo.training.data import CGDataModule
from cgzoo.training.early_stopping import EarlyStopping
from cgzoo.training.module import CGLightningModule
from cgzoo.training.predictions import PredictionWriter
from cgzoo.training.quiet import drop_wandb_anonymous, silence_third_party

DEFAULT_ROOT = "runs/train"
#: epochs without a lower validation force RMSE before training stops (twice the plateau scheduler's patience of the
#: zoo configs, so the learning rate is cut at least once before giving up); ``--early_stopping.patience`` overrides
EARLY_STOPPING_PATIENCE = 10
#: the file in the run directory that holds the wandb run id, so a resumed fit logs into the same wandb run
WANDB_ID_FILE = "wandb_id.txt"
WANDB_LOGGER = "pytorch_lightning.loggers.WandbLogger"


def wandb_installed() -> bool:
    """Whether the wandb logger can be used."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        return False
    return True


def default_loggers(save_dir: str = DEFAULT_ROOT) -> list[dict[str, Any]]:
    """wandb (offline unless WANDB_MODE says otherwise) plus CSV; CSV alone when wandb is not installed."""
    loggers = [{"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"save_dir": save_dir, "name": "csv"}}]
    if not wandb_installed():
        return loggers
    offline = os.environ.get("WANDB_MODE", "offline") in ("offline", "disabled", "dryrun")
    return [{"class_path": WANDB_LOGGER,
             "init_args": {"project": "cgzoo", "save_dir": save_dir, "offline": offline}}] + loggers


def wandb_run_id(root: str | Path, resume: bool) -> str:
    """The wandb run id of the run directory ``root``: the stored one when ``resume`` finds it, else a new one, stored."""
    path = Path(root) / WANDB_ID_FILE
    if resume and path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)  # 8 lowercase characters, as wandb's own ids
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, run_id + "\n")
    return run_id


def wandb_logger_configs(loggers: Any) -> list[Any]:
    """The wandb loggers' entries (class path and init args) of a ``trainer.logger`` config."""
    return [logger for logger in (loggers if isinstance(loggers, list) else [loggers])
            if isinstance(logger, (dict, Namespace)) and logger.get("class_path") == WANDB_LOGGER]


def continue_wandb_run(loggers: Any, run_id: str) -> None:
    """Give the wandb loggers of a logger config that name no run of their own the run ``run_id`` (created or resumed)."""
    for logger in wandb_logger_configs(loggers):
        init = logger.get("init_args")
        if init is not None and not init.get("id"):
            init["id"], init["resume"] = run_id, "allow"


#: ``--ckpt_path`` values Lightning resolves itself (to files it then reads through SafeCheckpointIO)
CKPT_KEYWORDS = ("last", "best", "hpc", "registry")


#: the environment variables that give a process its place in a DDP run: Lightning's launcher (``LOCAL_RANK``, and
#: ``NODE_RANK`` on every node), torchrun (``RANK``, ``GROUP_RANK``), SLURM's ``srun`` (``SLURM_PROCID``) and LSF
RANK_VARIABLES = ("RANK", "GROUP_RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_global_rank_zero() -> bool:
    """Whether this process is (or launches) the DDP process of global rank 0, the one that locks the run directory and
    stores the wandb run id; the others write nothing. Known before the trainer exists: every rank variable is 0 or
    unset (``srun`` and torchrun give a process its rank when they start it, Lightning's launcher likewise)."""
    return all(os.environ.get(key, "0") == "0" for key in RANK_VARIABLES)


def check_network(network: str, network_args: dict[str, Any] | None) -> None:
    """Fail before any work when ``network`` is unknown (or a plugin not enabled) or takes other ``network_args``."""
    try:
        inspect.signature(network_class(network)).bind(type_names=[], **(network_args or {}))
    except TypeError as exc:
        raise InputError(None, f"--model.network_args {network_args} do not fit network {network!r}: {exc}") from None


def run_directory(network: str, mode: str) -> str:
    """The default run directory ``runs/train/<network>_<mode>``, so each zoo config pair trains into its own folder."""
    return f"{DEFAULT_ROOT}/{network.rpartition('.')[2]}_{mode}"


def check_options(config: Any) -> None:
    """One-line :class:`InputError` for options Lightning would only trip over after loading data and fitting a prior."""
    if config.get("weights_only") is False:
        raise InputError(None, "--weights_only false: cgzoo reads checkpoints with weights_only=True only (no pickled code)")
    check_network(config.model.network, config.model.network_args)
    ckpt_path = config.get("ckpt_path")
    if ckpt_path and str(ckpt_path) not in CKPT_KEYWORDS:
        load_model(ckpt_path)  # a cgzoo model of built-in or enabled classes, before Lightning takes hyperparameters from it


def refuse_earlier_checkpoints(config: Any) -> None:
    """A new fit (no ``--ckpt_path``) into a directory holding an earlier run's checkpoints would overwrite that run's
    ``last.ckpt`` and leave its best beside the new one: refused in one line, before any work."""
    root = Path(config.trainer.default_root_dir)
    folders = {Path(config[key].dirpath or root / "checkpoints") for key in ("best_checkpoint", "last_checkpoint")}
    found = sorted(path for folder in folders if folder.is_dir() for path in folder.glob("*.ckpt"))
    if found:
        raise InputError(found[0].parent, f"holds {len(found)} checkpoint(s) of an earlier run: continue it with "
                                          "--ckpt_path last, or train into another --trainer.default_root_dir")


class CGZooCLI(LightningCLI):
    """LightningCLI with cgzoo's defaults, a fixed checkpoint directory (so ``--ckpt_path last`` finds it), the run
    directory's writer lock, safe checkpoint I/O and options checked before any work."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held = ExitStack()  # the run directory's lock, held until the subcommand has finished
        self._wandb_id: str | None = None  # the wandb run a fit logs into (set on the process of global rank 0)
        with self._held:
            super().__init__(*args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Parsers raise :class:`ArgumentError` instead of printing usage and exiting, so the error is one line."""
        return super().init_parser(**{**kwargs, "exit_on_error": False})

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """The model is built from the data module's facts (types, prior, force scales) as both are instantiated, so bad
        data or network arguments fail before the trainer and its loggers start; cgzoo's callbacks are parser sections
        with their defaults, so ``--print_config`` shows them and every option of theirs can be set."""
        parser.link_arguments("data", "model.data_facts", compute_fn=CGDataModule.facts, apply_on="instantiate")
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val/force_rmse", "early_stopping.mode": "min",
                             "early_stopping.patience": EARLY_STOPPING_PATIENCE,
                             # judged after each validation, where val/force_rmse exists (a run cut by max_steps
                             # mid-epoch has none at the train epoch's end)
                             "early_stopping.check_on_train_epoch_end": False})
        # two checkpoint callbacks: Lightning 2.6 writes last.ckpt only when its own callback saved that step
        parser.add_lightning_class_args(ModelCheckpoint, "best_checkpoint")
        parser.set_defaults({"best_checkpoint.monitor": "val/force_rmse", "best_checkpoint.mode": "min",
                             "best_checkpoint.save_top_k": 1, "best_checkpoint.filename": "best-{epoch}-{step}",
                             "best_checkpoint.auto_insert_metric_name": False})
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults({"last_checkpoint.save_top_k": 1, "last_checkpoint.save_last": True,
                             "last_checkpoint.filename": "latest-{epoch}-{step}",
                             "last_checkpoint.auto_insert_metric_name": False})
        parser.add_lightning_class_args(LearningCurves, "learning_curves")
        parser.add_lightning_class_args(PredictionWriter, "predictions")

    def instantiate_classes(self) -> None:
        """Instantiate as Lightning does, the wandb loggers in the fit's wandb run; a cgzoo error of the data module,
        which jsonargparse wraps, comes out as is.

        The run id is given to the loggers for their instantiation only: the ``config.yaml`` a run saves stays
        free of it, so a new run started from that file gets a wandb run of its own.
        """
        config = self.config[self.subcommand] if self.subcommand else self.config
        configured = copy.deepcopy(config.trainer.logger)
        if self._wandb_id is not None:
            continue_wandb_run(config.trainer.logger, self._wandb_id)
        try:
            super().instantiate_classes()
            drop_wandb_anonymous(self.trainer.loggers)
        except ValueError as exc:
            if isinstance(exc.__cause__, CGZooError):
                raise exc.__cause__ from None
            raise
        finally:
            config.trainer.logger = configured

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse; complete the defaults that depend on other options (run directory, loggers writing into it) before
        ``--print_config`` prints them; check the options that would fail late (network, ``--ckpt_path``); then take
        the run directory's lock and, for a fit, its wandb run id."""
        with _ActionPrintConfig.skip_print_config():  # printed below, once the run directory and loggers are known
            super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        if not config.trainer.default_root_dir:
            config.trainer.default_root_dir = run_directory(config.model.network, config.model.mode)
        if config.trainer.logger is None or config.trainer.logger is True:
            config.trainer.logger = default_loggers(config.trainer.default_root_dir)
        _ActionPrintConfig.print_config_if_requested(parser, self.config)
        check_options(config)
        if subcommand and is_global_rank_zero():
            self._held.enter_context(output_lock(config.trainer.default_root_dir))
            if subcommand == "fit" and not config.get("ckpt_path"):
                refuse_earlier_checkpoints(config)
            if subcommand == "fit" and wandb_logger_configs(config.trainer.logger):
                self._wandb_id = wandb_run_id(config.trainer.default_root_dir, resume=bool(config.get("ckpt_path")))

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with :class:`SafeCheckpointIO` added to the configured plugins and checkpoints without a
        ``dirpath`` in ``<default_root_dir>/checkpoints`` (not in a logger's folder), where ``--ckpt_path last`` looks."""
        plugins = self._get(self.config_init, "trainer", default={}).get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        trainer = super().instantiate_trainer(plugins=[*plugins, SafeCheckpointIO()], **kwargs)
        for callback in trainer.checkpoint_callbacks:
            if callback.dirpath is None:
                callback.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
        return trainer

    def before_fit(self) -> None:
        """Log training metrics at least once per epoch: Lightning's interval of 50 steps exceeds a small data set's
        epoch, so its train curves would stay empty (and Lightning warns)."""
        batches = training_batches_per_process(self.trainer, len(self.datamodule.train_dataloader().dataset),
                                               self.datamodule.batch_size)
        self.trainer.log_every_n_steps = max(1, min(self.trainer.log_every_n_steps, batches))

    def _run_subcommand(self, subcommand: str) -> None:
        """Run the subcommand, then close the wandb run; a resumed fit does not repeat Lightning's warning that its own
        checkpoint directory is not empty."""
        try:
            with warnings.catch_warnings():
                if self.config[subcommand].get("ckpt_path"):
                    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
                super()._run_subcommand(subcommand)
        finally:
            self._finish_wandb()

    def _finish_wandb(self) -> None:
        """Close the wandb run so the next run in this process (a sweep, a test) gets its own directory."""
        from pytorch_lightning.loggers import WandbLogger

        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()


def training_batches_per_process(trainer: Trainer, n_frames: int, batch_size: int) -> int:
    """The training batches of one epoch in each process: under DDP Lightning deals the frames to the processes in
    equal shares (the last frames repeated to fill them), each process batching its own."""
    shares = trainer.distributed_sampler_kwargs
    processes = shares["num_replicas"] if shares else 1
    return math.ceil(math.ceil(n_frames / processes) / batch_size)


def trainer_defaults() -> dict[str, Any]:
    """CPU, gradient clipping, autograd in test/predict; the callbacks are parser sections (:meth:`CGZooCLI.add_arguments_to_parser`).

    ``default_root_dir`` and ``logger`` are left unset: :meth:`CGZooCLI.parse_arguments` makes them
    :func:`run_directory` and :func:`default_loggers` writing into it.
    """
    return {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 50,
        "gradient_clip_val": 10.0,
        "inference_mode": False,  # forces are gradients: test/predict must keep autograd on
    }


def argument_error_line(exc: ArgumentError) -> str:
    """jsonargparse's multi-line message as one line: the option, the value given and what was expected."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    key = re.match(r'Parser key "([^"]+)":', lines[0]) if lines else None
    if not key:
        return " ".join(lines)
    given = next((re.split(r"(?:Given|Got) value:", line, maxsplit=1)[1].strip() for line in lines
                  if re.search(r"(?:Given|Got) value:", line)), None)
    expected = [line.lstrip("- ").split(". Got value")[0] for line in lines[1:]
                if line.lstrip("- ").startswith(("Expected", "Not of type", "Problem with"))]
    value = f" {given}" if given is not None else ""
    return f"--{key.group(1)}{value}: {'; or '.join(expected) or ' '.join(lines[1:])}"


def check_config_files(argv: list[str]) -> None:
    """Every ``--config`` file must exist and be YAML; a one-line error naming it (jsonargparse's names none)."""
    from cgzoo.schema import read_yaml_file

    for k, arg in enumerate(argv):
        if arg == "--config" and k + 1 < len(argv):
            read_yaml_file(argv[k + 1], "config file")
        elif arg.startswith("--config="):
            read_yaml_file(arg.split("=", 1)[1], "config file")


@contextmanager
def command_line(argv: list[str]) -> Iterator[None]:
    """Make ``argv`` the process's command line while the CLI runs, then restore it.

    The Lightning CLI reads its arguments from ``sys.argv``, and Lightning's DDP launcher starts its
    worker processes by re-running ``sys.argv``: with ``argv`` passed beside a different command line
    (``cgzoo study``, a test, Python code) the workers would run another command. One source, ``sys.argv``.
    """
    saved = sys.argv
    sys.argv = [saved[0] if saved else "cgzoo", *argv]
    try:
        yield
    finally:
        sys.argv = saved


def run_lightning(argv: list[str]) -> None:
    """Run a Lightning subcommand (``fit``, ``validate``, ``test``, ``predict``) with ``argv`` after it."""
    check_config_files(argv)
    try:
        with command_line(argv), warnings.catch_warnings():
            silence_third_party()  # before the loggers start wandb
            CGZooCLI(CGLightningModule, CGDataModule, trainer_defaults=trainer_defaults(), seed_everything_default=0,
                     save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "cgzoo"})
    except ArgumentError as exc:
        raise InputError(None, argument_error_line(exc)) from None
    finally:
        finish_wandb_run()


def finish_wandb_run() -> None:
    """Close the wandb run a subcommand started: Lightning's logger leaves it open, and the next fit in the same
    process (a study worker runs many) would log into it instead of its own run."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(quiet=True)
