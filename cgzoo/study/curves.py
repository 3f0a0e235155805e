"""The learning curves of a study's main-grid trainings in its results folder, one figure per mapping, so that whether
the networks converged can be judged without the work directory.

Each panel is one (architecture, mode): the validation force RMSE of every training seed per epoch (solid, a dot at
the best epoch, whose checkpoint the study uses), its training RMSE (dashed), and the force-matched prior's RMSE on
the validation split (grey: all of the split's frames, where the networks validate on at most ``max_val_frames``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from cgzoo.outputs import save_figure
from cgzoo.study.plan import Task, model_label

#: learning-curve columns drawn (validation solid, training dashed)
VAL, TRAIN = "val/force_rmse", "train/force_rmse"


def read_curve(path: Path) -> dict[str, list[float]]:
    """``epoch`` and the two force-RMSE columns of a ``learning_curve.csv`` (NaN where a row has no value)."""
    columns: dict[str, list[float]] = {"epoch": [], VAL: [], TRAIN: []}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            for key in columns:
                columns[key].append(float(row[key]) if row.get(key) else math.nan)
    return columns


def prior_val_rmse(states: dict[str, dict[str, Any]], mapping: str) -> float | None:
    """The prior's force RMSE on all validation frames, from the fit report next to its ``prior.json``."""
    prior = ((states.get(f"{mapping}/prior") or {}).get("result") or {}).get("prior")
    report = Path(prior).with_name("report.json") if prior else None
    if report is None or not report.exists():
        return None
    return json.loads(report.read_text()).get("errors", {}).get("val", {}).get("force_rmse")


def main_grid_trainings(tasks: list[Task], states: dict[str, dict[str, Any]]) -> dict[str, list[Task]]:
    """Mapping → its finished main-grid training tasks (the data-efficiency trainings are the data-efficiency
    figures')."""
    found: dict[str, list[Task]] = {}
    for task in tasks:
        m = task.meta
        if task.fn != "train" or (states.get(task.name) or {}).get("status") != "done":
            continue
        if task.name == f"{m['mapping']}/train/{model_label(m['architecture'], m['mode'], m['seed'])}":
            found.setdefault(m["mapping"], []).append(task)
    return found


def plot_learning_curves(tasks: list[Task], states: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """Write ``learning_curves_<mapping>.png`` into ``out`` for every mapping with finished trainings; return them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for mapping, trainings in sorted(main_grid_trainings(tasks, states).items()):
        archs = sorted({t.meta["architecture"] for t in trainings})
        modes = sorted({t.meta["mode"] for t in trainings})
        prior = prior_val_rmse(states, mapping)
        fig, axes = plt.subplots(len(archs), len(modes), figsize=(4.2 * len(modes), 3.0 * len(archs)), squeeze=False,
                                 sharey="row")
        for task in sorted(trainings, key=lambda t: t.meta["seed"]):
            m = task.meta
            ax = axes[archs.index(m["architecture"])][modes.index(m["mode"])]
            curve = read_curve(task.out / "learning_curve.csv")
            line, = ax.plot(curve["epoch"], curve[VAL], lw=1.2, label=f"seed {m['seed']}")
            ax.plot(curve["epoch"], curve[TRAIN], lw=0.8, ls="--", color=line.get_color())
            finite = [(v, e) for e, v in zip(curve["epoch"], curve[VAL]) if math.isfinite(v)]
            if finite:
                best, epoch = min(finite)
                ax.plot([epoch], [best], "o", ms=3.5, color=line.get_color())
        for row, arch in enumerate(archs):
            for col, mode in enumerate(modes):
                ax = axes[row][col]
                runs = [t for t in trainings if t.meta["architecture"] == arch and t.meta["mode"] == mode]
                early = sum(bool(states[t.name]["result"].get("converged")) for t in runs)
                ax.set_title(f"{arch}, {mode}: early stop {early}/{len(runs)}", fontsize=9)
                if prior is not None:
                    ax.axhline(prior, color="grey", lw=0.8, label="prior")
                ax.set_xlabel("epoch", fontsize=8)
                ax.set_ylabel("force RMSE (kcal/mol/Å)", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.legend(fontsize=7, frameon=False)
        fig.suptitle(f"{mapping}: validation (solid; dot = best epoch) and training (dashed) force RMSE", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        path = out / f"learning_curves_{mapping}.png"
        out.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path)
        plt.close(fig)
        written.append(path)
    return written
