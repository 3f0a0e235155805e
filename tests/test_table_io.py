"""Potential tables in LAMMPS, GROMACS and VOTCA formats: round trips, units, angle conventions, bad files.

Round-trip tolerance: at off-grid points inside the prior's own grid, |ΔU| ≤ 1e-4·max|U| and
|ΔF| ≤ 1e-3·max|F| (F is looser: VOTCA files carry no force, so it comes back from a spline, and
angle tables are resampled onto 0…180°, which moves the seam where cgzoo's wall takes over).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cgzoo.errors import InputError, OutputExistsError
from cgzoo.priors.table_file import prior_from_tables
from cgzoo.priors.tabulated import Tabulated
from cgzoo.tables import (
    PotentialTable,
    lammps_input,
    read_gromacs,
    read_lammps,
    read_tables,
    read_votca,
    tables_from_prior,
    write_gromacs,
    write_lammps,
    write_tables,
    write_votca,
)

TYPES = ["A", "B"]
KEYS = {"pair": "A-B", "bond": "A-B", "angle": "A-B-A", "dihedral": "A-B-B-A"}


def analytic(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth potential of ``kind`` on a uniform grid with its exact derivative."""
    if kind == "pair":
        x = np.linspace(2.5, 9.0, 66)
        u = np.exp(-(x - 2.5)) * (9.0 - x) ** 3 / 30.0
        return x, u, -u - np.exp(-(x - 2.5)) * (9.0 - x) ** 2 / 10.0
    if kind == "bond":
        x = np.linspace(3.013, 4.613, 33)
        return x, 3.0 * (x - 3.8) ** 2 + 0.2 * (x - 3.8) ** 3, 6.0 * (x - 3.8) + 0.6 * (x - 3.8) ** 2
    if kind == "angle":
        x = np.linspace(1.2, 3.0, 46)
        return x, 2.0 * (np.cos(x) + 0.3) ** 2, -4.0 * (np.cos(x) + 0.3) * np.sin(x)
    x = np.linspace(-np.pi, np.pi, 73)
    u = 0.8 * (1 + np.cos(x)) + 0.3 * (1 - np.cos(2 * x)) + 0.2 * np.sin(x)
    return x, u, -0.8 * np.sin(x) + 0.6 * np.sin(2 * x) + 0.2 * np.cos(x)


def prior_of(kind: str, x: np.ndarray, u: np.ndarray, du: np.ndarray, key: str | None = None) -> Tabulated:
    return Tabulated(TYPES, kind, {key or KEYS[kind]: {"x": x, "u": u, "du": du}})


def rows(path: Path) -> np.ndarray:
    """The numeric rows of a GROMACS/VOTCA table (flag column dropped)."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and ln[0] not in "#@"]
    return np.array([[float(w) for w in words if w not in ("i", "o", "u")] for words in lines])


def lammps_rows(path: Path, key: str) -> np.ndarray:
    """The data rows of section ``key`` of a LAMMPS table file."""
    lines = path.read_text().splitlines()
    start = lines.index(key)
    n = int(lines[start + 1].split()[1])
    return np.array([[float(w) for w in ln.split()] for ln in lines[start + 3: start + 3 + n]])


def row_at(table: np.ndarray, x: float, column: int = 0) -> np.ndarray:
    (hit,) = np.flatnonzero(np.isclose(table[:, column], x, rtol=0, atol=1e-9))
    return table[hit]


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pair", "bond", "angle", "dihedral"])
@pytest.mark.parametrize("fmt, options",
                         [("lammps", {}), ("gromacs", {}), ("votca", {}), ("votca", {"units": "lammps"})])
def test_round_trip_reproduces_energy_and_force(tmp_path, kind, fmt, options):
    prior = prior_of(kind, *analytic(kind))
    key = KEYS[kind]
    target = tmp_path / ("tables.table" if fmt == "lammps" else "tables")
    write_tables(prior, target, fmt=fmt, **options)
    tables = read_tables(target, kind, fmt=fmt, **options)
    assert [t.key for t in tables] == [key]
    back = prior_from_tables(tables, TYPES, kind)
    x = prior.grid(key)[0]
    points = np.random.default_rng(1).uniform(x[0], x[-1], 400)
    e0, f0 = prior.evaluate(key, points)
    e1, f1 = back.evaluate(key, points)
    assert np.abs(e1 - e0).max() <= 1e-4 * np.abs(e0).max()
    assert np.abs(f1 - f0).max() <= 1e-3 * np.abs(f0).max()


def test_tables_from_prior_and_back_is_exact():
    prior = prior_of("bond", *analytic("bond"))
    (table,) = tables_from_prior(prior)
    x, u, du = prior.grid("A-B")
    np.testing.assert_array_equal(table.x, x)
    np.testing.assert_array_equal(table.f, -du)
    back = prior_from_tables([table], TYPES, "bond")
    np.testing.assert_allclose(back.grid("A-B")[1], u)


def test_non_uniform_table_is_resampled():
    x = np.sort(np.concatenate([np.linspace(3.0, 4.6, 40), [3.33, 4.01]]))
    table = PotentialTable(x, (x - 3.8) ** 2, -2 * (x - 3.8), "bond", "A-B")
    prior = prior_from_tables([table], TYPES, "bond")
    grid = prior.grid("A-B")[0]
    assert len(grid) == len(x) and np.allclose(np.diff(grid), np.diff(grid)[0])
    energy, force = prior.evaluate("A-B", np.array([3.5, 4.2]))
    np.testing.assert_allclose(energy, [0.09, 0.16], atol=1e-12)
    np.testing.assert_allclose(force, [0.6, -0.8], atol=1e-12)


def test_prior_from_tables_refuses_other_kind():
    table = PotentialTable(np.linspace(3, 4, 5), np.zeros(5), np.zeros(5), "bond", "A-B")
    with pytest.raises(ValueError, match="bond table"):
        prior_from_tables([table], TYPES, "pair")


# -- units, by hand -------------------------------------------------------------------------------


def linear_pair() -> Tabulated:
    """U = (6 − r)/4 kcal/mol on 2…6 Å: U(4 Å) = 0.5 kcal/mol, F = 0.25 kcal/mol/Å everywhere."""
    x = np.linspace(2.0, 6.0, 41)
    return prior_of("pair", x, (6.0 - x) / 4.0, np.full_like(x, -0.25))


def test_pair_units_by_hand(tmp_path):
    prior = linear_pair()
    write_lammps(prior, tmp_path / "pair.table")
    np.testing.assert_allclose(row_at(lammps_rows(tmp_path / "pair.table", "A-B"), 4.0, 1), [21, 4.0, 0.5, 0.25])

    (xvg,) = write_gromacs(prior, tmp_path / "gmx")
    assert xvg.name == "table_A_B.xvg"
    table = rows(xvg)
    # 4 Å = 0.4 nm; 0.5 kcal/mol = 2.092 kJ/mol; 0.25 kcal/mol/Å = 10.46 kJ/mol/nm; only h, −h′ nonzero.
    np.testing.assert_allclose(row_at(table, 0.4), [0.4, 0, 0, 0, 0, 2.092, 10.46], atol=1e-9)
    assert table[0, 0] == 0.0 and table[-1, 0] == pytest.approx(0.6 + 1.0)
    np.testing.assert_allclose(np.diff(table[:, 0]), 0.002, atol=1e-12)

    (pot,) = write_votca(prior, tmp_path / "votca")
    np.testing.assert_allclose(row_at(rows(pot), 0.4), [0.4, 2.092])
    (pot,) = write_votca(prior, tmp_path / "votca_real", units="lammps")
    np.testing.assert_allclose(row_at(rows(pot), 4.0), [4.0, 0.5])


def test_gromacs_core_is_capped_and_consistent(tmp_path):
    (xvg,) = write_gromacs(linear_pair(), tmp_path, cap_kj_mol=1.0e5)
    table = rows(xvg)
    r, v, f = table[:, 0], table[:, 5], table[:, 6]
    assert np.isfinite(table).all() and v[0] > 1.0e5 and v[0] < 1.0e8
    ramp = v > 1.0e5
    assert ramp[0] and not ramp[-1] and np.all(f[ramp] == f[np.argmin(ramp)])
    np.testing.assert_allclose(-np.diff(v[ramp]) / np.diff(r[ramp]), f[ramp][1:], rtol=1e-8)


def test_harmonic_angle_degree_conventions(tmp_path):
    # U = K (θ − 110°)², K = 10 kcal/mol/rad². At 120°: U = 10·(π/18)² = 0.30461742 kcal/mol,
    # −dU/dθ = −2·10·π/18 = −3.4906585 kcal/mol/rad = −0.060923484 kcal/mol per degree.
    k, theta0 = 10.0, math.radians(110.0)
    x = np.linspace(0.0, np.pi, 181)
    prior = prior_of("angle", x, k * (x - theta0) ** 2, 2 * k * (x - theta0))

    write_lammps(prior, tmp_path / "angle.table")
    lmp = lammps_rows(tmp_path / "angle.table", "A-B-A")
    assert lmp[0, 1] == 0.0 and lmp[-1, 1] == 180.0
    np.testing.assert_allclose(row_at(lmp, 120.0, 1)[2:], [0.30461742, -0.060923484], rtol=1e-7)
    assert "N 1801 EQ 110" in (tmp_path / "angle.table").read_text()

    (xvg,) = write_gromacs(prior, tmp_path / "gmx")
    assert xvg.name == "table_a0.xvg"
    gmx = rows(xvg)
    np.testing.assert_allclose(row_at(gmx, 120.0)[1:], [0.30461742 * 4.184, -0.060923484 * 4.184], rtol=1e-7)
    # the force column is minus the derivative per tabulated degree (what mdrun checks)
    centred = -(gmx[2:, 1] - gmx[:-2, 1]) / (gmx[2:, 0] - gmx[:-2, 0])
    np.testing.assert_allclose(centred, gmx[1:-1, 2], atol=1e-9)

    for table in (read_lammps(tmp_path / "angle.table", "angle")[0], read_gromacs(xvg, "angle")):
        back = prior_from_tables([table], TYPES, "angle")
        energy, force = back.evaluate("A-B-A", np.radians([120.0, 95.5]))
        np.testing.assert_allclose(energy, k * (np.radians([120.0, 95.5]) - theta0) ** 2, rtol=1e-6)
        np.testing.assert_allclose(force, -2 * k * (np.radians([120.0, 95.5]) - theta0), rtol=1e-6)


def test_dihedral_degree_conventions(tmp_path):
    # U = 2 (1 + cos φ): at φ = 90°, U = 2 kcal/mol and −dU/dφ = 2 kcal/mol/rad
    # = 0.034906585 kcal/mol per degree.
    x = np.linspace(-np.pi, np.pi, 73)
    prior = prior_of("dihedral", x, 2 * (1 + np.cos(x)), -2 * np.sin(x))
    write_lammps(prior, tmp_path / "dih.table")
    text = (tmp_path / "dih.table").read_text()
    assert "N 72 DEGREES" in text
    lmp = lammps_rows(tmp_path / "dih.table", "A-B-B-A")
    assert lmp[0, 1] == -180.0 and lmp[-1, 1] == 175.0
    np.testing.assert_allclose(row_at(lmp, 90.0, 1)[2:], [2.0, 0.034906585], rtol=1e-8)
    (xvg,) = write_gromacs(prior, tmp_path / "gmx")
    gmx = rows(xvg)
    assert gmx[0, 0] == -180.0 and gmx[-1, 0] == 180.0
    np.testing.assert_allclose(row_at(gmx, 90.0)[1:], [2.0 * 4.184, 0.034906585 * 4.184], rtol=1e-8)
    (back,) = read_lammps(tmp_path / "dih.table", "dihedral")
    assert back.x[-1] == pytest.approx(back.x[0] + 2 * np.pi)


def test_lammps_dihedral_radians_and_nof(tmp_path):
    phi = np.linspace(0.0, 2 * np.pi, 121)[:-1]
    lines = ["TORSION", "N 120 NOF RADIANS CHECKU check.out", ""]
    lines += [f"{i + 1} {p:.12g} {1 + np.cos(p):.12g}" for i, p in enumerate(phi)]
    path = tmp_path / "dih.table"
    path.write_text("\n".join(lines) + "\n")
    (table,) = read_lammps(path, "dihedral")
    assert len(table.x) == 121 and table.x[-1] == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(table.f, np.sin(table.x), atol=1e-6)


def test_lammps_r_option_and_section_choice(tmp_path):
    path = tmp_path / "pairs.table"
    path.write_text("# two sections\n\nA-A\nN 3 R 2.0 4.0 FPRIME 0 0\n\n1 9 3 1\n2 9 2 1\n3 9 1 1\n\n"
                    "A-B  # comment after the keyword\nN 2\n\n1 2.0 1.0 0.5\n2 3.0 0.5 0.5\n")
    first, second = read_lammps(path, "pair")
    np.testing.assert_array_equal(first.x, [2.0, 3.0, 4.0])
    assert second.key == "A-B"
    assert [t.key for t in read_lammps(path, "pair", key="A-B")] == ["A-B"]
    with pytest.raises(InputError, match="no section 'B-B'"):
        read_lammps(path, "pair", key="B-B")


def test_lammps_input_snippet():
    prior = Tabulated(TYPES, "pair", {k: {"x": np.linspace(2, 6, 41), "u": (6 - np.linspace(2, 6, 41)) / 4}
                                      for k in ("B-A", "A-A")}, exclude=2, intramolecular=False)
    text = lammps_input(prior, "cg.table", {"A": 1, "B": 2})
    assert "pair_style table linear 41\n" in text
    assert "pair_coeff 1 2 cg.table B-A 6\n" in text and "pair_coeff 1 1 cg.table A-A 6\n" in text
    assert "special_bonds lj 0.0 0.0 1.0\n" in text and "neigh_modify exclude molecule/intra all" in text
    bonds = prior_of("bond", *analytic("bond"))
    assert "bond_coeff 1 cg.table A-B\n" in lammps_input(bonds, "cg.table")
    with pytest.raises(ValueError, match="bead types"):
        lammps_input(prior, "cg.table", {"A": 1})


# -- GROMACS and VOTCA reading ---------------------------------------------------------------------


def test_gromacs_pair_columns_and_key(tmp_path):
    path = tmp_path / "table_W_W.xvg"
    r = np.linspace(0.0, 1.0, 11)
    path.write_text("@ title\n" + "".join(f"{a} 0 0 {-a} 1 {2 * a} -2\n" for a in r))
    table = read_gromacs(path, "pair", c6=1.0, c12=3.0)
    assert table.key == "W-W"
    np.testing.assert_allclose(table.u, 5.0 * r / 4.184)
    np.testing.assert_allclose(table.f, -5.0 / 4.184 / 10.0)


def test_votca_flags(tmp_path):
    path = tmp_path / "CG-CG.pot"
    body = "\n".join(f"{0.1 * i:.3f} {(0.1 * i - 0.5) ** 2:.6f} i" for i in range(2, 10))
    path.write_text("# x U flag\n0.0 nan u\n0.1 0 u\n" + body + "\n1.0 0 u\n")
    table = read_votca(path, "bond")
    assert table.key == "CG-CG" and len(table.x) == 8 and table.x[0] == pytest.approx(2.0)
    np.testing.assert_allclose(table.f, -2 * (table.x / 10 - 0.5) / 4.184 / 10, atol=1e-9)
    path.write_text("0.1 1 i\n0.2 1 u\n0.3 1 i\n")
    with pytest.raises(InputError, match=r"CG-CG.pot: line 2: undefined"):
        read_votca(path, "bond")


# -- bad files ---------------------------------------------------------------------------------------

LAMMPS_BAD = {
    "RSQ": ("A-B\nN 3 RSQ 1.0 3.0\n\n1 1 1 1\n2 2 1 1\n3 3 1 1\n", "RSQ tables are not supported"),
    "BITMAP": ("A-B\nN 3 BITMAP\n\n1 1 1 1\n2 2 1 1\n3 3 1 1\n", "BITMAP tables are not supported"),
    "no N line": ("A-B\n\n1 1 1 1\n2 2 1 1\n", "no N line"),
    "columns": ("A-B\nN 2\n\n1 1 1 1\n2 2 1\n", "line 5: expected 4 columns, found 3"),
    "NaN": ("A-B\nN 2\n\n1 1 nan 1\n2 2 1 1\n", "line 4: NaN"),
    "short": ("A-B\nN 5\n\n1 1 1 1\n2 2 1 1\n", "N is 5 but only 2 rows"),
    "option": ("A-B\nN 2 EQ 1.0\n\n1 1 1 1\n2 2 1 1\n", "'EQ' is not a LAMMPS pair table option"),
    "order": ("A-B\nN 2\n\n1 2 1 1\n2 1 1 1\n", "not increasing"),
}


@pytest.mark.parametrize("case", sorted(LAMMPS_BAD))
def test_bad_lammps_files_name_file_and_problem(tmp_path, case):
    text, problem = LAMMPS_BAD[case]
    path = tmp_path / "bad.table"
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as info:
        read_tables(path, "pair")
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("fmt, name, text, problem", [
    ("gromacs", "table_b0.xvg", "0 1 2\n0.1 1 2 3\n", "line 2: expected 3 columns, found 4"),
    ("gromacs", "table_b0.xvg", "# c\n0 1 2\n0.1 nan 2\n", "line 3: NaN"),
    ("gromacs", "table_A_B.xvg", "0 0 0 0 0 1 2\n", "at least 2 rows"),
    ("votca", "A-B.pot", "0.1 1 i\n0.2 1 i 0 1\n", "line 2: expected 2 to 4 columns"),
    ("votca", "A-B.pot", "0.1 1 i\n0.2 inf i\n", "line 2: NaN or infinite"),
    ("votca", "A-B.pot", "0.1 1 i\n0.2 1 x\n", "flag 'x'"),
])
def test_bad_gromacs_and_votca_files(tmp_path, fmt, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    kind = "pair" if name.startswith("table_A") else "bond"
    with pytest.raises(InputError, match=problem) as info:
        read_tables(path, kind)
    assert str(info.value).startswith(str(path))


def test_dispatch_errors(tmp_path):
    prior = linear_pair()
    with pytest.raises(ValueError, match="give fmt"):
        write_tables(prior, tmp_path / "out")
    write_tables(prior, tmp_path / "p.table")
    with pytest.raises(OutputExistsError):
        write_tables(prior, tmp_path / "p.table")
    write_tables(prior, tmp_path / "p.table", overwrite=True)
    (tmp_path / "p.txt").write_text("1 2\n")
    with pytest.raises(InputError, match="cannot tell the table format"):
        read_tables(tmp_path / "p.txt", "pair")
    with pytest.raises(InputError, match="no such file"):
        read_tables(tmp_path / "missing.table", "pair")
