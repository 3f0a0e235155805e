"""The data-efficiency curves of a study: held-out force error and g(r) error against the number of training frames.

Every prior fit or training whose task meta has ``frames`` (:func:`cgzoo.study.plan.data_efficiency_label`) is one
point; the NVT run of each, where the preset asks for one, gives its g(r) error. Written beside the main results:
``data_efficiency.csv``, ``data_efficiency.md`` (95 % intervals over seeds, and held-out frames for the force) and one ``data_efficiency_<mapping>.png``.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from cgzoo.intervals import Interval, bootstrap_interval, rmse_interval
from cgzoo.observables.registry import registered_observables
from cgzoo.outputs import save_figure, write_atomic
from cgzoo.study.plan import Task, data_efficiency_label, heldout_task
from cgzoo.study.results import (
    MODE_LABEL,
    MODE_ORDER,
    _fmt,
    _metrics,
    _result,
    load_frame_errors,
    study_metrics,
)

#: data_efficiency.csv columns before the NVT study metrics of the models' g(r) runs
DE_KEYS = ("system", "mapping", "architecture", "mode", "seed", "frames", "force_rmse", "force_r2", "epochs", "converged",
           "train_seconds")


def data_efficiency_rows(tasks: list[Task], states: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per data-efficiency model (a prior fit or training whose task meta has ``frames``): its held-out force
    errors and, where it ran one, the NVT study metrics of its g(r) run (None for an unstable run)."""
    rows = []
    for task in tasks:
        m = task.meta
        if task.fn not in ("fit_prior", "train") or "frames" not in m:
            continue
        result, heldout = _result(states, task.name), _result(states, heldout_task(task.name))
        row: dict[str, Any] = {k: m.get(k) for k in DE_KEYS[:6]}
        row.update(force_rmse=heldout.get("force_rmse"), force_r2=heldout.get("force_r2"),
                   frame_errors=heldout.get("frame_errors"), epochs=result.get("epochs"),
                   converged=result.get("converged"), train_seconds=result.get("train_seconds", result.get("fit_seconds")))
        metrics = _metrics(next((t for t in tasks if t.name == f"{m['mapping']}/data_efficiency/eval"), None), states)
        run = (metrics or {}).get("runs", {}).get(data_efficiency_label(m))
        row["stable_nvt"] = None if run is None else bool(run["stable"])
        if run is not None and run["stable"]:
            for obs in registered_observables():
                row.update(obs.study_cells({"nvt": (metrics["reference"], run)}))
        rows.append(row)
    return rows


def _de_columns() -> tuple[str, ...]:
    return (*DE_KEYS, "stable_nvt", *(m.column for m in study_metrics() if m.ensemble == "nvt"))


def write_rows(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """``data_efficiency.csv``, a ``data_efficiency.md`` table and one ``data_efficiency_<mapping>.png`` per mapping."""
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    columns = _de_columns()
    writer.writerow(columns)
    order = {m: i for i, m in enumerate(MODE_ORDER)}
    rows = sorted(rows, key=lambda r: (r["mapping"], r["architecture"] != "prior", r["architecture"], order[r["mode"]],
                                       r["seed"], r["frames"]))
    for row in rows:
        writer.writerow(["" if row.get(c) is None else (f"{row[c]:.6g}" if isinstance(row[c], float) else row[c])
                         for c in columns])
    written = [out / "data_efficiency.csv", out / "data_efficiency.md"]
    write_atomic(written[0], handle.getvalue())
    write_atomic(written[1], "\n".join(_de_tables(rows)))
    for mapping in dict.fromkeys(r["mapping"] for r in rows):
        figure = plot_data_efficiency([r for r in rows if r["mapping"] == mapping], mapping,
                                      out / f"data_efficiency_{mapping}.png")
        written += [figure] if figure else []
    return written


def _de_curves(rows: list[dict[str, Any]], column: str) -> dict[tuple[str, str], list[tuple[int, Interval]]]:
    """(architecture, mode) → (frames, interval of ``column``) for the frames where it has values: over training seeds
    and, for the force RMSE, blocks of the held-out frames (:func:`cgzoo.intervals.rmse_interval`)."""
    if column == "force_rmse":
        paths: dict[tuple[str, str], dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            if r.get("frame_errors"):
                paths[r["architecture"], r["mode"]][r["frames"]].append(r["frame_errors"])
        return {key: [(n, rmse_interval(e.squared, e.counts)) for n, ps in sorted(by_n.items())
                      if (e := load_frame_errors(ps)) is not None] for key, by_n in paths.items()}
    values: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get(column) is not None and math.isfinite(r[column]):
            values[r["architecture"], r["mode"]][r["frames"]].append(r[column])
    return {key: [(n, bootstrap_interval([[v] for v in vs])) for n, vs in sorted(by_n.items())]
            for key, by_n in values.items()}


def _de_tables(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown: per mapping, held-out force RMSE and g(r) error against training frames, one row per model."""
    lines = ["# Data efficiency: held-out force RMSE (kcal/mol/Å) and g(r) RMS error against training frames", "",
             ("The prior and every network of a column learn from the same training frames (evenly thinned training "
              "split); Δ networks sit on the prior of that column. Cells are estimates [95 % interval over training "
              "seeds and, for the force RMSE, blocks of the held-out frames]; – where a model ran no g(r) run or was unstable."), ""]
    for mapping in dict.fromkeys(r["mapping"] for r in rows):
        mine = [r for r in rows if r["mapping"] == mapping]
        frames = sorted({r["frames"] for r in mine})
        for column, label in (("force_rmse", "force RMSE"), ("rdf_error", "g(r) error")):
            curves = _de_curves(mine, column)
            if not curves:
                continue
            lines += [f"## {mapping}: {label}", "", "| model | " + " | ".join(f"{n} frames" for n in frames) + " |",
                      "|---|" + "---|" * len(frames)]
            for (arch, mode), points in curves.items():
                cells = dict(points)
                name = "prior only (FM)" if mode == "prior_only" else f"{arch} {MODE_LABEL[mode]}"
                lines.append(f"| {name} | " + " | ".join(_fmt(cells.get(n)) for n in frames) + " |")
            lines.append("")
    return lines


def plot_data_efficiency(rows: list[dict[str, Any]], mapping: str, path: Path) -> Path | None:
    """Held-out force RMSE and (where measured) g(r) error against training frames: colour architecture, line mode;
    None when no model of ``mapping`` has a value yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(label, curves) for c, label in (("force_rmse", "held-out force RMSE (kcal/mol/Å)"),
                                               ("rdf_error", "g(r) RMS error")) if (curves := _de_curves(rows, c))]
    if not panels:
        return None
    archs = ["prior"] + sorted({r["architecture"] for r in rows if r["architecture"] != "prior"})
    colors = dict(zip(archs, ["black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]))
    styles = {"prior_only": ("-", "s"), "ml_only": (":", "x"), "delta": ("-", "o")}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), squeeze=False)
    for ax, (label, curves) in zip(axes[0], panels):
        for (arch, mode), points in sorted(curves.items(), key=lambda kv: archs.index(kv[0][0])):
            x = [n for n, _ in points]
            y = [c.estimate for _, c in points]
            err = [[c.estimate - c.low if c.defined else 0.0 for _, c in points],
                   [c.high - c.estimate if c.defined else 0.0 for _, c in points]]
            line, marker = styles[mode]
            ax.errorbar(x, y, yerr=err, color=colors[arch], ls=line, marker=marker, ms=4, lw=1.2, capsize=2,
                        label="prior only (FM)" if mode == "prior_only" else f"{arch} {MODE_LABEL[mode]}")
        ax.set_xscale("log")
        ax.set_xlabel("training frames", fontsize=9)
        ax.set_ylabel(label, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"{mapping}: data efficiency (Δ solid, ML only dotted; prior and networks on the same frames)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def write_data_efficiency(tasks: list[Task], states: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """The data-efficiency table and figures of a study into ``out`` (nothing when it has no such cells)."""
    rows = data_efficiency_rows(tasks, states)
    return write_rows(rows, out) if rows else []
