"""What a LAMMPS run of an exported script reports in its log: thermo rows, processor grid, timings, memory, warnings.

``lmp`` and ``mpirun -np N lmp`` write the same ``log.lammps`` (rank 0 writes it); this reads the
figures cgzoo checks and benchmarks from it, so the MPI tests and the scaling benchmark share one reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cgzoo.errors import InputError

_GRID = re.compile(r"^\s*(\d+) by (\d+) by (\d+) MPI processor grid", re.MULTILINE)
_LOOP = re.compile(r"^Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms", re.MULTILINE)
_MEMORY = re.compile(r"^Per MPI rank memory allocation \(min/avg/max\) = (\S+) \| (\S+) \| (\S+) Mbytes", re.MULTILINE)
_CPU = re.compile(r"^(\S+)% CPU use with (\d+) MPI tasks x (\d+) OpenMP threads", re.MULTILINE)
_SECTION = re.compile(r"^(\w+)\s*\|\s*\S*\s*\|\s*(\S+)\s*\|.*\|\s*(\S+)\s*$")
_DANGEROUS = re.compile(r"^Dangerous builds = (\d+)", re.MULTILINE)


@dataclass
class LammpsLog:
    """The figures of a LAMMPS log (the last ``run`` of it where a script has several)."""

    #: thermo columns by LAMMPS' header names (``Step``, ``PotEng``, ``KinEng``, ``TotEng``, …), one value per row
    thermo: dict[str, np.ndarray]
    #: MPI processor grid (px, py, pz) LAMMPS decomposed the box into
    grid: tuple[int, int, int]
    #: lines starting with ``WARNING``, in order
    warnings: list[str]
    loop_time_s: float | None = None
    ranks: int | None = None
    threads: int | None = None
    steps: int | None = None
    atoms: int | None = None
    #: ``Per MPI rank memory allocation`` (min, avg, max), MB
    memory_mb: tuple[float, float, float] | None = None
    #: ``% CPU use``: the loop's CPU time over its wall time × ranks × threads, in %
    cpu_use_percent: float | None = None
    #: the ``MPI task timing breakdown``: section (Pair, Bond, Neigh, Comm, …) → (average s, % of the loop)
    sections: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: neighbour lists rebuilt after an atom may already have moved past half the skin (LAMMPS' ``Dangerous builds``)
    dangerous_builds: int | None = None


def read_log(path: Path) -> LammpsLog:
    """The :class:`LammpsLog` of the log file ``path``; :class:`InputError` when it has no processor grid (LAMMPS
    stopped before it set up a box)."""
    text = Path(path).read_text()
    grid = _GRID.search(text)
    if grid is None:
        raise InputError(path, "has no 'MPI processor grid' line: not the log of a LAMMPS run that read its box")
    log = LammpsLog(thermo=_thermo(text), grid=tuple(int(g) for g in grid.groups()),
                    warnings=[line for line in text.splitlines() if line.startswith("WARNING")])
    if loop := _last(_LOOP, text):
        log.loop_time_s, log.ranks, log.steps, log.atoms = float(loop[0]), int(loop[1]), int(loop[2]), int(loop[3])
    if memory := _last(_MEMORY, text):
        log.memory_mb = tuple(float(m) for m in memory)
    if cpu := _last(_CPU, text):
        log.cpu_use_percent, log.threads = float(cpu[0]), int(cpu[2])
    if dangerous := _last(_DANGEROUS, text):
        log.dangerous_builds = int(dangerous[0])
    breakdown = text.rpartition("MPI task timing breakdown:")[2].split("\n\n")[0] if log.loop_time_s is not None else ""
    for line in breakdown.splitlines():
        if (m := _SECTION.match(line)) and m[1] != "Section":
            log.sections[m[1]] = (float(m[2]), float(m[3]))
    return log


def _last(pattern: re.Pattern, text: str) -> tuple[str, ...] | None:
    matches = pattern.findall(text)
    return matches[-1] if matches else None


def _thermo(text: str) -> dict[str, np.ndarray]:
    """The last thermo block: the ``Step …`` header and the rows of as many numbers below it, up to ``Loop time``
    (other lines there, warnings, are skipped)."""
    header: list[str] = []
    rows: list[list[float]] = []
    inside = False
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            header, rows, inside = words, [], True
        elif line.startswith("Loop time"):
            inside = False
        elif inside and len(words) == len(header) and _numbers(words):
            rows.append([float(w) for w in words])
    return {name: np.array([row[k] for row in rows]) for k, name in enumerate(header)}


def _numbers(words: list[str]) -> bool:
    try:
        [float(w) for w in words]
    except ValueError:
        return False
    return True
