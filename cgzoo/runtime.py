"""Process-level settings for cgzoo's command-line entry points (never applied on library import).

Large autograd graphs allocate and free tensors of tens of MB at every step. glibc serves
blocks above its mmap threshold with fresh pages and trims freed heap memory back to the OS,
so every step pays page faults again; on the VM we measured, force evaluations of large graphs
became super-linear in size (compare the two throughput runs in experiments/benchmarks/RESULTS.md). Raising the mmap threshold to
its maximum (32 MB) and disabling trimming keeps freed memory for reuse, at the price of the
process keeping its peak memory until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def tune_allocator() -> bool:
    """Keep freed memory for reuse (glibc only); returns whether the settings were applied.

    Also asks PyTorch for transparent huge pages on large CPU tensors (``THP_MEM_ALLOC_ENABLE``,
    read when torch first allocates), which cuts the page faults of blocks above 32 MB.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    if platform.system() != "Linux":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
        return ok and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
