"""Progress bars of cgzoo's long loops: MD and reference runs, mapping, prior fits, ``cgzoo evaluate``.

One rule for all of them, :func:`progress_bar`: ``show=None`` draws the bar only when stderr is a
terminal (a log file or a pipe gets no carriage-return lines), ``True`` draws it anyway (asked
for), ``False`` never (``--quiet``, library callers such as the study's workers). A tqdm bar shows
the count, the total and the rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str, unit: str,
                 show: bool | None = None, initial: int = 0) -> tqdm:
    """A tqdm bar over ``iterable`` (or updated by hand, from ``initial`` on a resumed run), drawn as ``show`` says
    (module docstring)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial,
                disable=None if show is None else not show, dynamic_ncols=True)
