"""The exported LAMMPS script decomposed over 2 MPI ranks runs the same dynamics as on 1 rank, step by step.

The system: :func:`test_engines.chain_system` replicated 2 × 2 × 2 (216 four-bead chains in a
72 × 54 × 54 Å box) and shifted so chains straddle the periodic boundary and the plane x = 36 Å
where LAMMPS splits the box between 2 ranks (its longest edge). NVE from the same velocities: the
ranks compute the same terms, and only the order in which a bead's force contributions are summed
differs (ghost-atom forces come back from the other rank), so runs part at double rounding (1e-16
relative), amplified by the chaos of the dynamics; over these 200 steps of 2 fs they stay within
1e-14 relative (7e-15 measured for the bond-aware model). :data:`E_RTOL` (1e-9) sits five orders
of magnitude above that and far below what a missing or doubly counted term would change.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units
from test_engines import E_REL, bond_aware_chain_model, chain_model, chain_system, chain_topology, reference

from cgzoo.engines.lammps import export, mpi_command
from cgzoo.engines.lammps_log import LammpsLog, read_log
from cgzoo.errors import InputError
from cgzoo.md import CGCalculator, SimulationSettings
from cgzoo.md.integrators import prepare_engine
from cgzoo.models import CGModel
from cgzoo.priors.base import SumPrior

STEPS, EVERY = 200, 10
#: relative agreement of the 1- and 2-rank thermo energies at every printed step (module docstring)
E_RTOL = 1e-9
#: LAMMPS' check of a pair table's forces against −dE/dr, which flags a few points at inflections of the splines
EXPECTED_WARNINGS = re.compile(r"WARNING: (\d+ of \d+ force values in table \S+ are inconsistent with -dE/dr\."
                               r"|\s*Should only be flagged at inflection points)")
REPLICAS, SHIFT_X = (2, 2, 2), 6.0


def straddling_chains(seed: int = 0) -> tuple[Atoms, dict[str, np.ndarray]]:
    """The replicated chain system of the module docstring (positions shifted, not wrapped: LAMMPS wraps them on
    reading and keeps molecules whole through image flags), with Maxwell-Boltzmann velocities at 300 K."""
    atoms = chain_system(seed).repeat(REPLICAS)
    n_mol = 27 * int(np.prod(REPLICAS))
    atoms.arrays["molecule_id"] = np.repeat(np.arange(n_mol), 4)
    atoms.positions[:, 0] += SHIFT_X
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(units.kB * 300.0 / atoms.get_masses())[:, None]
    atoms.set_velocities(rng.normal(size=(len(atoms), 3)) * sigma)
    return atoms, chain_topology(n_mol)


def bonds_across(atoms: Atoms, bonds: np.ndarray, x: float) -> int:
    """Bonds whose beads lie on either side of the plane at ``x`` (Å) or of its periodic image."""
    length = atoms.cell[0, 0]
    side = np.floor((atoms.positions[:, 0] - x) / length)
    near = np.abs(atoms.positions[bonds[:, 0], 0] - atoms.positions[bonds[:, 1], 0]) < length / 2
    return int(np.sum(near & (side[bonds[:, 0]] != side[bonds[:, 1]])))


def bonded_only() -> CGModel:
    """:func:`chain_model`'s bonds, angles and dihedrals without its pair term: LAMMPS' pair cutoff is then the
    placeholder of ``pair_style zero``, shorter than a dihedral."""
    return CGModel(SumPrior(chain_model("prior_only").prior.priors[1:]), None, mode="prior_only")


MODELS = {"bonded prior": lambda: chain_model("prior_only"), "bonded terms only": bonded_only,
          "bond-aware delta pair_mlp": lambda: bond_aware_chain_model(0)}


def run_lammps(out: Path, ranks: int, replicate: str | None = None, steps: int | None = None) -> LammpsLog:
    """The exported script in ``out`` on ``ranks`` MPI ranks, its thermo printed to double precision; with the box
    replicated (``replicate``: "nx ny nz") and ``steps`` in place of the script's when given."""
    script = out / "in.lammps"
    text = re.sub(r"^run ", "thermo_modify format float %.16g\nrun ", script.read_text(), flags=re.MULTILINE)
    if replicate:
        text = text.replace("read_data system.data\n", f"read_data system.data\nreplicate {replicate}\n")
    if steps is not None:
        text = re.sub(r"^run \d+$", f"run {steps}", text, flags=re.MULTILINE)
    script.write_text(text)
    argv, env = mpi_command(ranks)
    proc = subprocess.run(argv, cwd=out, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return read_log(out / "log.lammps")


@pytest.mark.parametrize("name", MODELS)
def test_two_ranks_run_the_same_nve_trajectory_as_one(name, tmp_path):
    model = MODELS[name]()
    atoms, topology = straddling_chains()
    assert bonds_across(atoms, topology["bonds"], 0.0) > 0 and bonds_across(atoms, topology["bonds"], 36.0) > 0
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, atoms, topology)
    if name.startswith("bond-aware"):
        assert engine.network is None and len(engine.pairs) > 1
    logs = {}
    for ranks in (1, 2):
        out = tmp_path / str(ranks)
        out.mkdir()
        export(engine, system, out, SimulationSettings(ensemble="nve", timestep_fs=2.0, steps=STEPS, save_every=EVERY))
        logs[ranks] = run_lammps(out, ranks)
    assert ("hybrid/overlay" in (tmp_path / "1" / "in.lammps").read_text()) == name.startswith("bond-aware")
    assert logs[1].grid == (1, 1, 1) and logs[2].grid == (2, 1, 1)
    for ranks, log in logs.items():
        assert (log.ranks, log.threads, log.steps, log.atoms) == (ranks, 1, STEPS, len(atoms))
        assert log.dangerous_builds == 0 and log.memory_mb is not None and {"Pair", "Comm"} <= set(log.sections)
        assert [w for w in log.warnings if not EXPECTED_WARNINGS.match(w)] == []
        assert list(log.thermo["Step"]) == list(range(0, STEPS + 1, EVERY))
    for column in ("PotEng", "KinEng", "TotEng"):
        one, two = logs[1].thermo[column], logs[2].thermo[column]
        assert np.abs(two - one).max() <= E_RTOL * np.abs(one).max(), (column, np.abs(two - one).max())
    # what both runs integrate is the model: its energy at the start, and a trajectory that moved away from it
    e_ref, _ = reference(model, atoms, topology)
    assert logs[2].thermo["PotEng"][0] + engine.offset(system.bead_types) == pytest.approx(e_ref, rel=E_REL, abs=1e-3)
    assert np.ptp(logs[2].thermo["KinEng"]) > 0.1 * logs[2].thermo["KinEng"][0]



def test_molecules_split_by_the_box_edge_are_written_whole_and_replicate(tmp_path):
    """A start whose beads are wrapped one by one (molecules split by the box edge, as dataset frames store them) is
    written with whole molecules, so LAMMPS' image flags keep them whole and ``replicate`` (which builds its copies
    from them; a split molecule got bonds a box length long) doubles the energy of the model, on 2 ranks."""
    model = chain_model("prior_only")
    atoms, topology = straddling_chains()
    atoms.wrap()
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, atoms, topology)
    export(engine, system, tmp_path, SimulationSettings(ensemble="nve", steps=STEPS, save_every=EVERY))
    log = run_lammps(tmp_path, 2, replicate="2 1 1", steps=0)
    assert log.atoms == 2 * len(atoms) and log.grid == (2, 1, 1)
    assert [w for w in log.warnings if not EXPECTED_WARNINGS.match(w)] == []
    e_ref, _ = reference(model, atoms, topology)
    assert log.thermo["PotEng"][0] == pytest.approx(2 * e_ref, rel=E_REL)


def test_a_log_of_a_run_that_never_set_up_is_refused_in_one_line(tmp_path):
    log = tmp_path / "log.lammps"
    log.write_text("LAMMPS (22 Jul 2025 - Update 4)\nunits real\nERROR: Unknown command: bogus (src/src/input.cpp:314)\n")
    with pytest.raises(InputError, match=r"log.lammps: has no 'MPI processor grid' line"):
        read_log(log)
