"""Tabulated priors from other tools' table files (LAMMPS, GROMACS, VOTCA), read through :mod:`cgzoo.tables`."""

from __future__ import annotations

from typing import Any

from cgzoo.priors.tabulated import Tabulated
from cgzoo.tables import PotentialTable, read_tables, tabulated_grids


def prior_from_tables(tables: list[PotentialTable], type_names: list[str], kind: str, **kwargs: Any) -> Tabulated:
    """A :class:`Tabulated` prior of ``kind`` from ``tables`` (see :func:`~cgzoo.tables.tabulated_grids`).

    ``kwargs`` go to :class:`Tabulated` (``exclude``, ``intramolecular``, ``wall``, ``min_wall_force``).
    """
    return Tabulated(type_names, kind, tabulated_grids(tables, kind), **kwargs)


class TableFile(Tabulated):
    """A tabulated prior read from another tool's table file(s), so a config can reference them by path.

    ``init_args``: ``path`` (a LAMMPS file, or a GROMACS/VOTCA file or directory), ``kind``,
    optional ``fmt`` and ``key`` (see :func:`~cgzoo.tables.read_tables`), ``read_options`` for the
    reader, and :class:`Tabulated`'s own options. Once read, it describes itself as an inline
    ``tabulated`` prior, so checkpoints do not depend on the file staying where it was.
    """

    spec_name = "tabulated"

    def __init__(self, type_names: list[str], path: str, kind: str, fmt: str | None = None, key: str | None = None,
                 read_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        tables = read_tables(path, kind, fmt=fmt, key=key, **(read_options or {}))
        built = prior_from_tables(tables, type_names, kind, **kwargs)
        super().__init__(type_names, kind, {k: dict(zip(("x", "u", "du"), (a.tolist() for a in built.grid(k))))
                                            for k in built.keys}, **kwargs)
