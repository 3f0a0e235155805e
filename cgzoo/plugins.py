"""Import a user's class by dotted path, checked against the base class its registry expects.

Both registries (priors and networks) accept ``package.module.Class`` wherever a registered name
is accepted; this is the one place that resolves such a path and explains what went wrong.
"""

from __future__ import annotations

import importlib
import inspect


def import_subclass(path: str, base: type, kind: str, known: list[str]) -> type:
    """The class at dotted ``path``, which must subclass ``base``; ``ValueError`` naming ``kind`` otherwise."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"unknown {kind} {path!r}: not one of {sorted(known)} and not an import path")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {kind} {path!r}: {exc}") from None
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise ValueError(f"{path!r} is not a subclass of {base.__module__.rsplit('.', 1)[0]}.{base.__name__}")
    return cls
