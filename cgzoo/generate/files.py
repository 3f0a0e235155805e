"""Crash-safe appends and truncation the generator relies on to resume (atomic writes: :mod:`cgzoo.outputs`)."""

from __future__ import annotations

import os
from pathlib import Path


def append_file(target: Path, source: Path) -> int:
    """Append the bytes of ``source`` to ``target``, flush them to disk, and return ``target``'s new size in bytes."""
    with open(target, "ab") as out, open(source, "rb") as src:
        out.write(src.read())
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def append_text(target: Path, text: str) -> int:
    """Append ``text`` to ``target``, flush it to disk, and return ``target``'s new size in bytes."""
    with open(target, "ab") as out:
        out.write(text.encode())
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def truncate_to(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (dropping what a killed run appended after its last checkpoint)."""
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as fh:
            fh.truncate(size)
