"""Exceptions cgzoo raises for bad input, so the CLI can print one clear line instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class CGZooError(Exception):
    """Base class for every error cgzoo reports to the user as a one-line message.

    Every subclass pickles whatever its constructor (the study raises them in Dask worker processes,
    and its coordinator unpickles them to record the error): the message and attributes are restored
    without calling ``__init__`` again.
    """

    def __reduce__(self) -> tuple[Any, tuple[type, tuple[Any, ...], dict[str, Any]]]:
        return _rebuild_error, (type(self), self.args, self.__dict__)


def _rebuild_error(cls: type[CGZooError], args: tuple[Any, ...], state: dict[str, Any]) -> CGZooError:
    """Unpickle a :class:`CGZooError` subclass from its message arguments and attributes."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InputError(CGZooError):
    """A file or argument is unusable; the message names the file and the problem."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class MappingError(InputError):
    """A mapping file is inconsistent with itself or with the atomistic topology."""


class FitError(CGZooError, ValueError):
    """A prior could not be fitted; the message names the term."""


class OutputExistsError(CGZooError):
    """An output path exists and the caller did not ask to overwrite it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path}: output already exists (pass --overwrite to replace it)")


def check_output_path(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing output path unless ``overwrite``; return it as a ``Path``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    return path
