"""Safe outputs: one writer per output path, and outputs that appear under their final name only when complete.

Every cgzoo command that writes a file or directory goes through this module:

- :func:`output_lock` takes an exclusive OS lock (``filelock``; ``flock`` on POSIX, released by the
  kernel when the process dies, so a killed run never leaves a stale lock) on a hidden sibling
  ``.<name>.lock``; a second writer gets a one-line :class:`OutputLocked` instead of interleaving (or waits its
  turn, where any one of several processes may fill the output, as a shared cache entry).
- :func:`atomic_file` / :func:`atomic_dir` hand out a per-process temporary sibling
  (``.<name>.tmp-<pid>-<random>``) and rename it onto the final name only after the body finished
  without error; on error the temporary is removed. Temporaries left by a killed process are removed
  by the next writer that holds the lock (no one else can be writing them then).

Locks are re-entrant within a process (one ``FileLock`` per path), so a library function that locks
its output can call another that locks the same path.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from cgzoo.errors import CGZooError, InputError, check_output_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_TMP_MARK = ".tmp-"


class OutputLocked(CGZooError):
    """Another process is writing the same output."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path}: another cgzoo process is writing this output; wait for it to finish "
                         "or choose another output path")


def lock_path(path: str | Path) -> Path:
    """The hidden lock file that guards ``path``."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextmanager
def output_lock(path: str | Path, wait: bool = False) -> Iterator[Path]:
    """Hold the exclusive writer lock of ``path`` for the body; :class:`OutputLocked` if another process has it, or,
    with ``wait``, once that process has released it (for an output any one of several processes may write, such as a
    shared cache entry)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # a folder we cannot write to is the user's problem to hear about, not "another process"
        os.close(os.open(lock_path(path), os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError as exc:
        raise InputError(path, f"cannot write here ({exc.strerror or exc})") from None
    lock = FileLock(lock_path(path), timeout=-1 if wait else 0, is_singleton=True)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLocked(path) from None
    try:
        yield path
    finally:
        lock.release()


def temp_sibling(path: str | Path) -> Path:
    """A fresh per-process temporary name next to ``path`` (same filesystem, so the final rename is atomic)."""
    path = Path(path)
    return path.parent / f".{path.name}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"


def remove_stale_temporaries(path: str | Path) -> None:
    """Delete temporaries of ``path`` left by killed writers; call only while holding its lock."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}{_TMP_MARK}*"):
        _remove(stale)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace_path(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` onto ``final``; a directory being replaced is moved aside first, then deleted."""
    if final.is_dir() and not final.is_symlink():
        old = temp_sibling(final)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def replace_file(path: str | Path, write_to: Callable[[Path], None], sync: bool = False) -> Path:
    """Write ``path`` through ``write_to`` on a per-process temporary sibling renamed onto it when complete.

    A crash leaves the old file or the new one, never a torn one; ``sync`` flushes the new file to disk
    before the rename (for files a resume depends on). The caller holds the output's lock when other
    processes might write ``path`` too.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        write_to(tmp)
        if sync:
            descriptor = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        replace_path(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename (:func:`replace_file`)."""
    raw = data.encode() if isinstance(data, str) else data
    return replace_file(path, lambda tmp: tmp.write_bytes(raw), sync=True)


def save_figure(fig: "Figure", path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically (format from the suffix of ``path``)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return replace_file(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight"))


def write_json_atomic(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (non-JSON values as their ``str``)."""
    return write_atomic(path, json.dumps(obj, indent=1, default=str) + "\n")


@contextmanager
def _atomic_output(path: str | Path, overwrite: bool, check: Callable[[Path], None], directory: bool) -> Iterator[Path]:
    """Lock ``path``, run ``check`` on it, and yield a fresh temporary (a directory if ``directory``) that
    replaces ``path`` only if the body succeeds; the checks are repeated under the lock, since a writer
    may have finished just before it was taken."""
    path = check_output_path(path, overwrite)
    check(path)
    with output_lock(path):
        check_output_path(path, overwrite)
        check(path)
        remove_stale_temporaries(path)
        tmp = temp_sibling(path)
        if directory:
            tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            _remove(tmp)
            raise
        replace_path(tmp, path)


@contextmanager
def atomic_file(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Lock ``path`` and yield a temporary file name to write; it becomes ``path`` only if the body succeeds."""
    with _atomic_output(path, overwrite, lambda _: None, directory=False) as tmp:
        yield tmp


def check_owned_dir(path: Path, marker: str, what: str) -> None:
    """Refuse to replace an existing directory unless it is empty or holds ``marker`` (written by the same command).

    ``--overwrite`` replaces a previous output, never a folder of the user's that happens to have its name.
    """
    if path.exists() and not path.is_dir():
        raise InputError(path, f"exists and is not a directory; a {what} is a directory")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise InputError(path, f"is not a cgzoo {what} (it has no {marker}), so --overwrite will not delete it; "
                               "choose another output path")


@contextmanager
def atomic_dir(path: str | Path, overwrite: bool, marker: str, what: str) -> Iterator[Path]:
    """Lock ``path`` and yield an empty temporary directory; it replaces ``path`` only if the body succeeds.

    ``marker`` is a file every complete output holds (``prior.json`` for a fitted prior): an existing
    directory without it is not replaced even with ``overwrite``; ``what`` names the output in errors.
    """
    with _atomic_output(path, overwrite, lambda p: check_owned_dir(p, marker, what), directory=True) as tmp:
        yield tmp
