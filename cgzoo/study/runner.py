"""Run a study's task graph on a pool of worker processes, skipping every task already done with the same inputs.

A task is *done* when ``<out>/task.json`` holds its key: a hash of its function, parameters and
the keys of the tasks it depends on, so changing a setting re-runs exactly the tasks downstream
of it. A task whose directory holds another key is cleared first; one whose directory holds its
own key but no result (killed) is called again and resumes where its tool can. Atomistic data
are never cleared this way: that task compares the physics itself and regenerates only if they changed. A failing task
is recorded in ``<out>/task.json`` with its error (its output is in ``<out>/task.log``); tasks depending on it are skipped and the
run ends with a list of failures, while everything independent of it completes.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from cgzoo.outputs import write_json_atomic
from cgzoo.study.plan import From, Task

STATE_FILE = "task.json"
LOG_FILE = "task.log"


def task_key(task: Task, dep_keys: dict[str, str]) -> str:
    """Hash of what determines the task's output."""
    def plain(value: Any) -> Any:
        if isinstance(value, From):
            return {"from": value.task, "key": value.key, "dep": dep_keys[value.task]}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)

    payload = {"fn": task.fn, "params": plain(task.params), "deps": {d: dep_keys[d] for d in task.deps}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def read_state(task: Task) -> dict[str, Any] | None:
    """The task's recorded state (key, result or error), if any."""
    path = task.out / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _resolve(value: Any, results: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, From):
        return results[value.task][value.key]
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    return value


def _call(fn_name: str, out: str, params: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Worker side: run one task function with its stdout/stderr (file descriptors 1 and 2) in ``<out>/task.log``."""
    from cgzoo.study import tasks

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with (Path(out) / LOG_FILE).open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            started = time.perf_counter()
            result = getattr(tasks, fn_name)(Path(out), **params)
            return result, time.perf_counter() - started
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _prepare(task: Task, key: str) -> None:
    """Clear a directory left by another version of the task; mark it as belonging to this one."""
    state = read_state(task)
    if task.clear_on_change and state is not None and state.get("key") != key and task.out.exists():
        shutil.rmtree(task.out)
    task.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(task.out / STATE_FILE, {"key": key, "task": task.name, "status": "running"})


def _new_pool(workers: int, threads: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each pinned to ``threads`` threads."""
    from cgzoo.study.tasks import init_worker

    return cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                                  initializer=init_worker, initargs=(threads,))


def progress(done: int, total: int, elapsed: float, seconds_by_fn: dict[str, list[float]], remaining: list[str],
             workers: int) -> str:
    """``[done/total, elapsed, ~time left]``: the time left is the remaining tasks' mean duration per kind (from the
    tasks this invocation ran) spread over the workers, shown once every remaining kind has a measured duration."""
    text = f"[{done}/{total}, {elapsed / 60:.1f} min"
    if remaining and all(seconds_by_fn.get(fn) for fn in remaining):
        left = sum(sum(seconds_by_fn[fn]) / len(seconds_by_fn[fn]) for fn in remaining) / max(1, workers)
        text += f", ~{left / 60:.0f} min left"
    return text + "]"


def run_tasks(tasks: list[Task], workers: int, threads: int, log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Run (or skip) every task; return the state of each by name. Raises nothing for failed tasks: see ``status``.

    A worker process that dies (killed, out of memory, a crash in native code) takes the pool with it:
    the pool is replaced, the tasks that were running are run once more, and a task that kills its
    worker a second time is recorded as failed.
    """
    keys: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    states: dict[str, dict[str, Any]] = {}
    pending = list(tasks)
    running: dict[cf.Future, Task] = {}
    worker_deaths: dict[str, int] = {}
    seconds_by_fn: dict[str, list[float]] = {}
    started = time.perf_counter()
    pool = _new_pool(workers, threads)
    try:
        while pending or running:
            before = len(pending)
            for task in list(pending):
                failed_dep = next((d for d in task.deps if states.get(d, {}).get("status") in ("failed", "skipped")), None)
                if failed_dep is not None:
                    states[task.name] = {"status": "skipped", "error": f"depends on {failed_dep}"}
                    pending.remove(task)
                    continue
                if not all(d in results for d in task.deps):
                    continue
                pending.remove(task)
                key = keys[task.name] = task_key(task, keys)
                state = read_state(task)
                if state is not None and state.get("key") == key and state.get("status") == "done":
                    results[task.name], states[task.name] = state["result"], state
                    continue
                _prepare(task, key)
                params = _resolve(task.params, results)
                running[pool.submit(_call, task.fn, str(task.out), params)] = task
                log(f"queued {task.name}")
            if not running:
                if len(pending) == before:
                    raise RuntimeError(f"task graph has unmet dependencies: {[t.name for t in pending][:3]}")
                continue
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            broken = False
            for future in done:
                task = running.pop(future)
                state = {"key": keys[task.name], "task": task.name, "meta": task.meta}
                try:
                    result, seconds = future.result()
                except BrokenProcessPool as exc:
                    broken = True
                    worker_deaths[task.name] = worker_deaths.get(task.name, 0) + 1
                    if worker_deaths[task.name] < 2:
                        pending.append(task)  # run again in the new pool
                        log(f"retry  {task.name}: its worker process died")
                        continue
                    state.update(status="failed", error=f"worker process died twice running this task ({exc})")
                except Exception as exc:  # noqa: BLE001 - a failed cell is recorded; independent cells go on
                    state.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                                 traceback="".join(traceback.format_exception(exc))[-4000:])
                else:
                    state.update(status="done", result=result, seconds=seconds)
                    results[task.name] = result
                    seconds_by_fn.setdefault(task.fn, []).append(seconds)
                write_json_atomic(task.out / STATE_FILE, state)  # recorded before it is reported
                states[task.name] = state
                count = progress(len(states), len(tasks), time.perf_counter() - started, seconds_by_fn,
                                 [t.fn for t in (*pending, *running.values())], workers)
                log(f"done   {task.name} ({state['seconds']:.0f} s) {count}" if state["status"] == "done"
                    else f"FAILED {task.name}: {state['error']} {count}")
            if broken:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _new_pool(workers, threads)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return states
