"""Collect a finished study into one table: ``results.csv`` (every model × seed × MD replica), ``summary.md`` and figures.

One row per model, seed and replica, from the recorded task results (held-out force RMSE, training
time, MD speed) and the two evaluations of its mapping, NVT and NPT, whose metrics every registered
observable turns into its own columns (:meth:`cgzoo.observables.base.Observable.study_cells`:
g(r), bonded and triplet distributions and D from NVT, density from NPT). Aggregates are 95 %
bootstrap intervals over seeds and, within each seed, its replicas (:func:`cgzoo.intervals.bootstrap_interval`).
The findings paragraph of ``summary.md`` is computed, not written by hand: for every metric it
counts, per architecture, the mappings where Δ beats ML only of the same network and where each
beats the force-matched prior — "better" only when the intervals separate, a tie otherwise
(:func:`cgzoo.intervals.verdict`); each mapping's reference split-half floor is a row of its table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.intervals import Interval, bootstrap_interval, difference_verdict, rmse_interval, verdict
from cgzoo.metrics import ForceErrors
from cgzoo.observables.base import StudyMetric
from cgzoo.observables.registry import registered_observables
from cgzoo.outputs import save_figure, write_atomic
from cgzoo.study.config import ENSEMBLES
from cgzoo.study.curves import plot_learning_curves
from cgzoo.study.plan import Task, heldout_task, model_label

KEYS = ("system", "beads_per_molecule", "operator", "mapping", "architecture", "mode", "seed", "replica")
#: the keys of one model (a row of the summary): everything but the seed and the replica
MODEL_KEYS = KEYS[:-2]
#: the force error judges the model itself, on no run; the observables add theirs (:func:`study_metrics`)
FORCE_METRIC = StudyMetric("force_rmse", "force RMSE (kcal/mol/Å)", None)
MODE_ORDER = ("prior_only", "ml_only", "delta")
MODE_LABEL = {"prior_only": "prior only", "ml_only": "ML only", "delta": "Δ"}


@dataclass(frozen=True)
class FrameErrors:
    """One model's held-out force errors: ``squared[seed, frame]`` summed over the frame's ``counts[frame]`` components."""

    frames: np.ndarray
    squared: np.ndarray
    counts: np.ndarray


def result_columns() -> tuple[str, ...]:
    """results.csv columns: the model's keys and force errors, every observable's study columns, then runs and timings."""
    return (*KEYS, "n_beads", "force_rmse", "force_r2", "force_rmse_vs_prior", "reference_force_rms",
            *(c for obs in registered_observables() for c in obs.study_columns),
            "stable_nvt", "stable_npt", "status_nvt", "status_npt", "epochs", "converged", "train_seconds", "md_ns_per_day")


def study_metrics(ensembles: Iterable[str] | None = None) -> tuple[StudyMetric, ...]:
    """The metrics the summary, findings and figures show (lower is better; errors are compared as absolute values):
    the force error and the observables' metrics of the runs in ``ensembles`` (None: every ensemble)."""
    metrics = (FORCE_METRIC, *(m for obs in registered_observables() for m in obs.study_metrics))
    return metrics if ensembles is None else tuple(m for m in metrics if m.ensemble is None or m.ensemble in ensembles)


def planned_ensembles(rows: list[dict[str, Any]]) -> set[str]:
    """The ensembles any model of the study runs, from the rows' ``planned_<ensemble>`` flags."""
    return {e for r in rows for e in ENSEMBLES if r.get(f"planned_{e}")}


def _metrics(task: Task | None, states: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    state = states.get(task.name) if task is not None else None
    if not state or state.get("status") != "done":
        return None
    return json.loads(Path(state["result"]["metrics"]).read_text())


def collect_rows(tasks: list[Task], states: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (mapping, model, seed, MD replica) of the plan, with None where a step failed or was skipped; a
    model whose architecture runs no MD (``md.architectures``) has one row, replica None, with its force errors."""
    by_name = {t.name: t for t in tasks}
    observables = registered_observables()
    sims = [t for t in tasks if t.fn == "simulate" and t.name.startswith(f"{t.meta['mapping']}/md/")]
    first = next((e for e in ENSEMBLES if any(t.meta["ensemble"] == e for t in sims)), None)
    entries = [t.meta for t in sims if t.meta["ensemble"] == first]
    simulated = {(m["mapping"], m["label"]) for m in entries}
    for task in tasks:  # trained models of the main grid that run no MD
        m = task.meta
        label = model_label(m.get("architecture"), m.get("mode", ""), m.get("seed", 0))
        if task.fn == "train" and task.name == f"{m['mapping']}/train/{label}" and (m["mapping"], label) not in simulated:
            entries.append({**m, "label": label, "replica": None, "run": None})
    rows = []
    for m in entries:
        mapping, label, replica = m["mapping"], m["label"], m["replica"]
        model_task = f"{mapping}/prior" if m["mode"] == "prior_only" else f"{mapping}/train/{label}"
        model = _result(states, model_task)
        data = _result(states, f"{mapping}/data")
        heldout, prior_heldout = _result(states, heldout_task(model_task)), _result(states, heldout_task(f"{mapping}/prior"))
        row: dict[str, Any] = {k: m[k] for k in KEYS}
        row.update(n_beads=data.get("n_beads"), force_rmse=heldout.get("force_rmse"), force_r2=heldout.get("force_r2"),
                   force_rmse_vs_prior=_relative(heldout.get("force_rmse"), prior_heldout.get("force_rmse")),
                   frame_errors=heldout.get("frame_errors"), prior_frame_errors=prior_heldout.get("frame_errors"),
                   reference_force_rms=_result(states, f"{mapping}/prior").get("reference_force_rms"),
                   train_seconds=model.get("train_seconds"), epochs=model.get("epochs"), converged=model.get("converged"))
        evaluations = {}
        for ensemble in ENSEMBLES:
            sim = f"{mapping}/md/{label}_{ensemble}_r{replica}"
            row[f"planned_{ensemble}"] = sim in by_name
            if ensemble == first:
                row["md_ns_per_day"] = ((states.get(sim) or {}).get("result") or {}).get("ns_per_day")
            metrics = _metrics(by_name.get(f"{mapping}/eval_{ensemble}"), states)
            run = (metrics or {}).get("runs", {}).get(m["run"]) if m["run"] is not None else None
            row[f"stable_{ensemble}"] = None if run is None else bool(run["stable"])
            row[f"status_{ensemble}"] = ((states.get(sim) or {}).get("result") or {}).get("status")
            if run is not None:
                evaluations[ensemble] = (metrics["reference"], run)
        for obs in observables:
            row.update(obs.study_cells(evaluations))
        rows.append(row)
    return rows


def _result(states: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The result of task ``name`` ({} when it is not done)."""
    return (states.get(name) or {}).get("result") or {}


def _relative(value: float | None, reference: float | None) -> float | None:
    """value/reference − 1: a model's held-out force RMSE relative to its mapping's prior (negative: better)."""
    if value is None or not reference:
        return None
    return float(value / reference - 1.0)


def collect_floors(tasks: list[Task], states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per mapping, the study cells of its reference's split-half floor (the NVT and NPT evaluations' ``floor``)."""
    by_name = {t.name: t for t in tasks}
    observables = registered_observables()
    floors = {}
    for task in tasks:
        if task.fn != "evaluate" or task.meta["ensemble"] != "nvt":
            continue
        mapping = task.meta["mapping"]
        evaluations = {}
        for ensemble in ENSEMBLES:
            metrics = _metrics(by_name.get(f"{mapping}/eval_{ensemble}"), states)
            if metrics and metrics.get("floor"):
                evaluations[ensemble] = (metrics["reference"], metrics["floor"])
        if evaluations:
            floors[mapping] = {k: v for obs in observables for k, v in obs.study_cells(evaluations).items()}
    return floors


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """``results.csv``: :func:`result_columns`, empty cells where a value does not exist."""
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    columns = result_columns()
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else (f"{row[c]:.6g}" if isinstance(row[c], float) else row[c])
                         for c in columns])
    write_atomic(path, handle.getvalue())


def aggregate(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Per model (:data:`MODEL_KEYS`): a 95 % bootstrap :class:`Interval` of every metric over seeds and their replicas.

    The force error belongs to the model, not to a run: its interval resamples training seeds and blocks of the
    held-out frames (:func:`cgzoo.intervals.rmse_interval`), and ``force_rmse_vs_prior`` is the paired interval of
    its relative difference to the prior on the same frames; ``frame_errors`` keeps the per-frame errors for the
    paired comparisons of :func:`findings`. A structural or dynamical metric counts only from runs that stayed
    stable (finished, finite, molecules intact), so a model that blows up never wins on the frames it produced
    before it did; stability is its own column, counted over every run.
    """
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in MODEL_KEYS)].append(row)
    out = {}
    for key, members in groups.items():
        agg: dict[str, Any] = {"n_seeds": len({r["seed"] for r in members})}
        for metric in study_metrics():
            column, run = metric.column, metric.ensemble
            if run is None:
                continue
            by_seed: dict[int, list[float]] = defaultdict(list)
            for r in members:
                if r.get(column) is not None and math.isfinite(r[column]) and r[f"stable_{run}"]:
                    by_seed[r["seed"]].append(r[column])
            agg[column] = bootstrap_interval(list(by_seed.values()))
        agg.update(_force_intervals(members))
        runs = [r[f"stable_{e}"] for r in members for e in ENSEMBLES if r.get(f"planned_{e}")]
        agg["stability"] = (sum(bool(s) for s in runs), len(runs))
        trained = {r["seed"]: r["converged"] for r in members if r.get("converged") is not None}
        agg["converged"] = (sum(trained.values()), len(trained))
        out[key] = agg
    return out


def load_frame_errors(paths: Iterable[str]) -> FrameErrors | None:
    """The held-out per-frame errors of one model's seeds (``frame_errors.npz`` of each), None without any; every
    seed must have been scored on the same frames."""
    frames, squared, counts = None, [], None
    for path in paths:
        with np.load(path) as data:
            if frames is not None and not np.array_equal(frames, data["frames"]):
                raise ValueError(f"{path}: scored on other held-out frames than the model's other seeds")
            frames, sums = data["frames"], data["sums"]
        squared.append(sums[:, ForceErrors.ROWS.index("squared_error")])
        counts = sums[:, ForceErrors.ROWS.index("components")]
    return None if frames is None else FrameErrors(frames, np.stack(squared), counts)


def compare_force_errors(a: FrameErrors | None, b: FrameErrors | None) -> Interval:
    """Paired interval of RMSE(a)/RMSE(b) − 1 over the same held-out frames (undefined when either is missing)."""
    if a is None or b is None:
        return bootstrap_interval([])
    if not np.array_equal(a.frames, b.frames):
        raise ValueError("two models scored on different held-out frames cannot be compared frame by frame")
    return rmse_interval(a.squared, a.counts, b.squared)


def _force_intervals(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The force RMSE's interval over seeds × frame blocks, its paired difference to the prior, the frame errors."""
    first = {}
    for r in members:
        if r.get("frame_errors"):
            first.setdefault(r["seed"], r)
    errors = load_frame_errors(r["frame_errors"] for r in first.values())
    prior_paths = {r["prior_frame_errors"] for r in first.values() if r.get("prior_frame_errors")}
    prior = load_frame_errors(sorted(prior_paths)[:1])
    rmse = bootstrap_interval([]) if errors is None else rmse_interval(errors.squared, errors.counts)
    return {"force_rmse": rmse, "force_rmse_vs_prior": compare_force_errors(errors, prior), "frame_errors": errors}


def findings(agg: dict[tuple, dict[str, Any]], ensembles: Iterable[str] | None = None) -> list[str]:
    """Counted statements per metric and architecture: Δ against ML only of the same network, and each against the prior.

    "Better" needs the two 95 % intervals to separate; overlapping intervals, or a model with one value and
    so no interval, are ties: the verdicts come from the measured noise, not from a chosen margin.
    """
    lines = []
    mappings = sorted({k[3] for k in agg})
    archs = sorted({k[4] for k in agg if k[5] != "prior_only"})
    for column, label in ((m.column, m.label) for m in study_metrics(ensembles)):
        parts = []
        for arch in archs:
            counts: dict[str, list[str]] = {"Δ vs ML only": [], "Δ vs prior": [], "ML only vs prior": []}
            for mapping in mappings:
                ml, delta = _model(agg, mapping, arch, "ml_only"), _model(agg, mapping, arch, "delta")
                prior = _model(agg, mapping, "prior", "prior_only")
                for name, a, b in (("Δ vs ML only", delta, ml), ("Δ vs prior", delta, prior), ("ML only vs prior", ml, prior)):
                    if a is None or b is None:
                        continue
                    if column == FORCE_METRIC.column:  # the same frames for both: a paired comparison
                        if a["frame_errors"] is not None and b["frame_errors"] is not None:
                            counts[name].append(difference_verdict(compare_force_errors(a["frame_errors"],
                                                                                        b["frame_errors"])))
                    elif math.isfinite(a[column].estimate) and math.isfinite(b[column].estimate):
                        counts[name].append(verdict(a[column], b[column]))
            parts.append(f"{arch}: " + "; ".join(
                f"{name} better/tie/worse {v.count('better')}/{v.count('tie')}/{v.count('worse')}"
                for name, v in counts.items()))
        lines.append(f"- **{label}** — " + " · ".join(parts) + ".")
    stab = defaultdict(lambda: [0, 0])
    for key, a in agg.items():
        stab[key[5]][0] += a["stability"][0]
        stab[key[5]][1] += a["stability"][1]
    conv = defaultdict(lambda: [0, 0])
    for key, a in agg.items():
        if a.get("converged", (0, 0))[1]:
            conv[f"{key[4]} {MODE_LABEL[key[5]]}"][0] += a["converged"][0]
            conv[f"{key[4]} {MODE_LABEL[key[5]]}"][1] += a["converged"][1]
    if conv:
        lines.append("- **training** (seeds × mappings that early stopping ended before the epoch cap): " + ", ".join(
            f"{name} {k}/{n}" for name, (k, n) in sorted(conv.items())) + ".")
    lines.append("- **stability** (runs that finished with every molecule intact): " + ", ".join(
        f"{MODE_LABEL[m]} {stab[m][0]}/{stab[m][1]}" for m in MODE_ORDER if m in stab) + ".")
    return lines


def _model(agg, mapping: str, arch: str, mode: str) -> dict[str, Any] | None:
    """The aggregate of one model of ``mapping`` (None when the study has none)."""
    return next((a for key, a in agg.items() if key[3] == mapping and key[4] == arch and key[5] == mode), None)


def _mean(agg, mapping: str, arch: str, mode: str, column: str) -> float | None:
    model = _model(agg, mapping, arch, mode)
    cell = None if model is None else model[column]
    return None if cell is None or not math.isfinite(cell.estimate) else cell.estimate


def _fmt(cell: Interval | float | None) -> str:
    """An interval as ``estimate [low, high]`` (the estimate alone without one), a plain value as is, – for nothing."""
    if cell is None or (isinstance(cell, Interval) and not math.isfinite(cell.estimate)):
        return "–"
    return cell.format(4) if isinstance(cell, Interval) else f"{cell:.4g}"


def _percent(cell: Interval) -> str:
    """A relative difference as signed percent ``+1.52 [+1.41, +1.63]`` (– for none)."""
    if not math.isfinite(cell.estimate):
        return "–"
    text = f"{100 * cell.estimate:+.3g}"
    return f"{text} [{100 * cell.low:+.3g}, {100 * cell.high:+.3g}]" if cell.defined else text


def write_summary(agg: dict[tuple, dict[str, Any]], floors: dict[str, dict[str, Any]], header: list[str],
                  path: Path, ensembles: Iterable[str] | None = None) -> None:
    """``summary.md``: provenance lines, computed findings, one table per system (95 % intervals) with its floor rows."""
    shown = [(m.column, m.label) for m in study_metrics(ensembles)]
    by_run: dict[str, list[str]] = defaultdict(list)
    for metric in study_metrics(ensembles):
        if metric.ensemble is not None:
            by_run[metric.ensemble].append(metric.label)
    lines = [*header, "", "## Findings (computed from results.csv)", "",
             ("Better/tie/worse per architecture, counted over mappings: better or worse only where the 95 % intervals "
              "separate."), "", *findings(agg, ensembles), ""]
    lines += [("Lower is better everywhere. Cells are estimate [95 % interval]: a two-level bootstrap over training "
               "seeds and, within each, MD replicas; no interval with a single value. The force error is measured on "
               "every held-out test frame: its interval resamples seeds and blocks of those frames, and \"vs prior\" is "
               "the relative difference to the prior on the same frames (paired: the blocks are shared, so the "
               "frame-to-frame variation both models see cancels), which is what the force findings compare. Stability counts the runs that finished with every molecule intact (– for a model that ran none); "
               "converged counts the training seeds that early stopping ended before the epoch cap. "
               + "; ".join(f"{', '.join(labels)} come from the {ensemble.upper()} run" for ensemble, labels in by_run.items())
               + ", each compared with the mapped atomistic reference; an unstable run contributes no structural or "
               "dynamical value (– in the table). The floor row of a mapping is its reference's second half against "
               "its first: no model can be shown closer to the reference than that."), ""]
    order = {m: i for i, m in enumerate(MODE_ORDER)}
    force = [c for c, _ in shown].index(FORCE_METRIC.column) + 1
    shown.insert(force, ("force_rmse_vs_prior", "force vs prior (%)"))
    for system in sorted({k[0] for k in agg}):
        lines += [f"### {system}", "",
                  "| mapping | model | " + " | ".join(label for _, label in shown) + " | stable | converged |",
                  "|---|---|" + "---|" * (len(shown) + 2)]
        keys = sorted((k for k in agg if k[0] == system), key=lambda k: (k[1], k[2], order[k[5]], k[4]))
        for mapping in dict.fromkeys(k[3] for k in keys):
            if mapping in floors:
                lines.append(f"| {mapping} | reference split-half (floor) | "
                             + " | ".join(_fmt(floors[mapping].get(c)) for c, _ in shown) + " | – | – |")
            for key in (k for k in keys if k[3] == mapping):
                a = agg[key]
                model = "prior only (FM)" if key[5] == "prior_only" else f"{key[4]} {MODE_LABEL[key[5]]}"
                stable, converged = ("–" if not n else f"{k}/{n}" for k, n in (a["stability"], a["converged"]))
                cells = [_percent(a[c]) if c == "force_rmse_vs_prior" and key[5] != "prior_only"
                         else "–" if c == "force_rmse_vs_prior" else _fmt(a[c]) for c, _ in shown]
                lines.append(f"| {key[3]} | {model} | " + " | ".join(cells) + f" | {stable} | {converged} |")
        lines.append("")
    write_atomic(path, "\n".join(lines))


def plot_error_vs_resolution(agg: dict[tuple, dict[str, Any]], operator: str, path: Path,
                             ensembles: Iterable[str] | None = None) -> Path | None:
    """Rows: metrics; columns: systems; x: beads per molecule; one line per model (colour: architecture, style: mode)."""
    shown = [(m.column, m.label) for m in study_metrics(ensembles)]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in agg if k[2] == operator]
    if not keys:
        return None
    systems = sorted({k[0] for k in keys})
    archs = ["prior"] + sorted({k[4] for k in keys if k[4] != "prior"})
    colors = {a: c for a, c in zip(archs, ["black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"])}
    styles = {"prior_only": "-", "ml_only": ":", "delta": "-"}
    markers = {"prior_only": "s", "ml_only": "x", "delta": "o"}
    fig, axes = plt.subplots(len(shown), len(systems), figsize=(3.2 * len(systems), 2.3 * len(shown)), squeeze=False)
    for j, system in enumerate(systems):
        for i, (column, label) in enumerate(shown):
            ax = axes[i][j]
            plotted = False
            for arch in archs:
                for mode in MODE_ORDER:
                    pts = sorted((k[1], agg[k][column]) for k in keys if k[0] == system and k[4] == arch and k[5] == mode)
                    pts = [(x, c) for x, c in pts if math.isfinite(c.estimate)]
                    if not pts:
                        continue
                    x = [p[0] for p in pts]
                    y = [p[1].estimate for p in pts]
                    err = [[c.estimate - c.low if c.defined else 0.0 for _, c in pts],
                           [c.high - c.estimate if c.defined else 0.0 for _, c in pts]]
                    ax.errorbar(x, y, yerr=err, color=colors[arch], linestyle=styles[mode], marker=markers[mode], ms=4,
                                lw=1, capsize=2, label=f"{arch} {MODE_LABEL[mode]}" if arch != "prior" else "prior only (FM)")
                    plotted = True
            if not plotted:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=8, color="grey")
                ax.set_yticks([])
            ax.set_xticks([1, 2, 3])
            if i == 0:
                ax.set_title(f"{system} ({operator.upper()})", fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == len(shown) - 1:
                ax.set_xlabel("beads per molecule", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    if labels:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.995), ncol=4, fontsize=8, frameon=False)
    save_figure(fig, path)
    plt.close(fig)
    return path


def plot_delta_vs_ml(agg: dict[tuple, dict[str, Any]], path: Path, ensembles: Iterable[str] | None = None) -> Path | None:
    """One panel per metric: Δ (y) against ML only (x) for every (mapping, architecture); below the diagonal Δ wins."""
    shown = [(m.column, m.label) for m in study_metrics(ensembles)]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted({(k[0], k[3], k[4]) for k in agg if k[5] == "delta"})
    if not pairs:
        return None
    systems = sorted({p[0] for p in pairs})
    archs = sorted({p[2] for p in pairs})
    colors = {s: c for s, c in zip(systems, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"])}
    markers = {a: m for a, m in zip(archs, ["o", "^", "s", "D", "v"])}
    ncol = 3
    nrow = math.ceil(len(shown) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.4 * nrow), squeeze=False)
    for idx, (column, label) in enumerate(shown):
        ax = axes[idx // ncol][idx % ncol]
        values = []
        for system, mapping, arch in pairs:
            ml, delta = _mean(agg, mapping, arch, "ml_only", column), _mean(agg, mapping, arch, "delta", column)
            if ml is None or delta is None:
                continue
            ax.scatter(ml, delta, color=colors[system], marker=markers[arch], s=22)
            values += [ml, delta]
        if values:
            lo, hi = min(values), max(values)
            positive = lo > 0 and hi / lo > 20
            if positive:
                ax.set_xscale("log")
                ax.set_yscale("log")
            pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
            span = (lo / 1.3, hi * 1.3) if positive else (lo - pad, hi + pad)
            ax.plot(span, span, color="grey", lw=0.8, ls="--")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("ML only", fontsize=8)
        ax.set_ylabel("Δ (prior + network)", fontsize=8)
        ax.tick_params(labelsize=7)
    for idx in range(len(shown), nrow * ncol):
        axes[idx // ncol][idx % ncol].axis("off")
    handles = [plt.Line2D([], [], color=colors[s], marker="o", ls="", label=s) for s in systems]
    handles += [plt.Line2D([], [], color="grey", marker=markers[a], ls="", label=a) for a in archs]
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.995), ncol=len(handles), fontsize=8,
               frameon=False, title="Δ vs ML only, same network and data: below the diagonal Δ is better", title_fontsize=9)
    save_figure(fig, path)
    plt.close(fig)
    return path


def write_results(tasks: list[Task], states: dict[str, dict[str, Any]], out: Path, header: list[str]) -> list[Path]:
    """Write ``results.csv``, ``summary.md`` and the figures (with the learning curves) into ``out``; return the paths
    written."""
    out.mkdir(parents=True, exist_ok=True)
    rows = collect_rows(tasks, states)
    agg = aggregate(rows)
    written = [out / "results.csv", out / "summary.md"]
    write_csv(rows, written[0])
    ensembles = planned_ensembles(rows)
    write_summary(agg, collect_floors(tasks, states), header, written[1], ensembles)
    for operator in sorted({r["operator"] for r in rows}):
        p = plot_error_vs_resolution(agg, operator, out / f"error_vs_resolution_{operator}.png", ensembles)
        if p:
            written.append(p)
    p = plot_delta_vs_ml(agg, out / "delta_vs_ml_only.png", ensembles)
    if p:
        written.append(p)
    return written + plot_learning_curves(tasks, states, out)

