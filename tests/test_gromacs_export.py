"""GROMACS export (bonded tables + analytic Lennard-Jones for GROMACS 2020+) and ``cgzoo export-tables``.

The GROMACS files are checked section by section; where ``gmx`` is installed they must also pass
``gmx grompp`` and give, in ``gmx mdrun``, the model's energy (1e-4 relative: single precision and
positions written to 10⁻⁵ nm) and forces (the tolerance of tests/test_engines.py). Tables a
``pair_mlp`` is exported as must give its pair forces back through the ``table_file`` prior.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from cgzoo.cli import main
from cgzoo.data.start import load_start
from cgzoo.engines import gromacs
from cgzoo.engines.tables import NotRepresentable
from cgzoo.md import CGCalculator, SimulationSettings
from cgzoo.md.integrators import prepare_engine
from cgzoo.models import CGModel, build_network
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.priors import build_prior, save_prior
from cgzoo.tables import read_gromacs
from cgzoo.units import KCAL_MOL_TO_KJ_MOL
from test_engines import DEFAULT, assert_forces, chain_model, chain_system, chain_topology, reference, save_checkpoint

GMX = shutil.which("gmx")
CUT = 6.0


def chain_export(tmp_path: Path, mode: str = "prior_only", ensemble: str = "nvt"):
    """:func:`chain_model` on 27 E-M-M-E chains written by the GROMACS exporter into ``tmp_path/gmx``."""
    model, topology = chain_model(mode), chain_topology()
    atoms = chain_system(0)
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, atoms, topology)
    out = tmp_path / "gmx"
    out.mkdir(parents=True)
    gromacs.export(engine, system, out, SimulationSettings(ensemble=ensemble, steps=20, save_every=10))
    return out, engine, model, atoms, topology


def section(text: str, name: str) -> list[list[str]]:
    """Rows (split, comments dropped) of the ``[ name ]`` section of a topology file."""
    body = re.search(rf"\[ {name} \]\n(.*?)(?:\n\n|\Z)", text, re.S)
    assert body, name
    return [line.split() for line in body.group(1).splitlines() if line.strip() and not line.startswith(";")]


def test_a_bonded_lennard_jones_prior_becomes_gromacs_topology_tables_and_mdp(tmp_path):
    out, engine, model, _, _ = chain_export(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["MOL1.itp", "conf.gro", "grompp.mdp", "table_a0.xvg", "table_b0.xvg",
                                                    "table_b1.xvg", "table_d0.xvg", "topol.top"]
    top, itp = (out / "topol.top").read_text(), (out / "MOL1.itp").read_text()
    assert section(top, "molecules") == [["MOL1", "27"]] and section(itp, "moleculetype") == [["MOL1", "2"]]
    lj = model.prior.priors[0].table.as_dict()
    for i, j, func, c6, c12 in section(top, "nonbond_params"):
        sigma, eps = lj[f"{i}-{j}"]["sigma"] / 10.0, lj[f"{i}-{j}"]["epsilon"] * KCAL_MOL_TO_KJ_MOL
        assert func == "1" and float(c6) == pytest.approx(4 * eps * sigma**6) and float(c12) == pytest.approx(4 * eps * sigma**12)
    # E-M bonds use table 0, the M-M bond table 1 (the engine's key order); angles and the dihedral are type 8 too
    assert section(itp, "bonds") == [["1", "2", "8", "0", "1.0"], ["2", "3", "8", "1", "1.0"], ["3", "4", "8", "0", "1.0"]]
    assert [r[3:5] for r in section(itp, "angles")] == [["8", "0"]] * 2 and section(itp, "dihedrals")[0][4:6] == ["8", "0"]
    assert engine.tables["bond"].keys == ["E-M", "M-M"]
    assert read_gromacs(out / "table_b1.xvg", "bond").key == "M-M"
    mdp = dict(line.split("=", 1) for line in (out / "grompp.mdp").read_text().splitlines() if not line.startswith(";"))
    mdp = {k.strip(): v.strip() for k, v in mdp.items()}
    assert (mdp["cutoff-scheme"], mdp["vdw-modifier"], mdp["integrator"]) == ("Verlet", "Potential-switch", "sd")
    assert (float(mdp["rvdw"]), float(mdp["rvdw-switch"])) == pytest.approx((0.9, 0.8))
    assert "-tableb table_b0.xvg table_b1.xvg table_a0.xvg table_d0.xvg" in (out / "grompp.mdp").read_text()


def gmx(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([GMX, "-quiet", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def first_energies(log: str) -> dict[str, float]:
    """The energies mdrun logs at its first step, by name (its table: rows of 15-character columns)."""
    block = log[log.index("Energies (kJ/mol)"):].splitlines()[1:]
    energies = {}
    for names, values in zip(block[0::2], block[1::2]):
        if not names.strip():
            break
        energies.update(zip((names[i:i + 15].strip() for i in range(0, len(names), 15)), map(float, values.split())))
    return energies


@pytest.mark.skipif(GMX is None, reason="GROMACS (gmx) is not installed")
def test_the_gromacs_files_pass_grompp_and_mdrun_gives_the_models_energy_and_forces(tmp_path):
    from MDAnalysis.coordinates.TRR import TRRReader

    out, _, model, atoms, topology = chain_export(tmp_path)
    gmx(["grompp", "-f", "grompp.mdp", "-c", "conf.gro", "-p", "topol.top", "-o", "topol.tpr"], out)
    gmx(["mdrun", "-s", "topol.tpr", "-nt", "1", "-tableb", "table_b0.xvg", "table_b1.xvg", "table_a0.xvg",
         "table_d0.xvg"], out)
    potential = first_energies((out / "md.log").read_text())["Potential"]
    e_ref, f_ref = reference(model, atoms, topology)
    assert potential / KCAL_MOL_TO_KJ_MOL == pytest.approx(e_ref, rel=1e-4)
    forces = TRRReader(str(out / "traj.trr"))[0].forces / KCAL_MOL_TO_KJ_MOL  # kJ/mol/Å
    assert_forces(forces, f_ref)
    for ensemble in ("npt", "nve"):
        other, *_ = chain_export(tmp_path / ensemble, ensemble=ensemble)
        gmx(["grompp", "-f", "grompp.mdp", "-c", "conf.gro", "-p", "topol.top", "-o", "topol.tpr"], other)
