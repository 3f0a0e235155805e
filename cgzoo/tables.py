"""Potential tables of :class:`~cgzoo.priors.tabulated.Tabulated` priors in LAMMPS, GROMACS and VOTCA formats.

The neutral in-memory form is :class:`PotentialTable` in cgzoo units (x in Å for pairs and bonds,
radians for angles and dihedrals; U in kcal/mol; F = −dU/dx). Writers take a :class:`TableSource`
(a ``Tabulated`` prior), because engines want grids the prior's own table may not cover, which
are then filled from its ``evaluate`` (extrapolation included); readers return tables, and
:func:`tabulated_grids` gives the grids :func:`cgzoo.priors.table_file.prior_from_tables` builds a
prior from. The module knows the priors only through that protocol, so it imports neither them
nor torch. Dihedral tables read from any format
hold the whole period (last x = first x + 2π), as :class:`Tabulated` wants. All three engines
and cgzoo measure dihedrals alike (IUPAC: 0 = cis, ±180° = trans).

**LAMMPS** (``pair_style``/``bond_style``/``angle_style``/``dihedral_style table``; ``units real``):
one file, one section per type key (the key is the section keyword), explicit points ``i x E F``.
Pairs and bonds: x = r in Å, F = −dE/dr in kcal/mol/Å, the prior's own grid (LAMMPS stops with an
error outside it). Angles: θ in degrees on 0…180 (LAMMPS requires exactly that range) and
F = −dE/dθ in kcal/mol **per degree**: the angle_style table documentation defines the last
column as the derivative with respect to the angle in degrees, and LAMMPS multiplies it by 180/π
when it converts θ to radians. Dihedrals: ``DEGREES``, φ in degrees over one period without
its repeated end (LAMMPS requires a span < 360°), F = −dE/dφ in kcal/mol per degree. Angle
tables are resampled in steps of at most 0.1°; bond and angle sections carry ``EQ`` (the table's
minimum, used by ``fix shake``); :func:`lammps_input` gives the matching style, coeff and
``special_bonds`` lines (cgzoo's ``exclude`` = n bonds). The reader understands
``N``, pair ``R`` and ``FPRIME``, bond/angle ``FP`` and ``EQ``, dihedral ``NOF``, ``DEGREES``,
``RADIANS``, ``CHECKU``/``CHECKF``; pair ``RSQ`` and ``BITMAP`` grids raise :class:`InputError`.

**GROMACS** (``.xvg``; nm, kJ/mol, angles in degrees): non-bonded user tables ``table_A_B.xvg``
with columns ``r f −f′ g −g′ h −h′`` (V = qq·f + C6·g + C12·h) from r = 0 in steps of ``spacing_nm``
(0.002 nm; 0.0005 for double-precision mdrun) to the prior's cutoff + ``table_extension_nm``.
The CG potential goes in **h** (−h′ = force in kJ/mol/nm): give the bead types C6 = 0 and
C12 = 1 (``[ defaults ]`` combination rule 1) and zero charges, since f and g are written as 0.
Such tables need ``cutoff-scheme = group``, ``vdwtype = user`` and ``energygrp-table``, i.e.
GROMACS 2019 or older: the Verlet scheme (the only one since 2020) does not support user
non-bonded tables. Bonded tables (``table_b<n>.xvg``, ``table_a<n>.xvg``, ``table_d<n>.xvg``,
n = the key's position in the prior; topology function type 8 with table number n) have columns
``x V −V′``: bonds r in nm from 0 (required) to the prior's table end, −dV/dr in kJ/mol/nm; angles
θ in degrees on 0…180 and dihedrals φ in degrees on −180…180 (ranges GROMACS checks exactly),
with −dV/dθ in kJ/mol **per degree** (mdrun's force check differentiates per tabulated degree and
it multiplies the column by 180/π when converting to radians). Bond, angle and dihedral tables are
resampled no coarser than ``spacing_nm`` or 0.1°. Where a table reaches below the prior's grid
down to r = 0, the leading rows whose U exceeds ``cap_kj_mol`` (10⁵ kJ/mol, ≈ 4·10⁴ kT at 300 K)
continue U linearly with the force of the first row at or below the cap: every value is finite
(≈ 10⁶ kJ/mol at r = 0 for cgzoo's r⁻¹² core) and −V′ stays the derivative of V. Each file names
its key in a ``# cgzoo key: …`` comment. cgzoo's ``exclude`` = n bonds is ``nrexcl`` = n (``intramolecular=False`` has no such equivalent).

**VOTCA** (``.pot``): columns ``x U flag``, flag ``i`` (inside the sampled range), ``o`` (outside) or
``u`` (undefined); ``units="gromacs"`` (nm, kJ/mol; the default) or ``"lammps"`` (Å, kcal/mol);
angles and dihedrals in radians either way. Written on the prior's grid, every row ``i``. The
reader accepts ``x U``, ``x U flag`` and ``x U error flag`` rows, drops ``u`` rows at either end,
refuses ``u`` rows inside the table, and takes F from a cubic spline through U (periodic for
dihedrals; its derivative at the points makes the cubic Hermite table equal that spline).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.interpolate import CubicHermiteSpline, CubicSpline

from cgzoo import __version__
from cgzoo.errors import InputError, check_output_path
from cgzoo.terms import KINDS
from cgzoo.units import ANGSTROM_TO_NM, KCAL_MOL_TO_KJ_MOL, RAD_TO_DEG

FORMATS = {".table": "lammps", ".xvg": "gromacs", ".pot": "votca"}
#: VOTCA unit sets: (length factor from Å, energy factor from kcal/mol).
VOTCA_UNITS = {"gromacs": (ANGSTROM_TO_NM, KCAL_MOL_TO_KJ_MOL), "lammps": (1.0, 1.0)}
#: Options allowed on a LAMMPS section's N line, with how many values each takes.
LAMMPS_OPTIONS = {
    "pair": {"N": 1, "R": 2, "FPRIME": 2},
    "bond": {"N": 1, "FP": 2, "EQ": 1},
    "angle": {"N": 1, "FP": 2, "EQ": 1},
    "dihedral": {"N": 1, "NOF": 0, "DEGREES": 0, "RADIANS": 0, "CHECKU": 1, "CHECKF": 1},
}
GROMACS_BONDED = {"bond": "b", "angle": "a", "dihedral": "d"}
#: Largest step (0.1°, in radians) of angle tables resampled onto an engine's fixed range.
ANGLE_STEP = math.radians(0.1)
TWO_PI = 2.0 * math.pi


class TableSource(Protocol):
    """What the writers need of a tabulated prior (:class:`~cgzoo.priors.tabulated.Tabulated`), named without importing it."""

    kind: str
    keys: list[str]
    exclude: int
    intramolecular: bool

    def grid(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Table ``key``'s own grid: x, U and dU/dx."""

    def evaluate(self, key: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """U and F = −dU/dx of table ``key`` at ``x``, extrapolation included."""


@dataclass
class PotentialTable:
    """One tabulated potential in cgzoo units: x (Å or rad), u (kcal/mol), f = −dU/dx."""

    x: np.ndarray
    u: np.ndarray
    f: np.ndarray
    kind: str
    key: str


# -- conversion to and from priors ------------------------------------------------------------


def sample_prior(prior: TableSource, key: str, x: np.ndarray) -> PotentialTable:
    """Table ``key`` of ``prior`` evaluated at ``x`` (cgzoo units), extrapolation included."""
    x = np.asarray(x, dtype=np.float64)
    u, f = prior.evaluate(key, x)
    return PotentialTable(x, u, f, prior.kind, key)


def tables_from_prior(prior: TableSource) -> list[PotentialTable]:
    """Every table of ``prior`` on its own grid."""
    return [_native(prior, key) for key in prior.keys]


def tabulated_grids(tables: list[PotentialTable], kind: str) -> dict[str, dict[str, np.ndarray]]:
    """``Tabulated``'s ``{key: {"x", "u", "du"}}`` grids of ``kind`` from ``tables``, resampled to uniform grids where needed.

    Pair tables lose rows at r ≤ 0 and trailing all-zero rows but one.
    """
    grids: dict[str, dict[str, np.ndarray]] = {}
    for table in tables:
        if table.kind != kind:
            raise ValueError(f"tables: table {table.key} is a {table.kind} table, not {kind}")
        if table.key in grids:
            raise ValueError(f"tables: two tables for {table.key}")
        grids[table.key] = _uniform(_trimmed(table) if kind == "pair" else table)
    return grids


def _native(prior: TableSource, key: str) -> PotentialTable:
    """Table ``key`` on the prior's own grid, with its stored derivative."""
    x, u, du = prior.grid(key)
    return PotentialTable(x, u, -du, prior.kind, key)


def _spanning(prior: TableSource, key: str, lo: float, hi: float, step: float) -> PotentialTable:
    """Table ``key`` sampled uniformly on [lo, hi], no coarser than ``step`` or the prior's own spacing."""
    x = prior.grid(key)[0]
    steps = math.ceil((hi - lo) / min(step, x[1] - x[0]) - 1e-9)
    return sample_prior(prior, key, np.linspace(lo, hi, steps + 1))


def _trimmed(table: PotentialTable) -> PotentialTable:
    """A pair table without rows at r ≤ 0 and with one all-zero row left at its end."""
    keep = table.x > 0
    x, u, f = table.x[keep], table.u[keep], table.f[keep]
    nonzero = np.flatnonzero((u != 0) | (f != 0))
    end = min(int(nonzero[-1]) + 2, len(x)) if len(nonzero) else len(x)
    return replace(table, x=x[:end], u=u[:end], f=f[:end])


def _uniform(table: PotentialTable) -> dict[str, np.ndarray]:
    """``Tabulated``'s ``{"x", "u", "du"}`` of ``table``, Hermite-resampled if its grid is not uniform."""
    x, u, f = table.x, table.u, table.f
    step = np.diff(x)
    if len(x) > 2 and not np.allclose(step, step[0], rtol=1e-6, atol=1e-9):
        spline = CubicHermiteSpline(x, u, -f)
        x = np.linspace(x[0], x[-1], len(x))
        u, f = spline(x), -spline(x, 1)
    return {"x": x, "u": u, "du": -f}


# -- shared reading helpers -------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    """The lines of ``path``; :class:`InputError` if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read table file ({exc})") from None


def _data_lines(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, words) of each line with content, ``#`` comments and ``@`` (xmgrace) lines skipped."""
    rows = []
    for number, line in enumerate(lines, start=1):
        words = line.split("#", 1)[0].split()
        if words and not words[0].startswith("@"):
            rows.append((number, words))
    return rows


def _floats(path: Path, number: int, words: list[str], width: int) -> list[float]:
    """The ``width`` finite numbers on line ``number``; :class:`InputError` otherwise."""
    if len(words) != width:
        raise InputError(path, f"line {number}: expected {width} columns, found {len(words)}")
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise InputError(path, f"line {number}: non-numeric value in {' '.join(words)!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError(path, f"line {number}: NaN or infinite value in {' '.join(words)!r}")
    return values


def _table(path: Path, x: np.ndarray, u: np.ndarray, f: np.ndarray | None, kind: str, key: str) -> PotentialTable:
    """A checked table from cgzoo-unit columns: increasing x, dihedrals closed, F from a spline if absent."""
    if len(x) < 2:
        raise InputError(path, f"table {key}: needs at least 2 rows, found {len(x)}")
    if np.any(np.diff(x) <= 0):
        raise InputError(path, f"table {key}: x values are not increasing")
    if kind == "dihedral":
        x, u, f = _closed_period(path, key, x, u, f)
    if f is None:
        f = _spline_force(path, key, x, u, periodic=kind == "dihedral")
    return PotentialTable(x, u, f, kind, key)


def _closed_period(path: Path, key: str, x: np.ndarray, u: np.ndarray,
                   f: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A dihedral table extended by its first row at x₀ + 2π unless it already spans 2π."""
    span = x[-1] - x[0]
    if math.isclose(span, TWO_PI, rel_tol=1e-4):
        return x, u, f
    if span > TWO_PI:
        raise InputError(path, f"dihedral table {key} spans {math.degrees(span):.4g}°, more than one period")
    return np.append(x, x[0] + TWO_PI), np.append(u, u[0]), None if f is None else np.append(f, f[0])


def _spline_force(path: Path, key: str, x: np.ndarray, u: np.ndarray, periodic: bool) -> np.ndarray:
    """−dU/dx from a cubic spline through U (periodic: the ends must agree)."""
    if periodic:
        if abs(u[-1] - u[0]) > 1e-5 * (np.ptp(u) + 1e-4):
            raise InputError(path, f"dihedral table {key}: U differs at the two ends of the period "
                                   f"({u[0]:.6g} vs {u[-1]:.6g})")
        u = np.append(u[:-1], u[0])
    return -CubicSpline(x, u, bc_type="periodic" if periodic else "not-a-knot")(x, 1)


def _to_file(table: PotentialTable, x_scale: float, u_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, U, F) of ``table`` in a file's units, given that file's x and U factors from cgzoo units."""
    return table.x * x_scale, table.u * u_scale, table.f * (u_scale / x_scale)


def _from_file(x: np.ndarray, u: np.ndarray, f: np.ndarray | None, x_scale: float,
               u_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, U, F) in cgzoo units from a file's columns and that file's factors from cgzoo units."""
    return x / x_scale, u / u_scale, None if f is None else f * (x_scale / u_scale)


def _angular(kind: str) -> bool:
    """Whether ``kind``'s coordinate is an angle."""
    return kind in ("angle", "dihedral")


def _header(prior_kind: str, what: str) -> str:
    """A comment line naming cgzoo, the table kind and ``what`` the columns hold."""
    return f"# written by cgzoo {__version__} from a Tabulated {prior_kind} prior; {what}"


def _written(path: Path, text: str, overwrite: bool) -> Path:
    """Write ``text`` to ``path`` (refusing to replace it unless ``overwrite``)."""
    path = check_output_path(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _row(*values: float) -> str:
    """One table row, 12 significant digits per number."""
    return " ".join(f"{v + 0.0:.12g}" for v in values)


# -- LAMMPS -----------------------------------------------------------------------------------

LAMMPS_COLUMNS = {
    "pair": "units real: r (Angstrom), E (kcal/mol), F = -dE/dr (kcal/mol/Angstrom)",
    "bond": "units real: r (Angstrom), E (kcal/mol), F = -dE/dr (kcal/mol/Angstrom)",
    "angle": "units real: theta (degrees), E (kcal/mol), F = -dE/dtheta (kcal/mol per degree)",
    "dihedral": "units real: phi (degrees), E (kcal/mol), F = -dE/dphi (kcal/mol per degree)",
}


def _lammps_table(prior: TableSource, key: str) -> PotentialTable:
    """Table ``key`` on the grid LAMMPS gets: own grid; angles 0…π; dihedrals without the repeated end."""
    if prior.kind == "angle":
        return _spanning(prior, key, 0.0, math.pi, ANGLE_STEP)
    table = _native(prior, key)
    if prior.kind == "dihedral":
        return replace(table, x=table.x[:-1], u=table.u[:-1], f=table.f[:-1])
    return table


def _lammps_section(table: PotentialTable) -> str:
    """One LAMMPS table section: keyword, N line, blank line, rows."""
    if not table.key or any(c.isspace() or c == "#" for c in table.key):
        raise ValueError(f"LAMMPS tables: key {table.key!r} cannot be a section keyword")
    x, u, f = _to_file(table, RAD_TO_DEG if _angular(table.kind) else 1.0, 1.0)
    params = f"N {len(x)}"
    if table.kind in ("bond", "angle"):
        params += f" EQ {x[int(np.argmin(u))]:.12g}"
    if table.kind == "dihedral":
        params += " DEGREES"
    rows = [_row(i, *v) for i, v in enumerate(zip(x, u, f), start=1)]
    return "\n".join([table.key, params, "", *rows, ""])


def write_lammps(prior: TableSource, path: str | Path, overwrite: bool = False) -> Path:
    """Write every table of ``prior`` as sections of one LAMMPS ``*_style table`` file."""
    sections = [_lammps_section(_lammps_table(prior, key)) for key in prior.keys]
    header = _header(prior.kind, f"LAMMPS {prior.kind}_style table, " + LAMMPS_COLUMNS[prior.kind])
    return _written(Path(path), "\n".join([header, "", *sections]), overwrite)


def lammps_input(prior: TableSource, table_file: str, type_ids: dict[str, int] | None = None,
                 style: str = "linear") -> str:
    """LAMMPS input lines using ``write_lammps``'s file for ``prior``.

    ``type_ids``: bead type name → atom type for pairs (required); table key → bond/angle/dihedral
    type for bonded kinds (default 1, 2, … in the prior's key order).
    """
    tables = [_lammps_table(prior, key) for key in prior.keys]
    n_points = max(len(t.x) for t in tables)
    lines = ["# cgzoo tables need `units real`", f"{prior.kind}_style table {style} {n_points}"]
    if prior.kind == "pair":
        if type_ids is None:
            raise ValueError("lammps_input: pair tables need type_ids (bead type name -> LAMMPS atom type)")
        missing = {n for t in tables for n in t.key.split("-")} - set(type_ids)
        if missing:
            raise ValueError(f"lammps_input: no LAMMPS atom type for bead types {sorted(missing)}")
        for table in tables:
            i, j = sorted(type_ids[name] for name in table.key.split("-"))
            lines.append(f"pair_coeff {i} {j} {table_file} {table.key} {table.x[-1]:.12g}")
        lines.append(_special_bonds(prior))
        if not prior.intramolecular:
            lines.append("neigh_modify exclude molecule/intra all")
    else:
        ids = type_ids or {key: n for n, key in enumerate(prior.keys, start=1)}
        missing = set(prior.keys) - set(ids)
        if missing:
            raise ValueError(f"lammps_input: no LAMMPS {prior.kind} type for {sorted(missing)}")
        lines += [f"{prior.kind}_coeff {ids[t.key]} {table_file} {t.key}" for t in tables]
    return "\n".join(lines) + "\n"


def special_weights(exclude: int) -> list[float]:
    """LAMMPS ``special_bonds lj`` weights of 1-2, 1-3 and 1-4 pairs under cgzoo's ``exclude`` (n bonds)."""
    return [0.0 if separation <= exclude else 1.0 for separation in (1, 2, 3)]


def _special_bonds(prior: TableSource) -> str:
    """The ``special_bonds lj`` line matching the prior's bond-separation exclusions."""
    if prior.exclude > 3:
        return f"# cgzoo excludes pairs up to {prior.exclude} bonds apart; special_bonds reaches only 1-4"
    return "special_bonds lj " + " ".join(map(str, special_weights(prior.exclude)))


def read_lammps(path: str | Path, kind: str, key: str | None = None) -> list[PotentialTable]:
    """The sections of a LAMMPS ``kind`` table file (only section ``key`` if given) in cgzoo units."""
    path = Path(path)
    _check_kind(kind)
    items = _data_lines(_lines(path))
    tables, at = [], 0
    while at < len(items):
        table, at = _lammps_read_section(path, kind, items, at)
        tables.append(table)
    if not tables:
        raise InputError(path, "no table sections")
    if key is None:
        return tables
    chosen = [t for t in tables if t.key == key]
    if not chosen:
        raise InputError(path, f"no section {key!r} (sections: {', '.join(t.key for t in tables)})")
    return chosen


def _lammps_read_section(path: Path, kind: str, items: list[tuple[int, list[str]]],
                         at: int) -> tuple[PotentialTable, int]:
    """The section whose keyword is ``items[at]``, and the index after it."""
    number, words = items[at]
    key = words[0]
    if at + 1 >= len(items) or "N" not in items[at + 1][1]:
        raise InputError(path, f"line {number}: section {key} has no N line after its keyword")
    params = _lammps_params(path, kind, key, *items[at + 1])
    count = params["N"]
    rows = items[at + 2: at + 2 + count]
    if len(rows) < count:
        raise InputError(path, f"section {key}: N is {count} but only {len(rows)} rows follow")
    width = 3 if "NOF" in params else 4
    values = np.array([_floats(path, n, w, width) for n, w in rows])
    x = np.linspace(*params["R"], count) if "R" in params else values[:, 1]
    angle_scale = 1.0 if "RADIANS" in params else RAD_TO_DEG
    columns = _from_file(x, values[:, 2], None if width == 3 else values[:, 3],
                         angle_scale if _angular(kind) else 1.0, 1.0)
    return _table(path, *columns, kind, key), at + 2 + count


def _lammps_params(path: Path, kind: str, key: str, number: int, words: list[str]) -> dict[str, Any]:
    """The options of a section's N line: ``N`` as int, ``R`` as (lo, hi), the rest as given."""
    allowed = LAMMPS_OPTIONS[kind]
    params: dict[str, Any] = {}
    at = 0
    while at < len(words):
        word = words[at]
        if word in ("RSQ", "BITMAP") and kind == "pair":
            raise InputError(path, f"line {number}: section {key}: {word} tables are not supported "
                                   "(write r explicitly or use R)")
        if word not in allowed:
            raise InputError(path, f"line {number}: section {key}: {word!r} is not a LAMMPS {kind} table option")
        values = words[at + 1: at + 1 + allowed[word]]
        if len(values) < allowed[word]:
            raise InputError(path, f"line {number}: section {key}: {word} needs {allowed[word]} value(s)")
        params[word] = values
        at += 1 + allowed[word]
    try:
        params["N"] = int(params["N"][0])
        if "R" in params:
            params["R"] = tuple(float(v) for v in params["R"])
    except ValueError:
        raise InputError(path, f"line {number}: section {key}: bad number in {' '.join(words)!r}") from None
    if params["N"] < 2:
        raise InputError(path, f"line {number}: section {key}: N must be at least 2")
    return params


# -- GROMACS ----------------------------------------------------------------------------------


def _gromacs_name(prior: TableSource, key: str) -> str:
    """The file name mdrun looks for: ``table_A_B.xvg`` or ``table_<b|a|d><n>.xvg``."""
    if prior.kind == "pair":
        return "table_" + key.replace("-", "_") + ".xvg"
    return f"table_{GROMACS_BONDED[prior.kind]}{prior.keys.index(key)}.xvg"


def _gromacs_table(prior: TableSource, key: str, spacing_nm: float, table_extension_nm: float) -> PotentialTable:
    """Table ``key`` on the grid GROMACS requires, in cgzoo units."""
    if prior.kind == "pair":
        length = prior.grid(key)[0][-1] * ANGSTROM_TO_NM + table_extension_nm
        r_nm = spacing_nm * np.arange(math.ceil(length / spacing_nm - 1e-9) + 1)
        return sample_prior(prior, key, r_nm / ANGSTROM_TO_NM)
    if prior.kind == "bond":
        return _spanning(prior, key, 0.0, prior.grid(key)[0][-1], spacing_nm / ANGSTROM_TO_NM)
    return _spanning(prior, key, 0.0 if prior.kind == "angle" else -math.pi, math.pi, ANGLE_STEP)


def _capped(table: PotentialTable, cap: float) -> PotentialTable:
    """Leading rows with U > ``cap`` replaced by a linear continuation of the first row at or below it."""
    over = table.u > cap
    if not over[0]:
        return table
    k = int(np.argmin(over))
    u, f = table.u.copy(), table.f.copy()
    u[:k] = u[k] + f[k] * (table.x[k] - table.x[:k])
    f[:k] = f[k]
    return replace(table, u=u, f=f)


def write_gromacs(prior: TableSource, directory: str | Path, spacing_nm: float = 0.002,
                  table_extension_nm: float = 1.0, cap_kj_mol: float = 1.0e5,
                  overwrite: bool = False) -> list[Path]:
    """Write one GROMACS ``.xvg`` table per key of ``prior`` into ``directory`` (see the module notes)."""
    names: dict[str, str] = {}
    for key in prior.keys:  # mdrun's table_A_B.xvg cannot tell A_B from A and B when a type name holds "_"
        name = _gromacs_name(prior, key)
        if name in names:
            raise InputError(Path(directory) / name, f"GROMACS names the tables of {names[name]} and {key} alike; "
                                                     "rename the bead types without '_' to export GROMACS tables")
        names[name] = key
    paths = []
    for key in prior.keys:
        table = _gromacs_table(prior, key, spacing_nm, table_extension_nm)
        table = _capped(table, cap_kj_mol / KCAL_MOL_TO_KJ_MOL)
        x, u, f = _to_file(table, *_gromacs_scales(prior.kind))
        if prior.kind == "pair":
            what = ("GROMACS user table: r (nm), f -f' g -g' (zero), h -h' = U (kJ/mol), -dU/dr (kJ/mol/nm); "
                    "C6 = 0, C12 = 1")
            rows = [_row(r, 0, 0, 0, 0, v, g) for r, v, g in zip(x, u, f)]
        else:
            unit = "nm" if prior.kind == "bond" else "degree"
            what = f"GROMACS bonded table: x ({unit}), V (kJ/mol), -dV/dx (kJ/mol per {unit})"
            rows = [_row(*v) for v in zip(x, u, f)]
        text = "\n".join([_header(prior.kind, what), f"# cgzoo key: {key}", *rows, ""])
        paths.append(_written(Path(directory) / _gromacs_name(prior, key), text, overwrite))
    return paths


def _gromacs_scales(kind: str) -> tuple[float, float]:
    """GROMACS's x and U factors from cgzoo units for ``kind``."""
    return (RAD_TO_DEG if _angular(kind) else ANGSTROM_TO_NM), KCAL_MOL_TO_KJ_MOL


def read_gromacs(path: str | Path, kind: str, key: str | None = None, c6: float = 0.0,
                 c12: float = 1.0) -> PotentialTable:
    """A GROMACS ``.xvg`` table in cgzoo units; pair potentials are ``c6``·g + ``c12``·h."""
    path = Path(path)
    _check_kind(kind)
    lines = _lines(path)
    width = 7 if kind == "pair" else 3
    values = np.array([_floats(path, n, w, width) for n, w in _data_lines(lines)]).reshape(-1, width)
    if kind == "pair":
        u, f = c6 * values[:, 3] + c12 * values[:, 5], c6 * values[:, 4] + c12 * values[:, 6]
    else:
        u, f = values[:, 1], values[:, 2]
    columns = _from_file(values[:, 0], u, f, *_gromacs_scales(kind))
    return _table(path, *columns, kind, key or _gromacs_key(path, lines, kind))


def _gromacs_key(path: Path, lines: list[str], kind: str) -> str:
    """The key a GROMACS table names in a ``# cgzoo key:`` line, else from its file name."""
    for line in lines:
        if line.startswith("# cgzoo key:"):
            return line.split(":", 1)[1].strip()
    stem = path.stem
    return stem[len("table_"):].replace("_", "-") if kind == "pair" and stem.startswith("table_") else stem


def _gromacs_files(directory: Path, kind: str) -> list[Path]:
    """The ``.xvg`` tables in ``directory`` that hold ``kind`` by GROMACS's file naming."""
    bonded = re.compile(r"_[bad]\d+$")
    if kind == "pair":
        return [p for p in sorted(directory.glob("table_*.xvg")) if not bonded.search(p.stem)]
    return sorted(p for p in directory.glob("*.xvg") if re.search(rf"_{GROMACS_BONDED[kind]}\d+$", p.stem))


# -- VOTCA ------------------------------------------------------------------------------------


def _votca_scales(kind: str, units: str) -> tuple[float, float]:
    """A VOTCA unit set's x and U factors from cgzoo units for ``kind``."""
    if units not in VOTCA_UNITS:
        raise ValueError(f"VOTCA tables: units must be one of {sorted(VOTCA_UNITS)}, got {units!r}")
    length, energy = VOTCA_UNITS[units]
    return (1.0 if _angular(kind) else length), energy


def write_votca(prior: TableSource, directory: str | Path, units: str = "gromacs",
                overwrite: bool = False) -> list[Path]:
    """Write one VOTCA ``<key>.pot`` per key of ``prior`` into ``directory`` on the prior's grid."""
    x_scale, u_scale = _votca_scales(prior.kind, units)
    x_unit = "rad" if _angular(prior.kind) else ("nm" if units == "gromacs" else "Angstrom")
    u_unit = "kJ/mol" if units == "gromacs" else "kcal/mol"
    paths = []
    for table in tables_from_prior(prior):
        x, u, _ = _to_file(table, x_scale, u_scale)
        what = f"VOTCA table (units {units}): x ({x_unit}), U ({u_unit}), flag (i = inside the table's range)"
        text = "\n".join([_header(prior.kind, what), *(f"{_row(a, b)} i" for a, b in zip(x, u)), ""])
        paths.append(_written(Path(directory) / f"{table.key}.pot", text, overwrite))
    return paths


def read_votca(path: str | Path, kind: str, key: str | None = None, units: str = "gromacs") -> PotentialTable:
    """A VOTCA ``.pot`` table in cgzoo units, F from a cubic spline through U."""
    path = Path(path)
    _check_kind(kind)
    rows = _data_lines(_lines(path))
    for number, words in rows:
        if len(words) not in (2, 3, 4):
            raise InputError(path, f"line {number}: expected 2 to 4 columns (x U [error] [flag]), "
                                   f"found {len(words)}")
        if len(words) > 2 and words[-1] not in ("i", "o", "u"):
            raise InputError(path, f"line {number}: flag {words[-1]!r} is not i, o or u")
    defined = [len(w) == 2 or w[-1] != "u" for _, w in rows]
    first = defined.index(True) if any(defined) else len(rows)
    last = len(rows) - defined[::-1].index(True) if any(defined) else len(rows)
    for number, words in rows[first:last]:
        if words[-1] == "u":
            raise InputError(path, f"line {number}: undefined (flag u) row inside the table")
    values = np.array([_floats(path, n, w[:2], 2) for n, w in rows[first:last]]).reshape(-1, 2)
    columns = _from_file(values[:, 0], values[:, 1], None, *_votca_scales(kind, units))
    return _table(path, *columns, kind, key or path.stem)


# -- dispatch ---------------------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    """``ValueError`` unless ``kind`` is a table kind."""
    if kind not in KINDS:
        raise ValueError(f"table kind must be one of {sorted(KINDS)}, got {kind!r}")


def _format_of(path: Path, fmt: str | None) -> str:
    """``fmt``, or the format ``path``'s suffix (or a directory's one kind of table file) implies."""
    if fmt is not None:
        if fmt not in FORMATS.values():
            raise ValueError(f"table format must be one of {sorted(FORMATS.values())}, got {fmt!r}")
        return fmt
    suffixes = {p.suffix for p in path.iterdir()} if path.is_dir() else {path.suffix}
    found = {FORMATS[s] for s in suffixes if s in FORMATS}
    if len(found) != 1:
        raise InputError(path, f"cannot tell the table format (give fmt: one of {sorted(FORMATS.values())})")
    return found.pop()


def read_tables(path: str | Path, kind: str, fmt: str | None = None, key: str | None = None,
                **options: Any) -> list[PotentialTable]:
    """Read ``kind`` tables from a LAMMPS file, or a GROMACS/VOTCA file or directory, in cgzoo units.

    ``key`` names a single GROMACS/VOTCA file's table (default: from the file) and otherwise picks
    the one table to return; ``options`` go to the reader (``units`` for VOTCA, ``c6``/``c12`` for
    GROMACS pairs).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or directory")
    fmt = _format_of(path, fmt)
    if fmt == "lammps":
        return read_lammps(path, kind, key, **options)
    reader = read_gromacs if fmt == "gromacs" else read_votca
    if not path.is_dir():
        return [reader(path, kind, key, **options)]
    files = _gromacs_files(path, kind) if fmt == "gromacs" else sorted(path.glob("*.pot"))
    tables = [reader(p, kind, **options) for p in files]
    chosen = [t for t in tables if key is None or t.key == key]
    if not chosen:
        raise InputError(path, f"no {fmt} {kind} table" + (f" for {key}" if key else ""))
    return chosen


def write_tables(prior: TableSource, path_or_dir: str | Path, fmt: str | None = None, overwrite: bool = False,
                 **options: Any) -> list[Path]:
    """Write ``prior``'s tables: LAMMPS into one file (``.table``: no ``fmt`` needed), others into a directory."""
    path = Path(path_or_dir)
    if fmt is None and path.suffix != ".table":
        raise ValueError(f"write_tables: give fmt for {path} (one of {sorted(FORMATS.values())})")
    fmt = fmt or "lammps"
    if fmt == "lammps":
        return [write_lammps(prior, path, overwrite=overwrite, **options)]
    if fmt == "gromacs":
        return write_gromacs(prior, path, overwrite=overwrite, **options)
    if fmt == "votca":
        return write_votca(prior, path, overwrite=overwrite, **options)
    raise ValueError(f"write_tables: fmt must be one of {sorted(FORMATS.values())}, got {fmt!r}")

