"""A pair-additive cgzoo model in LAMMPS: data file, ``*_style table`` files and an input script that runs as written.

Exported files (``units real`` = cgzoo's units; ``atom_style molecular``): ``system.data`` (box,
masses per LAMMPS atom type, molecules, bonded terms with one LAMMPS type per table key,
velocities; molecules whole), ``pair.table``/``bond.table``/``angle.table``/``dihedral.table`` (cgzoo's engine
tables, :mod:`cgzoo.engines.tables`) and ``in.lammps`` (styles, coefficients, exclusions through
``special_bonds``, ghost atoms that reach every atom of a bonded term across MPI subdomains (``comm_modify
cutoff``, :func:`bonded_reach`), the ensemble's fixes, thermo output and a ``dump`` of unwrapped positions,
velocities and forces). ``lmp -in in.lammps`` or ``mpirun -np N lmp -in in.lammps`` run it; with
``-sf omp -pk omp T`` on T OpenMP threads. A graph network has no LAMMPS form here: exporting one
is refused (:class:`~cgzoo.engines.tables.NotRepresentable`).

:class:`Runner` runs the same script in this process through the ``lammps`` Python package.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.engines.base import EngineFailure, EngineState
from cgzoo.engines.system import BeadSystem
from cgzoo.engines.tables import EngineModel, NotRepresentable, untabulable_reason
from cgzoo.geometry import lengths, make_whole, minimum_image, unwrap_tree
from cgzoo.tables import lammps_input, special_weights, write_lammps
from cgzoo.terms import BONDED
from cgzoo.units import ATM_TO_BAR, WATER_COMPRESSIBILITY_PER_BAR

#: table interpolation: LAMMPS splines the file's points onto its own N-point table
STYLE = "spline"
#: cutoff (Å) of ``pair_style zero`` for a model without pair terms: the neighbour skin follows from it
PAIRLESS_CUTOFF = 3.0
#: a bond's longest stretch during a run, as a multiple of its longest start or rest length, that every rank's ghost
#: atoms still cover: the allowance LAMMPS' own ghost-cutoff estimate gives one bond (1.5 × its rest length, 2.25 for the
#: two bonds to a dihedral's far atom; it warns "Communication cutoff … shorter than a bond length based estimate" below)
BOND_STRETCH = 1.5


def _mpi_library() -> Path | None:
    """The MPI library the PyPI ``lammps`` wheel links against (the ``mpich`` wheel's), in this environment if there."""
    for candidate in (Path(sys.prefix) / "lib" / "libmpi.so.12", Path(sys.base_prefix) / "lib" / "libmpi.so.12"):
        if candidate.exists():
            return candidate
    return None


def _load_lammps():
    """The ``lammps`` module, after loading the MPI library the PyPI wheel links against from this environment."""
    library = _mpi_library()
    if library is not None:
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    import lammps

    return lammps


def mpi_command(ranks: int, threads: int = 1, script: str = "in.lammps") -> tuple[list[str], dict[str, str]]:
    """Command line and environment that run ``script`` with this environment's ``lmp`` on ``ranks`` MPI ranks of
    ``threads`` OpenMP threads each (the OpenMP styles, ``-sf omp``, when more than one); run it in the export
    directory. The ``lmp`` of the wheel finds its MPI library through ``LD_LIBRARY_PATH``."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "OMP_NUM_THREADS": str(int(threads))}
    library = _mpi_library()
    if library is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(library.parent), os.environ.get("LD_LIBRARY_PATH")]))
    argv = [str(bin_dir / "mpirun"), "-np", str(int(ranks)), str(bin_dir / "lmp"), "-in", script]
    if threads > 1:
        argv += ["-sf", "omp", "-pk", "omp", str(int(threads))]
    return argv, env


def atom_types(engine: EngineModel, system: BeadSystem) -> dict[str, int]:
    """LAMMPS atom type (1, 2, …) of each bead type present in ``system``, in the model's type order."""
    present = sorted(set(system.bead_types.tolist()))
    return {engine.type_names[t]: k for k, t in enumerate(present, start=1)}


def _check(engine: EngineModel, system: BeadSystem) -> None:
    if engine.network is not None:
        raise NotRepresentable(f"LAMMPS runs pair tables only, and {untabulable_reason(engine.network.net)}; "
                               "use --engine openmm or ase")
    cell = system.cell
    if np.any(np.abs(cell - np.diag(np.diag(cell))) > 1e-9):
        raise NotRepresentable("the LAMMPS export writes orthorhombic boxes only; this cell is triclinic")
    for t in np.unique(system.bead_types):
        masses = system.masses[system.bead_types == t]
        if np.ptp(masses) > 1e-9 * max(1.0, masses.max()):
            raise NotRepresentable(f"beads of type {engine.type_names[t]} have different masses; LAMMPS masses are per type")


def data_kinds(engine: EngineModel, system: BeadSystem) -> list[str]:
    """Bonded kinds the data file lists: bonds whenever the system has them (``special_bonds`` exclusions are built
    from bonds, so bonds without a bond term are kept with ``bond_style zero``), angles and dihedrals with a table."""
    return [k for k in BONDED
            if len(system.terms[k + "s"]) and (k == "bond" or k in engine.tables)]


def _n_types(engine: EngineModel, kind: str) -> int:
    return len(engine.tables[kind].keys) if kind in engine.tables else 1


def write_data(engine: EngineModel, system: BeadSystem, path: Path) -> Path:
    """The LAMMPS data file of ``system`` (``atom_style molecular``).

    Each molecule is written whole (every bead at the minimum image of its parent along the bonds),
    and LAMMPS wraps positions on reading into image flags that keep it whole: ``replicate`` builds
    its copies from those flags (a molecule split by the box edge would get bonds a box length long),
    and the dumps' unwrapped positions and per-molecule computes use them.
    """
    types = atom_types(engine, system)
    tree = unwrap_tree(system.molecule_ids, system.bonds)
    positions = make_whole(system.positions[None], system.cell[None], tree)[0]
    kinds = data_kinds(engine, system)
    box = np.diag(system.cell).tolist()  # python floats: numpy's repr is not a number to LAMMPS
    lines = ["cgzoo CG system (units real: Angstrom, kcal/mol, amu, fs)", "", f"{system.n_beads} atoms"]
    lines += [f"{len(system.terms[k + 's'])} {k}s" for k in kinds]
    lines += [f"{len(types)} atom types"] + [f"{_n_types(engine, k)} {k} types" for k in kinds]
    lines += ["", *(f"0.0 {box[a]!r} {lo}lo {lo}hi" for a, lo in enumerate("xyz")), "", "Masses", ""]
    for name, t in types.items():
        mass = float(system.masses[system.bead_types == engine.type_names.index(name)][0])
        lines.append(f"{t} {mass!r}  # {name}")
    lines += ["", "Atoms  # molecular", ""]
    mol_index = {m: k for k, m in enumerate(dict.fromkeys(system.molecule_ids.tolist()), start=1)}
    for i, (pos, t, mol) in enumerate(zip(positions.tolist(), system.bead_types, system.molecule_ids), start=1):
        lines.append(f"{i} {mol_index[int(mol)]} {types[engine.type_names[int(t)]]} {pos[0]!r} {pos[1]!r} {pos[2]!r}")
    if system.velocities is not None:
        lines += ["", "Velocities", ""]
        lines += [f"{i} {v[0]!r} {v[1]!r} {v[2]!r}" for i, v in enumerate(system.velocities.tolist(), start=1)]
    for kind in kinds:
        lines += ["", kind.capitalize() + "s", ""]
        tids = system.term_types(engine, kind) if kind in engine.tables else np.zeros(len(system.terms[kind + "s"]), int)
        for n, (term, tid) in enumerate(zip(system.terms[kind + "s"], tids), start=1):
            lines.append(f"{n} {tid + 1} " + " ".join(str(int(i) + 1) for i in term))
    path.write_text("\n".join(lines) + "\n")
    return path


def pair_file(k: int) -> str:
    """File of the k-th pair table (one per exclusion rule)."""
    return "pair.table" if k == 0 else f"pair_{k + 1}.table"


def pair_commands(engine: EngineModel, types: dict[str, int]) -> list[str]:
    """``pair_style``/``pair_coeff`` and exclusions: one ``table`` style, or ``hybrid/overlay`` of one per
    exclusion rule, each with its own ``special`` weights."""
    if not engine.pairs:
        return [f"pair_style zero {PAIRLESS_CUTOFF:g}", "pair_coeff * *"]
    if len({t.intramolecular for t in engine.pairs}) > 1:
        raise NotRepresentable("pair terms with and without intramolecular pairs: LAMMPS excludes molecules for every "
                               "pair style at once")
    n_points = [2 * max(int(n) for n in t.n_points) for t in engine.pairs]
    hybrid = len(engine.pairs) > 1
    cmds = ["pair_style " + ("hybrid/overlay " if hybrid else "") + " ".join(f"table {STYLE} {n}" for n in n_points)]
    for k, table in enumerate(engine.pairs):
        style = f"table {k + 1} " if hybrid else ""
        for key in table.keys:
            i, j = sorted(types[name] for name in key.split("-"))
            cmds.append(f"pair_coeff {i} {j} {style}{pair_file(k)} {key} {table.grid(key)[0][-1]:.12g}")
        if hybrid:
            weights = " ".join(map(str, special_weights(table.exclude)))
            cmds.append(f"pair_modify pair table {k + 1} special lj {weights}")
    # where the rules disagree, the global weight must be neither 0 (the pair would leave the neighbour list) nor 1
    # (LAMMPS then refuses sub-style overrides): any value between keeps the pair and defers to each sub-style
    common = [w[0] if len(set(w)) == 1 else 0.5 for w in zip(*(special_weights(t.exclude) for t in engine.pairs))]
    cmds.append("special_bonds lj " + " ".join(map(str, common)))
    if not engine.pairs[0].intramolecular:
        cmds.append("neigh_modify exclude molecule/intra all")
    return cmds


def skin(engine: EngineModel) -> float:
    """Neighbour skin (Å): 1 Å, checked every step (10-20 % faster than LAMMPS' 2 Å default at the same safety), or a
    fifth of a shorter pair cutoff."""
    return min(1.0, 0.2 * (engine.cutoff or PAIRLESS_CUTOFF))


def bonded_reach(engine: EngineModel, system: BeadSystem) -> float:
    """How far (Å) the atoms of a bonded term may lie from the atom whose rank computes it: the ghost atoms every rank
    needs, whatever the pair cutoff (``comm_modify cutoff``, with the skin added).

    Under LAMMPS' default ``newton_bond on`` a bond is computed where its first atom is, an angle or dihedral where
    its second is: one bond from every other atom, two from a dihedral's fourth. A bond counts as stretched to
    :data:`BOND_STRETCH` times the longest of the start structure's bonds and the bond tables' rest lengths.
    Without it, a model whose pair cutoff is shorter than that (bonded terms only: ``pair_style zero``) loses
    terms that span two ranks' subdomains ("Dihedral atoms missing").
    """
    bonds = system.bonds
    vectors = minimum_image(system.positions[bonds[:, 1]] - system.positions[bonds[:, 0]], system.cell)
    longest = float(lengths(vectors).max()) if len(bonds) else 0.0
    if "bond" in engine.tables:
        table = engine.tables["bond"]
        longest = max([longest] + [float(x[np.argmin(u)]) for x, u, _ in map(table.grid, table.keys)])
    hops = 2 if "dihedral" in data_kinds(engine, system) else 1
    return hops * BOND_STRETCH * longest


def setup_commands(engine: EngineModel, system: BeadSystem, settings: Any) -> list[str]:
    """Everything before the first ``run``: system, styles, coefficients, fixes, thermo (files named relative to the
    directory the script runs in)."""
    types = atom_types(engine, system)
    cmds = ["units real", "atom_style molecular", "boundary p p p", "atom_modify map array sort 0 0",
            "read_data system.data"]
    cmds += pair_commands(engine, types)
    kinds = [k for k in BONDED if k in engine.tables and len(system.terms[k + "s"])]
    for kind in kinds:
        text = lammps_input(engine.tables[kind], f"{kind}.table", style=STYLE)
        cmds += [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if "bond" not in kinds and "bond" in data_kinds(engine, system):
        cmds += ["bond_style zero", "bond_coeff *"]
    cmds += [f"neighbor {skin(engine):.3g} bin", "neigh_modify every 1 delay 0 check yes"]
    if len(system.bonds):
        cmds.append(f"comm_modify cutoff {math.ceil(100 * (bonded_reach(engine, system) + skin(engine))) / 100:g}")
    cmds += ["timestep " + repr(float(settings.timestep_fs)), "thermo_style custom step temp press pe ke etotal vol",
             f"thermo {int(settings.save_every)}", "thermo_modify lost error flush yes"]
    t, seed = float(settings.temperature_K), int(settings.seed) % 900_000_000 + 1
    if settings.ensemble == "nvt":
        cmds += ["fix integrate all nve", "fix thermostat all langevin " + langevin_args(settings, types, t, seed)]
    elif settings.ensemble == "npt" and settings.barostat == "berendsen":
        p_atm = float(settings.pressure_bar) / ATM_TO_BAR
        modulus_atm = 1.0 / WATER_COMPRESSIBILITY_PER_BAR / ATM_TO_BAR  # bulk modulus, atm
        cmds += ["fix integrate all nve", f"fix thermostat all temp/berendsen {t!r} {t!r} {float(settings.tdamp_fs)!r}",
                 (f"fix barostat all press/berendsen iso {p_atm!r} {p_atm!r} {float(settings.pdamp_fs)!r} "
                  f"modulus {modulus_atm!r}")]
    elif settings.ensemble == "npt":  # Nosé-Hoover chains with the MTK barostat, as ASE's IsotropicMTKNPT
        p_atm = float(settings.pressure_bar) / ATM_TO_BAR
        cmds += [(f"fix integrate all npt temp {t!r} {t!r} {float(settings.tdamp_fs)!r} "
                  f"iso {p_atm!r} {p_atm!r} {float(settings.pdamp_fs)!r}")]
    elif settings.ensemble == "nve":
        cmds += ["fix integrate all nve"]
    else:
        raise ValueError(f"ensemble must be nvt, npt or nve, got {settings.ensemble!r}")
    return cmds


def langevin_args(settings: Any, types: dict[str, int], t: float, seed: int) -> str:
    """``fix langevin``'s arguments: the global γ (ASE/OpenMM friction γ ↔ LAMMPS damp 1/γ, fs), or a per-type γ as the
    largest one's damp and ``scale TYPE RATIO`` (LAMMPS multiplies a type's damp by RATIO) for each slower type."""
    per_type = settings.per_type_friction() if hasattr(settings, "per_type_friction") else None
    fastest = float(settings.friction_per_ps) if per_type is None else max(per_type.values())
    args = f"{t!r} {t!r} {1000.0 / fastest!r} {seed} zero yes"
    for name, gamma in sorted((per_type or {}).items()):
        if name in types and gamma != fastest:
            args += f" scale {types[name]} {fastest / gamma!r}"
    return args


def export(engine: EngineModel, system: BeadSystem, out: Path, settings: Any) -> list[Path]:
    """Data file, tables and ``in.lammps`` (runs ``settings.steps`` steps, dumping every ``save_every``)."""
    _check(engine, system)
    written = [write_data(engine, system, out / "system.data")]
    written += [write_lammps(table, out / pair_file(k), overwrite=True) for k, table in enumerate(engine.pairs)]
    for kind, table in engine.tables.items():
        if len(system.terms[kind + "s"]):
            written.append(write_lammps(table, out / f"{kind}.table", overwrite=True))
    cmds = setup_commands(engine, system, settings)
    cmds += [f"dump traj all custom {int(settings.save_every)} traj.lammpstrj id mol type xu yu zu vx vy vz fx fy fz",
             "dump_modify traj sort id", f"run {int(settings.steps)}"]
    header = ["# cgzoo CG model in LAMMPS (units real). Run: lmp -in in.lammps", "# or: mpirun -np N lmp -in in.lammps",
              "# energies leave out a constant of the model: " + f"{engine.offset(system.bead_types)!r} kcal/mol"]
    (out / "in.lammps").write_text("\n".join(header + cmds) + "\n")
    return written + [out / "in.lammps"]


class Runner:
    """The exported script in this process (``lammps`` Python package), advanced ``n`` steps at a time.

    Files are written to ``workdir``; ``threads`` > 1 runs the OpenMP styles (``-sf omp``).
    """

    def __init__(self, engine: EngineModel, system: BeadSystem, settings: Any, workdir: Path,
                 threads: int | None = None) -> None:
        _check(engine, system)
        workdir.mkdir(parents=True, exist_ok=True)
        export(engine, system, workdir, settings)
        lammps = _load_lammps()
        args = ["-log", "none", "-screen", "none", "-nocite"]
        if threads and threads > 1:
            args += ["-sf", "omp", "-pk", "omp", str(threads)]
        self.lmp = lammps.lammps(cmdargs=args)
        self.offset = engine.offset(system.bead_types)
        self.n = system.n_beads
        cwd = os.getcwd()
        try:
            os.chdir(workdir)
            self._command_list(setup_commands(engine, system, settings))
            self._command("run 0 post no")
        finally:
            os.chdir(cwd)

    def _command(self, cmd: str) -> None:
        try:
            self.lmp.command(cmd)
        except Exception as exc:  # noqa: BLE001 - the lammps module raises bare Exception with LAMMPS' message
            raise EngineFailure(f"LAMMPS: {str(exc).strip().splitlines()[0]}") from None

    def _command_list(self, cmds: list[str]) -> None:
        for cmd in cmds:
            self._command(cmd)

    def step(self, n: int) -> None:
        self._command(f"run {int(n)} pre no post no")

    def _per_atom(self, name: str, order: np.ndarray) -> np.ndarray:
        return np.array(self.lmp.numpy.extract_atom(name)[: self.n])[order]

    def state(self, forces: bool = True) -> EngineState:
        ids = np.array(self.lmp.numpy.extract_atom("id")[: self.n])
        order = np.argsort(ids)
        lo, hi = self.lmp.extract_box()[:2]
        cell = np.diag(np.array(hi) - np.array(lo))
        image = self._per_atom("image", order).astype(np.int64)
        shifts = np.stack([(image & 1023) - 512, ((image >> 10) & 1023) - 512, (image >> 20) - 512], axis=1)
        positions = self._per_atom("x", order) + shifts @ cell
        energy = float(self.lmp.get_thermo("pe")) + self.offset if forces else None
        return EngineState(positions=positions, velocities=self._per_atom("v", order), cell=cell,
                           forces=self._per_atom("f", order) if forces else None, energy=energy)

    def close(self) -> None:
        self.lmp.close()
