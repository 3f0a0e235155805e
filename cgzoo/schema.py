"""Typed schemas' shared parts: reading an input file, a strict model base, and the one place that turns
pydantic's validation errors into cgzoo's one-line :class:`~cgzoo.errors.InputError`.

Each input format declares its own models next to its reader (prior spec in :mod:`cgzoo.fitting.spec`,
study file in :mod:`cgzoo.study.config`, mapping in :mod:`cgzoo.mapping.spec`) on :class:`Strict`,
and validates with :func:`validate`, so every bad key or value reads
``FILE: key.path: problem (got VALUE)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from cgzoo.errors import InputError

M = TypeVar("M", bound=BaseModel)
#: Shorter wording of pydantic's error types; the rest are worded from pydantic's message.
MESSAGES = {
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
}


class Strict(BaseModel):
    """Base of every input-file model: unknown keys are errors (listing the allowed ones), no silent coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        """Reject unknown keys up front so the message can list the allowed ones (typos are common)."""
        if isinstance(data, dict):
            unknown = [shown(k) for k in data if k not in cls.model_fields]
            if unknown:
                raise ValueError(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(cls.model_fields)})")
        return data


def read_text(path: str | Path, what: str, error: type[InputError] = InputError) -> str:
    """The text of input file ``path`` (a ``what``); a one-line error if it is missing, a directory or unreadable."""
    path = Path(path)
    if not path.exists():
        raise error(path, f"{what} does not exist")
    if path.is_dir():
        raise error(path, f"{what} is a directory, not a file")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(path, f"cannot read {what}: {exc}") from None


class NumberLoader(yaml.SafeLoader):
    """The safe loader, reading ``1e-3`` as a number as YAML 1.2 does (PyYAML's YAML 1.1 rules want ``1.0e-3``)."""


NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, path: str | Path, loader: type = NumberLoader,
               error: type[InputError] = InputError) -> Any:
    """``text`` parsed with ``loader`` (safe: no tags run code); any parse failure is a one-line error."""
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(path, f"not valid YAML{line}: {detail}") from None
    except (ValueError, OverflowError) as exc:  # e.g. an impossible date such as 2001-13-45
        raise error(path, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise error(path, "not valid YAML: nested too deeply") from None


def read_yaml_file(path: str | Path, what: str, error: type[InputError] = InputError) -> Any:
    """The parsed YAML file ``path`` (a ``what``, named in the errors)."""
    return parse_yaml(read_text(path, what, error), path, error=error)


def validate(model: type[M], data: Any, path: str | Path, error: type[InputError] = InputError) -> M:
    """``data`` validated as ``model``; its most specific problem becomes one ``error`` naming ``path`` and the key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        first = max(problems, key=lambda p: len(p["loc"]))  # the most specific (a union reports every branch)
        where = key_path(first["loc"], data)
        others = {key_path(p["loc"], data) for p in problems}
        others = {k for k in others if not where.startswith(k)}  # a union's other branches are no more problems
        more = f" (and {len(others)} more problem(s))" if others else ""
        raise error(path, describe(first, data) + more) from None


def describe(problem: dict[str, Any], data: Any) -> str:
    """``key.path: problem (got VALUE)`` for one pydantic error dict; ``data`` resolves the key path."""
    kind = problem["type"]
    if kind == "missing":
        *parent, key = problem["loc"]
        where = key_path(tuple(parent), data)
        return f"{where + '.' if where else ''}{key}: required key is missing"
    where = key_path(problem["loc"], data)
    message = MESSAGES[kind].format(**problem.get("ctx", {})) if kind in MESSAGES else problem["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "must be").replace("greater than or equal to", ">=")
    message = message.replace("greater than", ">").replace("less than or equal to", "<=").replace("less than", "<")
    got = problem.get("input")
    if not isinstance(got, dict):  # a whole mapping is no help in one line
        text = repr(got)
        message += f" (got {text if len(text) <= 40 else text[:37] + '...'})"
    return f"{where}: {message}" if where else message


def key_path(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic location as ``a.b[0].c`` following ``data``: list items are shown by their
    ``name`` where they have one, and location parts that are not keys of the data (union tags) are dropped."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node = node[item]
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(f"[{shown(name)}]" if isinstance(name, (str, int)) and not isinstance(name, bool) else f"[{item}]")
        elif isinstance(node, dict) and item in node:
            node = node[item]
            parts.append(f".{shown(item)}" if parts else shown(item))
    return "".join(parts)


def shown(key: Any) -> str:
    """A key or name from a file as message text: itself, or its ``repr`` if it holds line breaks or control characters."""
    text = str(key)
    return text if text.isprintable() else repr(text)
