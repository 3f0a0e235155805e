"""The Δ-learning study: one YAML grid, one resumable command (``cgzoo study``), one results table.

``run_study`` expands a preset of the study file (:mod:`cgzoo.study.config`) into tasks
(:mod:`cgzoo.study.plan`), runs what is not done yet (:mod:`cgzoo.study.runner`, bodies in
:mod:`cgzoo.study.tasks`) and writes ``results.csv``, ``summary.md`` and figures
(:mod:`cgzoo.study.results`, the data-efficiency curves :mod:`cgzoo.study.data_efficiency`).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from cgzoo.outputs import output_lock, write_json_atomic
from cgzoo.study.config import Study, load_study
from cgzoo.study.data_efficiency import write_data_efficiency
from cgzoo.study.plan import build_plan
from cgzoo.study.results import write_results
from cgzoo.study.runner import read_state, run_tasks


def _cpu_name() -> str:
    """The CPU model (Linux), else the architecture name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def run_study(config: str | Path, preset: str, workers: int | None = None, report_only: bool = False,
              log=print, scheduler: str | None = None) -> tuple[Study, dict[str, dict]]:
    """Run (or, with ``report_only``, only tabulate) preset ``preset`` of ``config``; return the study and every task's state.

    ``workers`` and ``scheduler`` (a running Dask cluster's address) replace the preset's ``workers`` and ``scheduler``.
    """
    study = load_study(config, preset)
    study.workers = workers or study.workers
    study.scheduler = scheduler or study.scheduler
    with ExitStack() as locks:  # one study process per work and results directory
        if not report_only:
            locks.enter_context(output_lock(study.work_dir))
        locks.enter_context(output_lock(study.results_dir))
        return study, _run_locked(study, config, preset, report_only, log)


def _run_locked(study: Study, config: str | Path, preset: str, report_only: bool, log) -> dict[str, dict]:
    """The body of :func:`run_study`, run while holding its directories."""
    tasks = build_plan(study)
    started = time.perf_counter()
    if report_only:
        states = {t.name: s for t in tasks if (s := read_state(t)) is not None}
    else:
        where = f"the workers of {study.scheduler}" if study.scheduler else f"{study.workers} workers"
        log(f"study {study.name!r}, preset {preset!r}: {len(study.mappings)} mappings, {len(tasks)} tasks, "
            f"{where} × {study.threads_per_worker} threads, work dir {study.work_dir}")
        states = run_tasks(tasks, study.workers, study.threads_per_worker, study.scheduler, log=log)
    wall = time.perf_counter() - started
    task_seconds = sum(float(s.get("seconds", 0.0)) for s in states.values() if s.get("status") == "done")
    command = "cgzoo study " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if Path(sys.argv[0]).name == "cgzoo" else None
    header = [f"# {study.name}: preset `{preset}`", "",
              (f"- written {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} on {platform.node() or 'unknown'} "
               f"({_cpu_name()}, {os.cpu_count()} cores), Python {platform.python_version()}"),
              f"- command: `{command or f'cgzoo study {config} --preset {preset}'}`",
              f"- {len(study.mappings)} mappings × {len(study.seeds)} seed(s); "
              f"{sum(s.get('status') == 'done' for s in states.values())} of {len(tasks)} tasks done; "
              f"task time {task_seconds / 3600:.2f} h (sum over tasks, including reused ones)"
              + ("" if report_only else f", this invocation's wall time {wall / 60:.1f} min"),
              f"- resolved settings: `{study.results_dir / 'study_settings.json'}`"]
    study.results_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(study.results_dir / "study_settings.json",
                      {"config": str(study.config_path), "preset": preset, "settings": study.raw,
                       "mappings": [m.name for m in study.mappings], "architectures": study.architectures,
                       "modes": study.modes, "seeds": study.seeds})
    write_results(tasks, states, study.results_dir, header)
    write_data_efficiency(tasks, states, study.results_dir)
    return states


__all__ = ["build_plan", "load_study", "run_study"]
