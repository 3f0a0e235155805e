"""A cost model of the Δ-study: measured per-task costs, the full preset projected from them, its schedule on N.

(a) Reads the ``task.json`` of every finished task of a study work directory (default: the ``cpu`` preset) and
tabulates the seconds per task kind, and unit costs that transfer to other sizes (µs per atom·ps, per
epoch·(training + validation) frame·bead, per bead·step, ...). (b) Gives every task of another preset's plan (default: ``full``) an
estimated duration from those unit costs and that preset's sizes (the generate recipes' default molecule counts,
the preset's epochs and MD steps), each marked with where its unit cost comes from. (c) Simulates greedy list
scheduling of that task graph on N identical workers (longest remaining path first, and the study coordinator's
FIFO plan order) for N = 1 … 1024. Durations are worker-seconds at one thread on the machine that measured them.
Writes ``study_cost.json`` beside this script and prints the tables. Usage::

    python experiments/benchmarks/study_cost.py [--root DIR] [--measured cpu] [--project full]
                                                [--gpu-speedup S] [--without ARCH ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import inspect
import json
import math
import os
import platform
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cgzoo.study.config import Study
    from cgzoo.study.plan import Task

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STUDY = Path("experiments/delta_study/study.yaml")
WORKERS = tuple(2**k for k in range(11))  # 1 … 1024
#: the system of md_throughput.py and of RESULTS.md's training-throughput table: the default dataset's SPC/E beads
BENCHMARK_BEADS = 300
#: architectures MD runs as tables in LAMMPS under ``engine: auto``; the graph networks run in ASE
#: (cgzoo.md.integrators.choose_engine, which needs a built model, so the plan's tasks cannot ask it)
PAIR_ADDITIVE = ("prior", "pair_mlp")
#: the size each kind's unit cost divides by (the unit cost is µs per one of these)
SIZE_UNITS = {"atomistic": "atom·ps", "map_data": "frame·atom", "fit_prior": "training frame·bead",
              "train": "epoch·(training + validation) frame·bead", "score": "test frame·bead",
              "simulate": "bead·step", "evaluate": "run frame·bead"}
LOAD_CAVEAT = ("measured on a 2-core machine shared with other work (two study workers plus other jobs): "
               "timings are upper bounds of an idle machine's")


# ---------------------------------------------------------------------------------------------- scheduling

def _children(deps: Sequence[Sequence[int]]) -> list[list[int]]:
    """The tasks that wait for each task (``deps`` inverted; a repeated dependency counts once)."""
    children: list[list[int]] = [[] for _ in deps]
    for task, parents in enumerate(deps):
        for parent in set(parents):
            children[parent].append(task)
    return children


def bottom_levels(durations: Sequence[float], deps: Sequence[Sequence[int]]) -> list[float]:
    """Each task's longest path to the end of the graph, its own duration included (the list-scheduling priority)."""
    children = _children(deps)
    order = list(TopologicalSorter({i: set(d) for i, d in enumerate(deps)}).static_order())
    level = [0.0] * len(durations)
    for task in reversed(order):
        level[task] = durations[task] + max((level[c] for c in children[task]), default=0.0)
    return level


def critical_path(durations: Sequence[float], deps: Sequence[Sequence[int]]) -> tuple[float, list[int]]:
    """Length of the longest dependency chain (no number of workers finishes sooner) and its tasks, first to last."""
    level = bottom_levels(durations, deps)
    children = _children(deps)
    roots = [i for i, d in enumerate(deps) if not d]
    if not roots:
        return 0.0, []
    path = [max(roots, key=level.__getitem__)]
    while children[path[-1]]:
        path.append(max(children[path[-1]], key=level.__getitem__))
    return level[path[0]], path


def list_schedule(durations: Sequence[float], deps: Sequence[Sequence[int]], workers: int,
                  priority: Sequence[float]) -> float:
    """Makespan of greedy list scheduling on ``workers`` identical workers: whenever one is free it takes the ready
    task of smallest ``priority`` (ties: lower index); a task is ready once every task in its ``deps`` has finished."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    children = _children(deps)
    waiting = [len(set(d)) for d in deps]
    ready = [(priority[i], i) for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    now, done = 0.0, 0
    while ready or running:
        while ready and len(running) < workers:
            _, task = heapq.heappop(ready)
            heapq.heappush(running, (now + durations[task], task))
        now, task = heapq.heappop(running)
        finished = [task]
        while running and running[0][0] == now:
            finished.append(heapq.heappop(running)[1])
        for task in finished:
            done += 1
            for child in children[task]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, (priority[child], child))
    if done != len(durations):
        raise ValueError(f"dependency cycle: {len(durations) - done} tasks never became ready")
    return now


def widest_level(deps: Sequence[Sequence[int]]) -> tuple[int, int]:
    """The largest number of tasks at equal depth (depth: edges on the longest chain from a task without
    dependencies), and that depth: how many workers the graph can keep busy at once, if durations were equal."""
    depth = [0] * len(deps)
    for task in TopologicalSorter({i: set(d) for i, d in enumerate(deps)}).static_order():
        depth[task] = 1 + max((depth[p] for p in deps[task]), default=-1)
    counts: dict[int, int] = defaultdict(int)
    for d in depth:
        counts[d] += 1
    level = max(counts, key=lambda d: (counts[d], -d))
    return counts[level], level


def scaling_table(durations: Sequence[float], deps: Sequence[Sequence[int]],
                  workers: Sequence[int] = WORKERS) -> dict[str, Any]:
    """Makespan, speed-up and efficiency on each number of workers, longest-path-first and FIFO (plan order)."""
    level = bottom_levels(durations, deps)
    total = float(sum(durations))
    longest = [-x for x in level]
    fifo = list(range(len(durations)))
    rows = []
    for n in workers:
        cp_first, in_order = list_schedule(durations, deps, n, longest), list_schedule(durations, deps, n, fifo)
        rows.append({"workers": n, "makespan_s": cp_first, "speedup": total / cp_first if cp_first else None,
                     "efficiency": total / cp_first / n if cp_first else None,
                     "fifo_makespan_s": in_order, "fifo_speedup": total / in_order if in_order else None})
    length, _ = critical_path(durations, deps)
    last = rows[-1]["makespan_s"]
    saturates = next(r["workers"] for r in rows if r["makespan_s"] <= 1.05 * last)
    return {"total_work_s": total, "critical_path_s": length,
            "max_speedup": total / length if length else None, "saturates_at_workers": saturates, "rows": rows}


# ---------------------------------------------------------------------------------------------- sizes

@dataclass(frozen=True)
class SystemSize:
    """A generated atomistic system's size: molecules, atoms, simulated ps (equilibration + production), frames."""

    molecules: int
    atoms: int
    ps: float
    frames: int


def system_sizes(study: Study) -> dict[str, SystemSize]:
    """Each system's size from its ``cgzoo generate`` recipe: the preset's options over ``run_generate``'s
    defaults (``n_molecules``: the system's ``default_n_molecules``)."""
    from cgzoo.errors import InputError
    from cgzoo.generate import get_system, run_generate
    from cgzoo.units import PS_TO_FS

    defaults = {k: p.default for k, p in inspect.signature(run_generate).parameters.items()}
    sizes = {}
    for system, options in study.atomistic.items():
        if "path" in options:
            raise InputError(study.config_path, f"atomistic data of {system} are not generated: their size is unknown")
        spec = get_system(system)
        merged = {**defaults, **options}
        molecules = int(merged["n_molecules"] or spec.default_n_molecules)
        sizes[system] = SystemSize(molecules, molecules * len(spec.molecule.sites),
                                   float(merged["equil_ps"]) + float(merged["prod_ps"]),
                                   round(float(merged["prod_ps"]) * PS_TO_FS / float(merged["save_every_fs"])))
    return sizes


def _split_frames(frames: int, split: str) -> int:
    from cgzoo.data.splits import block_split

    return len(block_split(frames)[split])


def task_size(task: Task, plan: dict[str, Task], systems: dict[str, SystemSize], epochs: float | None = None,
              steps: float | None = None) -> float:
    """The size (:data:`SIZE_UNITS`) of ``task``; ``epochs`` and ``steps``: a training's epochs, a run's steps (the
    plan's when None)."""
    meta = task.meta
    system = systems[meta["system"]]
    beads = system.molecules * meta.get("beads_per_molecule", 1)
    if task.fn == "atomistic":
        return system.atoms * system.ps
    if task.fn == "map_data":
        return system.frames * system.atoms
    train_frames = _split_frames(system.frames, "train")
    if task.fn == "fit_prior":
        return min(train_frames, task.params["max_frames"] or train_frames) * beads
    if task.fn == "train":  # an epoch trains on the (thinned) training split and validates on the validation split
        training = task.params["training"]
        val_frames = _split_frames(system.frames, "val")
        frames = (min(train_frames, training.get("data.max_train_frames") or train_frames)
                  + min(val_frames, training.get("data.max_val_frames") or val_frames))
        return float(epochs) * frames * beads
    if task.fn == "score":
        return _split_frames(system.frames, "test") * beads
    if task.fn == "simulate":
        return (task.params["settings"]["steps"] if steps is None else steps) * beads
    if task.fn == "evaluate":
        runs = [plan[ref.task].params["settings"] for ref in task.params["runs"].values()]
        return sum(s["steps"] // s["save_every"] for s in runs) * beads
    raise ValueError(f"{task.name}: unknown task kind {task.fn!r}")


def planned_engine(task: Task) -> str:
    """The engine a simulate task will use: its setting, or under ``auto`` LAMMPS (pair-additive) or ASE."""
    engine = task.params["settings"].get("engine", "auto")
    if engine != "auto":
        return engine
    return "lammps" if task.meta["architecture"] in PAIR_ADDITIVE else "ase"


def cost_key(task: Task, engine: str | None = None) -> tuple[str, ...]:
    """The group a task's unit cost belongs to: kind, plus architecture and mode (train), architecture (score),
    engine and architecture (simulate)."""
    if task.fn == "train":
        return ("train", task.meta["architecture"], task.meta["mode"])
    if task.fn == "score":
        return ("score", task.meta.get("architecture", "prior"))  # a prior's meta names no architecture
    if task.fn == "simulate":
        return ("simulate", engine or planned_engine(task), task.meta["architecture"])
    return (task.fn,)


# ---------------------------------------------------------------------------------------------- measured costs

def measured_tasks(study: Study, tasks: list[Task]) -> list[dict[str, Any]]:
    """Every finished task of ``study``'s plan ``tasks`` with its seconds, its cost key and its size as run; a state
    recorded under another key (other settings, so other sizes) is left out."""
    from cgzoo.study.runner import read_state, task_key

    plan = {t.name: t for t in tasks}
    systems = system_sizes(study)
    keys: dict[str, str] = {}
    out = []
    for task in tasks:  # dependencies first, so each task's key can include theirs
        keys[task.name] = task_key(task, keys)
        state = read_state(task)
        if not state or state.get("status") != "done" or state.get("key") != keys[task.name]:
            continue
        result = state.get("result") or {}
        size = task_size(task, plan, systems, epochs=result.get("epochs"), steps=result.get("steps_done"))
        if size <= 0:
            continue  # e.g. a run that failed before its first step: seconds, but nothing they were spent on
        out.append({"task": task.name, "key": cost_key(task, result.get("engine")), "seconds": float(state["seconds"]),
                    "size": float(size), "epochs": result.get("epochs"),
                    "max_epochs": task.params.get("training", {}).get("trainer.max_epochs")})
    return out


def summarise(measured: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per cost key: count, mean/min/max seconds and the unit cost (µs per size unit: total seconds ÷ total size)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in measured:
        groups[row["key"]].append(row)
    table = {}
    for key, rows in sorted(groups.items()):
        seconds = [r["seconds"] for r in rows]
        size = sum(r["size"] for r in rows)
        table["/".join(key)] = {"key": list(key), "count": len(rows), "mean_s": sum(seconds) / len(rows),
                                "min_s": min(seconds), "max_s": max(seconds), "unit": SIZE_UNITS[key[0]],
                                "us_per_unit": 1e6 * sum(seconds) / size}
    return table


def epoch_fractions(measured: list[dict[str, Any]]) -> dict[str, float]:
    """Mean epochs ÷ epoch cap of the measured trainings, per ``architecture/mode``, per ``mode`` and overall."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in measured:
        if row["key"][0] == "train" and row["epochs"] and row["max_epochs"]:
            fraction = row["epochs"] / float(row["max_epochs"])
            for label in (f"{row['key'][1]}/{row['key'][2]}", row["key"][2], "all"):
                groups[label].append(fraction)
    return {label: sum(v) / len(v) for label, v in groups.items()}


# ---------------------------------------------------------------------------------------------- benchmark figures

def training_frames_per_s(results_md: Path) -> dict[str, float]:
    """The first training-throughput table of RESULTS.md (zoo-default networks, 300 SPC/E beads, one thread):
    trained frames per second by model."""
    lines = results_md.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Training throughput")), None)
    if start is None:
        raise ValueError(f"{results_md}: no training-throughput table")
    rates = {}
    for line in lines[start + 1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            if rates:
                break
            continue
        try:
            rates[cells[0]] = float(cells[1])
        except ValueError:
            continue  # header or separator row
    return rates


def benchmark_costs(measured: dict[str, dict[str, Any]], architectures: list[str]) -> dict[str, dict[str, Any]]:
    """Unit costs this CPU run cannot give, from experiments/benchmarks: graph-network MD in ASE
    (md_throughput.json, one thread, 300 beads) and trainings of an architecture the run did not train (a measured
    architecture's unit cost × the ratio of their trained frames per second in RESULTS.md)."""
    costs: dict[str, dict[str, Any]] = {}
    md = json.loads((HERE / "md_throughput.json").read_text())
    for row in md["cg"]:
        if row["model"] in architectures and row["model"] not in PAIR_ADDITIVE:
            costs[f"simulate/ase/{row['model']}"] = {
                "us_per_unit": 1e6 / (row["steps_per_s"] * BENCHMARK_BEADS),
                "source": f"benchmark: md_throughput.json {md['date']} ({md['machine']}), ASE, {BENCHMARK_BEADS} beads"}
    rates = training_frames_per_s(HERE / "RESULTS.md")
    for arch in architectures:
        for mode in ("ml_only", "delta"):
            if f"train/{arch}/{mode}" in measured or arch not in rates:
                continue
            bases = [a for a in rates if f"train/{a}/{mode}" in measured]
            if bases:  # the measured architecture of the nearest training throughput
                base = min(bases, key=lambda a: abs(math.log(rates[a] / rates[arch])))
                costs[f"train/{arch}/{mode}"] = {
                    "us_per_unit": measured[f"train/{base}/{mode}"]["us_per_unit"] * rates[base] / rates[arch],
                    "source": f"scaled: measured {base} × RESULTS.md training throughput {base}/{arch} "
                              f"({rates[base]}/{rates[arch]} frames/s)"}
    return costs


def unit_cost(key: tuple[str, ...], measured: dict[str, dict[str, Any]],
              benchmark: dict[str, dict[str, Any]]) -> tuple[float, str]:
    """µs per size unit for ``key`` and its source: this run's tasks of the same key (``measured``), a benchmark
    figure (``benchmark``/``scaled``), the mean of this run's tasks of the same kind (``kind-mean``), or none
    (``unmeasured``: counted as 0 s)."""
    name = "/".join(key)
    if name in measured:
        return measured[name]["us_per_unit"], "measured"
    if name in benchmark:
        return benchmark[name]["us_per_unit"], benchmark[name]["source"].split(":")[0]
    same_kind = [m for m in measured.values() if m["key"][0] == key[0]]
    if same_kind:
        # the kind's unit cost weighted by count: other architectures or engines of this kind
        return sum(m["us_per_unit"] * m["count"] for m in same_kind) / sum(m["count"] for m in same_kind), "kind-mean"
    return 0.0, "unmeasured"


# ---------------------------------------------------------------------------------------------- projection

def projected_durations(tasks: list[Task], study: Study, measured: dict[str, dict[str, Any]],
                        benchmark: dict[str, dict[str, Any]], fractions: dict[str, float],
                        typical: bool) -> list[dict[str, Any]]:
    """Every task of ``study``'s plan with an estimated duration: trainings run the epoch cap, or (``typical``) the
    cap × the measured epochs/cap fraction of their architecture and mode (else of the mode, else of all)."""
    from cgzoo.errors import InputError

    plan = {t.name: t for t in tasks}
    systems = system_sizes(study)
    rows = []
    for task in tasks:
        epochs = None
        if task.fn == "train":
            if "trainer.max_epochs" not in task.params["training"]:
                raise InputError(study.config_path, f"preset {study.preset!r} sets no trainer.max_epochs: a training's "
                                                    "epochs, and so its cost, have no bound")
            cap = float(task.params["training"]["trainer.max_epochs"])
            label = f"{task.meta['architecture']}/{task.meta['mode']}"
            fraction = next((fractions[k] for k in (label, task.meta["mode"], "all") if k in fractions), 1.0)
            epochs = cap * fraction if typical else cap
        key = cost_key(task)
        cost, source = unit_cost(key, measured, benchmark)
        size = task_size(task, plan, systems, epochs=epochs)
        rows.append({"task": task.name, "kind": task.fn, "key": "/".join(key),
                     "architecture": task.meta.get("architecture"), "size": size, "seconds": cost * size * 1e-6,
                     "source": source})
    return rows


def gpu_formula(rows: list[dict[str, Any]], speedup: float) -> list[dict[str, Any]]:
    """NOT MEASURED: the rows with every graph-network task (train, score, simulate of an architecture that is not
    pair-additive) divided by a user-supplied speed-up factor; no GPU was measured in this project."""
    return [{**r, "seconds": r["seconds"] / speedup}
            if r["kind"] in ("train", "score", "simulate") and r["architecture"] not in (None, *PAIR_ADDITIVE) else r
            for r in rows]


def without(rows: list[dict[str, Any]], architecture: str) -> list[dict[str, Any]]:
    """The rows with every task of ``architecture`` (its trainings, scores and MD) taking no time: the study
    without that architecture, its graph unchanged."""
    return [{**r, "seconds": 0.0, "source": "not run"} if r["architecture"] == architecture else r for r in rows]


def breakdown(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Worker-hours by task kind, by source of the estimate and by cost group; each group with its number of tasks
    and its source, which marks every task of it as measured on this CPU or extrapolated."""
    by_kind: dict[str, float] = defaultdict(float)
    by_source: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_kind[r["kind"]] += r["seconds"] / 3600
        by_source[r["source"]] += r["seconds"] / 3600
        count[r["source"]] += 1
        group = groups.setdefault(r["key"], {"tasks": 0, "hours": 0.0, "source": r["source"]})
        group["tasks"] += 1
        group["hours"] += r["seconds"] / 3600
    return {"worker_hours": sum(by_kind.values()), "by_kind_h": dict(by_kind), "by_source_h": dict(by_source),
            "tasks_by_source": dict(count), "groups": groups,
            "unmeasured_kinds": sorted(k for k, g in groups.items() if g["source"] == "unmeasured")}


def schedule(rows: list[dict[str, Any]], tasks: list[Task]) -> dict[str, Any]:
    """:func:`scaling_table` of the plan with the rows' durations, its critical path and its widest level."""
    index = {t.name: i for i, t in enumerate(tasks)}
    deps = [[index[d] for d in t.deps] for t in tasks]
    durations = [r["seconds"] for r in rows]
    table = scaling_table(durations, deps)
    _, path = critical_path(durations, deps)
    width, depth = widest_level(deps)
    table["critical_path"] = [{"task": tasks[i].name, "seconds": durations[i]} for i in path]
    table["widest_level"] = {"tasks": width, "depth": depth}
    longest = max(rows, key=lambda r: r["seconds"])
    table["longest_task"] = {"task": longest["task"], "seconds": longest["seconds"]}
    return table


# ---------------------------------------------------------------------------------------------- report

def machine() -> str:
    """The CPU model and core count of this machine (the one that measured the study's tasks, when run there)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def print_report(report: dict[str, Any]) -> None:
    """The tables of ``report`` as Markdown."""
    print(f"## Measured ({report['measured_preset']} preset, {report['date']}, {report['machine']})\n")
    print(f"{report['caveat']}\n")
    print("| task kind | count | mean s | min s | max s | µs per unit | unit |\n|---|---|---|---|---|---|---|")
    for name, row in report["measured"].items():
        print(f"| {name} | {row['count']} | {row['mean_s']:.0f} | {row['min_s']:.0f} | {row['max_s']:.0f} | "
              f"{row['us_per_unit']:.4g} | {row['unit']} |")
    print(f"\nepochs ÷ cap: {', '.join(f'{k} {v:.2f}' for k, v in report['epoch_fractions'].items())}")
    for name, scenario in report["projection"]["scenarios"].items():
        cost, sched = scenario["breakdown"], scenario["schedule"]
        print(f"\n## {report['projection']['preset']} preset, {name}: {cost['worker_hours']:.0f} worker-hours\n")
        kinds = sorted(cost["by_kind_h"].items(), key=lambda x: -x[1])
        print("by kind: " + ", ".join(f"{k} {v:.1f} h" for k, v in kinds))
        print("by source: " + ", ".join(f"{k} {v:.1f} h ({cost['tasks_by_source'][k]} tasks)"
                                        for k, v in cost["by_source_h"].items()))
        top = sorted(cost["groups"].items(), key=lambda x: -x[1]["hours"])[:6]
        print("largest groups: " + ", ".join(f"{k} {g['hours']:.0f} h ({g['source']})" for k, g in top))
        if cost["unmeasured_kinds"]:
            print(f"unmeasured (0 s): {', '.join(cost['unmeasured_kinds'])}")
        chain = " → ".join(f"{s['task']} {s['seconds'] / 3600:.1f} h" for s in sched["critical_path"])
        print(f"critical path {_hours(sched['critical_path_s'])} ({chain}); "
              f"max speed-up {sched['max_speedup']:.0f}; widest level {sched['widest_level']['tasks']} tasks; "
              f"within 5 % of the 1024-worker makespan from {sched['saturates_at_workers']} workers")
        print("\n| workers | makespan | speed-up | efficiency | FIFO makespan |\n|---|---|---|---|---|")
        for r in sched["rows"]:
            print(f"| {r['workers']} | {_hours(r['makespan_s'])} | {r['speedup']:.1f} | {r['efficiency']:.2f} | "
                  f"{_hours(r['fifo_makespan_s'])} |")


def main(argv: list[str] | None = None) -> None:
    """Measure, project, schedule; write study_cost.json beside this script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="repository whose work directories are read; the study file's paths are relative to it")
    parser.add_argument("--study", type=Path, default=STUDY, help="study file, relative to --root")
    parser.add_argument("--measured", default="cpu", help="preset whose finished tasks give the unit costs")
    parser.add_argument("--project", default="full", help="preset to project")
    parser.add_argument("--gpu-speedup", type=float, default=None,
                        help="NOT MEASURED: also project with graph-network tasks this many times faster")
    parser.add_argument("--without", nargs="*", default=[], metavar="ARCH",
                        help="also project the typical case without the tasks of each of these architectures")
    args = parser.parse_args(argv)
    if args.gpu_speedup is not None and args.gpu_speedup <= 0:
        parser.error("--gpu-speedup must be positive")
    from cgzoo.study.config import load_study
    from cgzoo.study.plan import build_plan

    os.chdir(args.root)
    source = load_study(args.study, args.measured)
    source_tasks = build_plan(source)
    rows = measured_tasks(source, source_tasks)
    measured = summarise(rows)
    fractions = epoch_fractions(rows)
    target = load_study(args.study, args.project)
    target_tasks = build_plan(target)
    unknown = [a for a in args.without if a not in target.architectures]
    if unknown:
        parser.error(f"--without {unknown}: not among the {args.project} preset's {target.architectures}")
    benchmark = benchmark_costs(measured, target.architectures)
    scenarios: dict[str, Any] = {}
    for name, typical in (("epoch cap", False), ("typical epochs", True)):
        projected = projected_durations(target_tasks, target, measured, benchmark, fractions, typical)
        scenarios[name] = {"breakdown": breakdown(projected), "schedule": schedule(projected, target_tasks)}
        if not typical:
            continue
        variants = {f"typical epochs without {arch}": without(projected, arch) for arch in args.without}
        if args.gpu_speedup is not None:
            variants[f"typical epochs, graph networks ÷ {args.gpu_speedup:g} (NOT MEASURED)"] = gpu_formula(
                projected, args.gpu_speedup)
        for label, variant in variants.items():
            scenarios[label] = {"breakdown": breakdown(variant), "schedule": schedule(variant, target_tasks)}
    report = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "caveat": LOAD_CAVEAT,
        "command": "python experiments/benchmarks/study_cost.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "measured_preset": args.measured, "measured_dir": str(args.root / source.work_dir), "measured_tasks": len(rows),
        "plan_tasks": len(source_tasks), "measured": measured, "epoch_fractions": fractions,
        "benchmark": benchmark,
        "projection": {"preset": args.project, "tasks": len(target_tasks), "scenarios": scenarios},
    }
    (HERE / "study_cost.json").write_text(json.dumps(report, indent=1) + "\n")
    print_report(report)


if __name__ == "__main__":
    main()
