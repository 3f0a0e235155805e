"""Learning curves: the train and validation force errors of every epoch, kept with the run so convergence can be judged.

:class:`LearningCurves` records, after each epoch, the epoch-level metrics the LightningModule logged
(``train/force_rmse``, ``val/force_rmse``, their R², the learning rate) and rewrites
``learning_curve.csv`` and ``learning_curve.png`` in the run directory (``<default_root_dir>``, or
``dirpath``). Its rows are part of the checkpoint, so a resumed run continues the same curve instead of starting a new one.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer

from cgzoo.outputs import save_figure, write_atomic

#: the logged metrics each row holds (absent ones are left empty), after ``epoch``
COLUMNS = ("train/force_rmse", "val/force_rmse", "train/force_r2", "val/force_r2", "lr")


class LearningCurves(Callback):
    """Write the per-epoch train/validation force errors to CSV and a figure in the run directory."""

    def __init__(self, dirpath: str | None = None) -> None:
        """Start with no epochs recorded.

        Args:
            dirpath: the folder of ``learning_curve.csv`` and ``.png``; default: the trainer's ``default_root_dir``.
        """
        self.dirpath = dirpath
        self.rows: list[dict[str, float]] = []

    def _record(self, trainer: Trainer) -> None:
        """Add the epoch that just finished (``current_epoch`` has moved past it), once."""
        epoch = trainer.current_epoch - 1
        if epoch < 0 or (self.rows and self.rows[-1]["epoch"] >= epoch):
            return
        metrics = trainer.callback_metrics
        row: dict[str, float] = {"epoch": float(epoch)}
        for key in COLUMNS[:-1]:
            if key in metrics:
                row[key] = float(metrics[key])
        if trainer.optimizers and trainer.optimizers[0].param_groups:
            row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.rows.append(row)
        if trainer.is_global_zero:
            self._write(Path(self.dirpath or trainer.default_root_dir))

    # the module logs its epoch metrics in its own on_train_epoch_end, after the callbacks' hook of the same
    # name has run: an epoch is recorded when the next one starts, and the last one when training ends
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state_dict.get("rows", [])]

    def _write(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        handle = io.StringIO(newline="")
        writer = csv.writer(handle)
        writer.writerow(("epoch", *COLUMNS))
        for row in self.rows:
            writer.writerow([int(row["epoch"]), *("" if k not in row else f"{row[k]:.6g}" for k in COLUMNS)])
        write_atomic(root / "learning_curve.csv", handle.getvalue())
        fig = self._figure()
        save_figure(fig, root / "learning_curve.png")
        import matplotlib.pyplot as plt

        plt.close(fig)

    def _figure(self) -> Any:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.0, 3.4))
        for key, style in (("train/force_rmse", "-o"), ("val/force_rmse", "-s")):
            points = [(r["epoch"], r[key]) for r in self.rows if key in r and math.isfinite(r[key])]
            if points:
                ax.plot(*zip(*points), style, ms=3, label=key.split("/")[0])
        ax.set_xlabel("epoch")
        ax.set_ylabel("force RMSE (kcal/mol/Å)")
        if ax.lines:
            ax.legend()
        fig.tight_layout()
        return fig
