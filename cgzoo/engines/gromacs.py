"""A cgzoo model in current GROMACS (2020 and later): tabulated bonded terms and analytic Lennard-Jones pairs.

GROMACS 2020 removed the group cut-off scheme, and with it user tables for short-range non-bonded
interactions; the Verlet scheme, the only one left, computes analytic pair forms only. Tabulated
bonds, angles and dihedrals (function type 8 with a table number, ``table_b<n>.xvg``,
``table_a<n>.xvg``, ``table_d<n>.xvg``) remain. So this export writes every bonded term as a
table and pairs only where the model's pair part is Lennard-Jones: one or more
:class:`~cgzoo.priors.lennard_jones.LennardJones` members under one exclusion rule, with a
smoothing GROMACS has (``none`` → ``vdw-modifier = None``, ``shift`` → ``Potential-shift``,
``switch`` → ``Potential-switch``, the same quintic switch). Their sum is exactly C6/r⁶ and
C12/r¹² per type pair, written as ``[ nonbond_params ]`` under combination rule 1. Any other pair
term (a fitted table, Morse, a ``pair_mlp``) is refused in one line (:class:`NotRepresentable`);
LAMMPS and OpenMM run it, and ``cgzoo export-tables --format gromacs`` writes the user tables
GROMACS 2019 and older ran with ``cutoff-scheme = group``.

Files (nm, ps, kJ/mol, amu): ``conf.gro`` (positions and velocities at 10⁻⁵ nm / 10⁻⁶ nm/ps,
which GROMACS reads from the field width), ``topol.top`` (defaults, atom types, pair
parameters, molecules), one ``<molecule type>.itp`` per distinct molecule (atoms with their
masses, zero charges, ``[ bonds ]``/``[ angles ]``/``[ dihedrals ]`` of type 8, bonds without a
bond term as type 5 connections so exclusions still follow them, ``nrexcl`` = the pair rule's
``exclude``, ``[ exclusions ]`` of every intramolecular pair when pairs are intermolecular only),
the bonded tables and ``grompp.mdp`` (Verlet, the ensemble: ``sd`` for NVT, ``md`` for NVE, ``sd``
with the C-rescale barostat, GROMACS 2021 and later, for NPT). The ``grompp.mdp`` header gives the two commands that run it.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.engines.system import BeadSystem
from cgzoo.engines.tables import EngineModel, NotRepresentable, untabulable_reason
from cgzoo.priors.lennard_jones import LennardJones
from cgzoo.tables import GROMACS_BONDED, write_gromacs
from cgzoo.terms import BONDED, KINDS
from cgzoo.units import ANGSTROM_TO_NM, KCAL_MOL_TO_KJ_MOL, WATER_COMPRESSIBILITY_PER_BAR

#: cgzoo pair smoothing → GROMACS ``vdw-modifier`` (``force_shift`` has no GROMACS form)
MODIFIERS = {"none": "None", "shift": "Potential-shift", "switch": "Potential-switch"}
#: GROMACS bonded function type of tabulated terms, and of a bond that only connects (exclusions, no force)
TABULATED, CONNECTION = 8, 5
#: rvdw (nm) of a model without pair terms: every C6 and C12 is zero, so it only sizes GROMACS's pair list
NO_PAIR_RVDW_NM = 0.5
#: Å/fs → nm/ps
VELOCITY_TO_NM_PS = ANGSTROM_TO_NM * 1000.0


def lj_coefficients(engine: EngineModel) -> dict[str, tuple[float, float]]:
    """C6 (kJ/mol nm⁶) and C12 (kJ/mol nm¹²) of every pair key, summed over the Lennard-Jones members; empty without
    pair terms. Raises :class:`NotRepresentable` for pair terms the Verlet scheme cannot compute."""
    if not engine.pairs:
        return {}
    members = [m for group in engine.pair_members for m in group]
    other = sorted({type(m).__name__ for m in members if type(m) is not LennardJones})
    if other or len(engine.pairs) > 1:
        what = (f"the pair terms {', '.join(other)} are not Lennard-Jones" if other
                else "the Lennard-Jones terms have different exclusion rules, and GROMACS has one nrexcl per molecule")
        raise NotRepresentable(f"GROMACS 2020 and later cannot run tabulated non-bonded potentials (the Verlet scheme has "
                               f"no user tables) and {what}; use --engine lammps or openmm, or cgzoo export-tables "
                               "--format gromacs for GROMACS 2019 and older (cutoff-scheme = group)")
    forms = {(m.cutoff, m.smoothing, m.r_switch if m.smoothing == "switch" else None) for m in members}
    if len(forms) > 1 or members[0].smoothing not in MODIFIERS:
        raise NotRepresentable("GROMACS applies one cutoff and one modifier (none, shift or switch) to every "
                               f"Lennard-Jones pair; these terms have {sorted(forms, key=str)}")
    coefficients = {}
    params = [m.table.as_dict() for m in members]
    for key in engine.pairs[0].keys:
        c6 = c12 = 0.0
        for p in params:
            sigma, epsilon = p[key]["sigma"], p[key]["epsilon"]
            sigma_nm, eps_kj = sigma * ANGSTROM_TO_NM, epsilon * KCAL_MOL_TO_KJ_MOL
            c6, c12 = c6 + 4.0 * eps_kj * sigma_nm**6, c12 + 4.0 * eps_kj * sigma_nm**12
        coefficients[key] = (c6, c12)
    return coefficients


def _check(engine: EngineModel, system: BeadSystem) -> None:
    if engine.network is not None:
        raise NotRepresentable(f"GROMACS runs analytic pairs and bonded tables only, and "
                               f"{untabulable_reason(engine.network.net)}; use --engine openmm or ase")
    cell = system.cell
    if np.any(np.abs(cell - np.diag(np.diag(cell))) > 1e-9):
        raise NotRepresentable("the GROMACS export writes orthorhombic boxes only; this cell is triclinic")
    starts = np.flatnonzero(np.r_[True, system.molecule_ids[1:] != system.molecule_ids[:-1]])
    if len(starts) != len(np.unique(system.molecule_ids)):
        raise NotRepresentable("GROMACS needs each molecule's beads consecutive; this system interleaves molecules")
    for kind in BONDED:
        terms = system.terms[kind + "s"]
        if len(terms) and np.any(system.molecule_ids[terms] != system.molecule_ids[terms[:, :1]]):
            raise NotRepresentable(f"a {kind} joins two molecules; GROMACS keeps bonded terms within a molecule")


def molecule_types(engine: EngineModel, system: BeadSystem) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """The distinct molecules (bead types, masses, bonded terms with 0-based local indices and table numbers) and the
    ``[ molecules ]`` runs as (molecule type index, count), in the order the beads come."""
    ids = system.molecule_ids
    bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
    tables = {k: system.term_types(engine, k) if k in engine.tables else None for k in BONDED}
    owner = {k: ids[system.terms[k + "s"][:, 0]] if len(system.terms[k + "s"]) else np.zeros(0, int) for k in BONDED}
    kinds: list[dict[str, Any]] = []
    signatures: dict[tuple, int] = {}
    runs: list[tuple[int, int]] = []
    for lo, hi in pairwise(bounds):
        mol = {"types": tuple(engine.type_names[t] for t in system.bead_types[lo:hi]),
               "masses": tuple(system.masses[lo:hi].tolist())}
        for kind in BONDED:
            pick = owner[kind] == ids[lo]
            local = (system.terms[kind + "s"][pick] - lo).tolist()
            numbers = tables[kind][pick].tolist() if tables[kind] is not None else [None] * len(local)
            mol[kind] = tuple((tuple(t), n) for t, n in zip(local, numbers))
        signature = tuple(mol[k] for k in ("types", "masses", *BONDED))
        if signature not in signatures:
            signatures[signature] = len(kinds)
            kinds.append(mol)
        k = signatures[signature]
        if runs and runs[-1][0] == k:
            runs[-1] = (k, runs[-1][1] + 1)
        else:
            runs.append((k, 1))
    return kinds, runs


def _molecule_name(k: int) -> str:
    """The ``[ moleculetype ]`` name of the k-th distinct molecule."""
    return f"MOL{k + 1}"


def write_itp(engine: EngineModel, mol: dict[str, Any], name: str, path: Path) -> Path:
    """One ``[ moleculetype ]`` (see the module docstring)."""
    rule = engine.pairs[0] if engine.pairs else None
    nrexcl = rule.exclude if rule is not None and rule.intramolecular else 0
    lines = [f"; cgzoo CG molecule {name}", "[ moleculetype ]", "; name  nrexcl", f"{name}  {nrexcl}", "",
             "[ atoms ]", ";  nr  type  resnr  residue  atom  cgnr  charge  mass"]
    lines += [f"{i + 1:5d}  {t}  1  {name[:5]}  {t[:5]}  {i + 1}  0.0  {m!r}"
              for i, (t, m) in enumerate(zip(mol["types"], mol["masses"]))]
    for kind in BONDED:
        if not mol[kind]:
            continue
        lines += ["", f"[ {kind}s ]", ";  " + "  ".join("ijkl"[:KINDS[kind]]) + "  func  table  k (kJ/mol)"]
        for atoms, number in mol[kind]:
            idx = "  ".join(str(i + 1) for i in atoms)
            if number is not None:
                lines.append(f"{idx}  {TABULATED}  {number}  1.0")
            elif kind == "bond":  # a bond with no bond term still defines the exclusions
                lines.append(f"{idx}  {CONNECTION}")
    if rule is not None and not rule.intramolecular and len(mol["types"]) > 1:
        n = len(mol["types"])
        lines += ["", "[ exclusions ]"] + [" ".join(str(j) for j in range(i, n + 1)) for i in range(1, n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_top(engine: EngineModel, system: BeadSystem, kinds: list[dict[str, Any]], runs: list[tuple[int, int]],
              out: Path) -> list[Path]:
    """``topol.top`` and the ``.itp`` of each molecule type (``kinds``, ``runs``: :func:`molecule_types`)."""
    coefficients = lj_coefficients(engine)
    present = sorted(set(system.bead_types.tolist()))
    lines = ["; cgzoo CG topology (nm, kJ/mol, amu); pairs: Lennard-Jones C6/C12, bonded terms: tables",
             "[ defaults ]", "; nbfunc  comb-rule  gen-pairs  fudgeLJ  fudgeQQ", "1  1  no  1.0  1.0", "",
             "[ atomtypes ]", "; name  mass  charge  ptype  c6  c12"]
    for t in present:
        mass = float(system.masses[system.bead_types == t][0])
        lines.append(f"{engine.type_names[t]}  {mass!r}  0.0  A  0.0  0.0")
    if coefficients:
        lines += ["", "[ nonbond_params ]", "; i  j  func  c6  c12"]
        lines += [f"{key.replace('-', '  ')}  1  {c6:.10e}  {c12:.10e}" for key, (c6, c12) in coefficients.items()]
    written = []
    for k, mol in enumerate(kinds):
        name = _molecule_name(k)
        written.append(write_itp(engine, mol, name, out / f"{name}.itp"))
        lines += ["", f'#include "{name}.itp"']
    lines += ["", "[ system ]", "cgzoo CG system", "", "[ molecules ]"]
    lines += [f"{_molecule_name(k)}  {count}" for k, count in runs]
    (out / "topol.top").write_text("\n".join(lines) + "\n")
    return [out / "topol.top", *written]


def write_gro(engine: EngineModel, system: BeadSystem, kinds: list[dict[str, Any]], runs: list[tuple[int, int]],
              path: Path) -> Path:
    """``conf.gro``: positions (and velocities) in nm (nm/ps), residues = molecules, atom names = bead types."""
    residue = np.cumsum(np.r_[True, system.molecule_ids[1:] != system.molecule_ids[:-1]])
    names = [_molecule_name(k)[:5] for k, count in runs for _ in range(count) for _ in kinds[k]["types"]]
    x = system.positions * ANGSTROM_TO_NM
    v = None if system.velocities is None else system.velocities * VELOCITY_TO_NM_PS
    lines = ["cgzoo CG system", str(system.n_beads)]
    for i in range(system.n_beads):
        row = (f"{residue[i] % 100000:5d}{names[i]:<5s}{engine.type_names[system.bead_types[i]][:5]:>5s}"
               f"{(i + 1) % 100000:5d}" + "".join(f"{c:10.5f}" for c in x[i]))
        lines.append(row + ("" if v is None else "".join(f"{c:10.6f}" for c in v[i])))
    lines.append(" ".join(f"{c:.6f}" for c in np.diag(system.cell) * ANGSTROM_TO_NM))
    path.write_text("\n".join(lines) + "\n")
    return path


def table_files(engine: EngineModel, system: BeadSystem) -> list[str]:
    """Names of the bonded tables this system uses (what ``gmx mdrun -tableb`` is given)."""
    return [f"table_{GROMACS_BONDED[kind]}{n}.xvg" for kind, table in engine.tables.items()
            if len(system.terms[kind + "s"]) for n in range(len(table.keys))]


def mdp_lines(engine: EngineModel, system: BeadSystem, settings: Any) -> list[str]:
    """The run parameters: Verlet scheme, the pair form of :func:`lj_coefficients`, the ensemble, output."""
    every = int(settings.save_every)
    rule = engine.pairs[0] if engine.pairs else None
    members = engine.pair_members[0] if engine.pairs else []
    rvdw = rule.cutoff * ANGSTROM_TO_NM if rule is not None else NO_PAIR_RVDW_NM
    modifier = MODIFIERS[members[0].smoothing] if members else "None"
    params: dict[str, Any] = {
        "dt": float(settings.timestep_fs) / 1000.0, "nsteps": int(settings.steps),
        "nstxout": every, "nstvout": every, "nstfout": every, "nstcalcenergy": every, "nstenergy": every,
        "nstlog": every, "cutoff-scheme": "Verlet", "pbc": "xyz", "coulombtype": "Cut-off", "rcoulomb": rvdw,
        "vdwtype": "Cut-off", "vdw-modifier": modifier, "rvdw": rvdw, "DispCorr": "no", "constraints": "none"}
    if modifier == "Potential-switch":
        params["rvdw-switch"] = members[0].r_switch * ANGSTROM_TO_NM
    t = float(settings.temperature_K)
    if settings.ensemble == "nve":
        params.update({"integrator": "md", "tcoupl": "no", "pcoupl": "no"})
    elif settings.ensemble in ("nvt", "npt"):
        params.update({"integrator": "sd", "tc-grps": "System", "tau-t": 1.0 / float(settings.friction_per_ps),
                       "ref-t": t, "ld-seed": int(settings.seed)})
        if settings.ensemble == "npt":
            params.update({"pcoupl": "C-rescale", "pcoupltype": "isotropic", "tau-p": float(settings.pdamp_fs) / 1000.0,
                           "ref-p": float(settings.pressure_bar), "compressibility": WATER_COMPRESSIBILITY_PER_BAR})
    else:
        raise ValueError(f"ensemble must be nvt, npt or nve, got {settings.ensemble!r}")
    if system.velocities is None:
        params.update({"gen-vel": "yes", "gen-temp": t, "gen-seed": int(settings.seed)})
    else:
        params["gen-vel"] = "no"
    tables = table_files(engine, system)
    header = ["; cgzoo CG model for GROMACS 2020 and later (Verlet scheme). Run:",
              "; gmx grompp -f grompp.mdp -c conf.gro -p topol.top -o topol.tpr",
              "; gmx mdrun -s topol.tpr" + (" -tableb " + " ".join(tables) if tables else ""),
              f"; energies leave out a constant of the model: {engine.offset(system.bead_types) * KCAL_MOL_TO_KJ_MOL!r} kJ/mol"]
    return header + [f"{k:<16s}= {v}" for k, v in params.items()]


def export(engine: EngineModel, system: BeadSystem, out: Path, settings: Any) -> list[Path]:
    """``conf.gro``, ``topol.top`` with one ``.itp`` per molecule type, bonded tables and ``grompp.mdp``."""
    _check(engine, system)
    kinds, runs = molecule_types(engine, system)
    written = write_top(engine, system, kinds, runs, out)
    written.append(write_gro(engine, system, kinds, runs, out / "conf.gro"))
    for kind, table in engine.tables.items():
        if len(system.terms[kind + "s"]):
            written += write_gromacs(table, out, overwrite=True)
    (out / "grompp.mdp").write_text("\n".join(mdp_lines(engine, system, settings)) + "\n")
    return written + [out / "grompp.mdp"]
