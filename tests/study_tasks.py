"""Task bodies for the Dask runner tests, importable by the worker processes (the ``tests`` directory is on the path
they inherit): one that returns what its worker sees, and two that kill their own worker process (SIGKILL)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def report(out: Path, value: int) -> dict[str, object]:
    """The value, the worker's process id, its torch thread count and its OMP_NUM_THREADS."""
    import torch

    print(f"report {value}")
    return {"value": value, "pid": os.getpid(), "torch_threads": torch.get_num_threads(),
            "omp": os.environ.get("OMP_NUM_THREADS")}


def die_once(out: Path, value: int) -> dict[str, object]:
    """Kills its worker on the first attempt (leaving ``out/attempted``); returns ``value`` on the next."""
    marker = out / "attempted"
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"value": value, "attempts": 2}


def always_die(out: Path) -> dict[str, object]:
    """Kills its worker on every attempt, counting them in ``out/attempts``."""
    attempts = out / "attempts"
    attempts.write_text(str(int(attempts.read_text()) + 1 if attempts.exists() else 1))
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
