"""Run a study's task graph on a Dask cluster, skipping every task already done with the same inputs.

A task is *done* when ``<out>/task.json`` holds its key: a hash of its function, parameters and
the keys of the tasks it depends on, so changing a setting re-runs exactly the tasks downstream
of it. A task whose directory holds another key is cleared first; one whose directory holds its
own key but no result (killed) is called again and resumes where its tool can. Atomistic data
are never cleared this way: that task compares the physics itself and regenerates only if they changed. A failing task
is recorded in ``<out>/task.json`` with its error (its output is in ``<out>/task.log``); tasks depending on it are skipped and the
run ends with a list of failures, while everything independent of it completes.

The study process is the coordinator: it submits a task to the cluster once the tasks it depends on are done, and
writes every ``task.json`` itself when the result comes back, so a worker never writes a state. The cluster is a
:class:`distributed.LocalCluster` of ``workers`` processes on this machine, or the running cluster whose scheduler
address is given; its workers must see the work directory under the same paths (a shared filesystem) and import the
same cgzoo (docs/study_cluster.md). Every worker process runs one task at a time, pinned to the study's threads, so
that a task's output can be captured in its ``task.log``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dask
from distributed import Client, Future, KilledWorker, LocalCluster, WorkerPlugin, wait

from cgzoo.errors import CGZooError
from cgzoo.outputs import write_json_atomic
from cgzoo.study import tasks as bodies
from cgzoo.study.plan import From, Task

STATE_FILE = "task.json"
LOG_FILE = "task.log"
#: seconds between two looks at the cluster's workers while no task finishes
POLL_S = 5.0
#: The task kinds that can run on a GPU, each with the setting in its parameters that names its device. Such a task
#: asks the cluster for the Dask resource ``GPU`` only when that setting names a GPU (``gpu``, ``cuda``, ``cuda:N``),
#: never for ``auto`` or ``cpu``, so a CPU study runs on any worker.
GPU_TASKS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "train": lambda params: params["training"].get("trainer.accelerator"),
    "simulate": lambda params: params["device"],
}


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


def _call(fn: Callable[..., dict[str, Any]], cwd: str, out: str,
          params: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Worker side: run one task function in the study's directory ``cwd`` (the study file's relative paths are
    relative to it), its output in ``<out>/task.log``; return its result and seconds."""
    worker_cwd = os.getcwd()
    os.chdir(cwd)
    try:
        with _output_to(Path(out) / LOG_FILE):
            started = time.perf_counter()
            result = fn(Path(out), **params)
            return result, time.perf_counter() - started
    finally:
        os.chdir(worker_cwd)


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (stdout and stderr, native libraries' too) appended to ``path`` while the block runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with path.open("a") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
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


def resources(task: Task) -> dict[str, int] | None:
    """The Dask resources ``task`` asks for: one GPU where its kind can use one (:data:`GPU_TASKS`) and its settings
    name one; None, any worker, otherwise."""
    device = GPU_TASKS[task.fn](task.params) if task.fn in GPU_TASKS else None
    return {"GPU": 1} if str(device).split(":")[0] in ("gpu", "cuda") else None


class PinThreads(WorkerPlugin):
    """Pins every worker process of the cluster, including those that join or restart later, to ``threads``
    torch/OpenMP threads (:func:`cgzoo.study.tasks.init_worker`) before it runs a task."""

    name = "cgzoo-study-threads"

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def setup(self, worker: Any) -> None:
        """Called in the worker process when it starts or when the plugin is registered."""
        bodies.init_worker(self.threads)


@contextmanager
def connect(workers: int, threads: int, scheduler: str | None, gpu: bool,
            log: Callable[[str], None] = print) -> Iterator[Client]:
    """A client of the cluster at ``scheduler``, or of a new :class:`LocalCluster` of ``workers`` processes (each
    offering one ``GPU`` when ``gpu``, so the GPU tasks run on it too); its workers pinned to ``threads`` threads.

    The local cluster's scheduler gives up on a task as soon as its worker process dies (:class:`KilledWorker`), so
    that :func:`run_tasks` decides whether it runs again; it has no memory limit and no dashboard.
    """
    with ExitStack() as stack:
        if scheduler is None:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # read when the scheduler starts
                cluster = stack.enter_context(LocalCluster(
                    n_workers=max(1, workers), threads_per_worker=1, processes=True, memory_limit=0,
                    dashboard_address=None, silence_logs=logging.CRITICAL, resources={"GPU": 1} if gpu else None,
                    scheduler_kwargs={"dashboard_address": ":0"}))  # its HTTP endpoints on a free port, not 8787
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout="30s"))
            except (OSError, ValueError) as exc:
                raise CGZooError(f"Dask scheduler {scheduler}: none answers there ({exc})") from None
            _check_workers(client, scheduler, gpu, log)
        client.register_plugin(PinThreads(threads))
        yield client


def _check_workers(client: Client, scheduler: str, gpu: bool, log: Callable[[str], None]) -> None:
    """Refuse a cluster whose workers run several threads (the task log capture redirects the whole process's
    output); say so when its scheduler retries killed tasks itself, or when the study needs a GPU and no worker offers
    one yet."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    threaded = [address for address, worker in workers.items() if worker["nthreads"] > 1]
    if threaded:
        raise CGZooError(f"Dask scheduler {scheduler}: worker {threaded[0]} runs several threads; start the study's "
                         "workers with 'dask worker ... --nthreads 1' (one task per process)")
    allowed = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    if allowed:
        log(f"{scheduler} runs a task that kills its worker up to {allowed + 1} times before the study counts one death"
            " (start it with DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0)")
    if gpu and not any(worker.get("resources", {}).get("GPU") for worker in workers.values()):
        log(f"no worker of {scheduler} offers a GPU yet: the GPU tasks wait for one "
            "('dask worker ... --resources GPU=1')")


def progress(done: int, total: int, elapsed: float, seconds_by_fn: dict[str, list[float]], remaining: list[str],
             workers: int) -> str:
    """``[done/total, elapsed, ~time left]``: the time left is the remaining tasks' mean duration per kind (from the
    tasks this invocation ran) spread over the workers, shown once every remaining kind has a measured duration."""
    text = f"[{done}/{total}, {elapsed / 60:.1f} min"
    if remaining and all(seconds_by_fn.get(fn) for fn in remaining):
        left = sum(sum(seconds_by_fn[fn]) / len(seconds_by_fn[fn]) for fn in remaining) / max(1, workers)
        text += f", ~{left / 60:.0f} min left"
    return text + "]"


def capacity(client: Client) -> Counter[str]:
    """How many tasks the cluster runs at once: one per thread of its running workers (``tasks``; a worker that is
    starting, paused or closing takes none), of which one per GPU (``GPU``)."""
    workers = [w for w in client.scheduler_info(n_workers=-1)["workers"].values() if w["status"] == "running"]
    return Counter(tasks=sum(w["nthreads"] for w in workers),
                   GPU=sum(w.get("resources", {}).get("GPU", 0) for w in workers))


def _outcome(future: Future, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` completed from a finished task: done with its result and seconds, or failed with the error."""
    try:
        result, seconds = future.result()
    except KilledWorker as exc:  # the second time: the scheduler itself allowed ``allowed_failures`` deaths per try
        return {**state, "status": "failed", "error": f"its worker process died {2 * (exc.allowed_failures + 1)} times "
                                                      f"running this task (the last was {exc.last_worker.address})"}
    except Exception as exc:  # noqa: BLE001 - a failed cell is recorded; independent cells go on
        return {**state, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "traceback": "".join(traceback.format_exception(exc))[-4000:]}
    return {**state, "status": "done", "result": result, "seconds": seconds}


def run_tasks(tasks: list[Task], workers: int, threads: int, scheduler: str | None = None,
              log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Run (or skip) every task on the cluster of :func:`connect`; return the state of each by name. Raises nothing
    for failed tasks: see ``status``.

    A task is submitted when the cluster has a free worker for it (:func:`capacity`, asked again every
    :data:`POLL_S` seconds as workers join or leave), so a worker holds only the task it runs. A worker process that
    dies (killed, out of memory, a crash in native code) is replaced and the task it was running runs once more, on
    whichever worker is free; a task that kills its worker a second time is recorded as failed. (A scheduler that
    allows deaths itself, ``distributed.scheduler.allowed-failures`` above 0, retries before this count starts.)
    """
    keys: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    states: dict[str, dict[str, Any]] = {}
    pending = list(tasks)
    running: dict[Future, Task] = {}
    seconds_by_fn: dict[str, list[float]] = {}
    killed_once: set[str] = set()
    started = time.perf_counter()
    with connect(workers, threads, scheduler, any(resources(t) for t in tasks), log) as client:
        while pending or running:
            free = capacity(client)
            free.subtract(tasks=len(running), GPU=sum(resources(t) is not None for t in running.values()))
            before = len(pending)
            for task in list(pending):
                failed_dep = next((d for d in task.deps if states.get(d, {}).get("status") in ("failed", "skipped")), None)
                if failed_dep is not None:
                    states[task.name] = {"status": "skipped", "error": f"depends on {failed_dep}"}
                    pending.remove(task)
                    continue
                if not all(d in results for d in task.deps):
                    continue
                key = keys[task.name] = task_key(task, keys)
                state = read_state(task)
                if state is not None and state.get("key") == key and state.get("status") == "done":
                    results[task.name], states[task.name] = state["result"], state
                    pending.remove(task)
                    continue
                needs = resources(task) or {}
                if free["tasks"] < 1 or free["GPU"] < needs.get("GPU", 0):
                    continue  # no free worker for it yet
                pending.remove(task)
                _prepare(task, key)
                future = client.submit(_call, getattr(bodies, task.fn), os.getcwd(), str(task.out),
                                       _resolve(task.params, results),
                                       key=f"{task.name}-{uuid.uuid4().hex}", resources=needs or None, pure=False)
                free.subtract(tasks=1, **needs)
                running[future] = task
                log(f"queued {task.name}")
            if not running:
                if len(pending) == before:
                    if not any(all(d in results for d in t.deps) for t in pending):
                        raise RuntimeError(f"task graph has unmet dependencies: {[t.name for t in pending][:3]}")
                    time.sleep(POLL_S)  # the ready tasks wait for a worker (none yet, or none with a GPU)
                continue
            try:
                done, _ = wait(list(running), timeout=POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for future in done:
                task = running.pop(future)
                killed = future.status == "error" and isinstance(future.exception(), KilledWorker)
                if killed and task.name not in killed_once:
                    killed_once.add(task.name)
                    pending.append(task)  # once more, when a worker is free
                    log(f"retry  {task.name}: its worker process died")
                    continue
                state = _outcome(future, {"key": keys[task.name], "task": task.name, "meta": task.meta})
                write_json_atomic(task.out / STATE_FILE, state)  # recorded before it is reported
                states[task.name] = state
                if state["status"] == "done":
                    results[task.name] = state["result"]
                    seconds_by_fn.setdefault(task.fn, []).append(state["seconds"])
                count = progress(len(states), len(tasks), time.perf_counter() - started, seconds_by_fn,
                                 [t.fn for t in (*pending, *running.values())], capacity(client)["tasks"])
                log(f"done   {task.name} ({state['seconds']:.0f} s) {count}" if state["status"] == "done"
                    else f"FAILED {task.name}: {state['error']} {count}")
    return states
