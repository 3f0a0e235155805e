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
from test_engines import (
    DEFAULT,
    assert_forces,
    chain_model,
    chain_system,
    chain_topology,
    reference,
    save_checkpoint,
)

from cgzoo.cli import main
from cgzoo.data.start import load_start
from cgzoo.engines import gromacs
from cgzoo.md import CGCalculator, SimulationSettings
from cgzoo.md.integrators import prepare_engine
from cgzoo.models import CGModel, build_network
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.priors import build_prior, save_prior
from cgzoo.tables import read_gromacs
from cgzoo.units import KCAL_MOL_TO_KJ_MOL

GMX = shutil.which("gmx")
CUT = 6.0


def chain_export(tmp_path: Path, ensemble: str = "nvt"):
    """:func:`chain_model`'s prior (LJ, bonds, angles, dihedrals) on 27 E-M-M-E chains, written by the GROMACS exporter
    into ``tmp_path/gmx``."""
    model, topology = chain_model("prior_only"), chain_topology()
    atoms = chain_system(0)
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, atoms, topology)
    out = tmp_path / "gmx"
    out.mkdir(parents=True)
    gromacs.export(engine, system, out, SimulationSettings(ensemble=ensemble, steps=20, save_every=10))
    return out, engine, model, atoms, topology


def section(text: str, name: str) -> list[list[str]]:
    """Rows (split, comments dropped) of the ``[ name ]`` section of a topology file."""
    body = re.search(rf"\[ {name} \]\n(.*?)(?:\n\n|\Z)", text, re.DOTALL)
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


def water_lj(smoothing: str = "shift"):
    return build_prior({"class_path": "lennard_jones", "init_args": {
        "type_names": ["W"], "cutoff": CUT, "smoothing": smoothing, "params": {"W-W": {"sigma": 3.1, "epsilon": 0.15}}}})


def water_checkpoint(tmp_path: Path, net: str) -> Path:
    """A ``delta`` checkpoint on one-bead water: the LJ prior of :func:`water_lj` and a small ``net``, scaled so its
    forces are of the prior's size (about 1 kcal/mol/Å)."""
    torch.manual_seed(0)
    options = ({"n_rbf": 8, "hidden": [16, 16], "embedding_dim": 4} if net == "pair_mlp" else
               {"hidden_channels": 8, "num_filters": 8, "num_interactions": 1, "num_gaussians": 8})
    model = CGModel(water_lj(), build_network(net, ["W"], cutoff=CUT, **options), mode="delta", energy_scale=20.0,
                    type_shift=[0.3]).double()
    return save_checkpoint(model, tmp_path / f"{net}.ckpt")


def test_the_export_command_writes_one_bead_water_for_gromacs_with_its_exclusions(tmp_path):
    """A prior through ``cgzoo export --engine gromacs``: pairs kept within molecules need no exclusions (one bead)."""
    save_prior(water_lj(), tmp_path / "prior.json")
    out = tmp_path / "gmx"
    assert main(["export", "--model", str(tmp_path / "prior.json"), "--start", f"{DEFAULT}@0", "--engine", "gromacs",
                 "--out", str(out), "--ensemble", "npt"]) == 0
    report = json.loads((out / "export.json").read_text())
    assert report["engine"] == "gromacs" and {"conf.gro", "topol.top", "MOL1.itp", "grompp.mdp"} <= set(report["files"])
    itp, mdp = (out / "MOL1.itp").read_text(), (out / "grompp.mdp").read_text()
    assert "[ exclusions ]" not in itp and "[ bonds ]" not in itp and "vdw-modifier    = Potential-shift" in mdp
    assert "pcoupl          = C-rescale" in mdp and "-tableb" not in mdp
    assert (out / "conf.gro").read_text().splitlines()[1] == "300"
    if GMX:
        gmx(["grompp", "-f", "grompp.mdp", "-c", "conf.gro", "-p", "topol.top", "-o", "topol.tpr"], out)


def test_intermolecular_pairs_exclude_every_pair_of_a_molecule(tmp_path):
    model, topology = chain_model("prior_only"), chain_topology()
    model.prior.priors[0].intramolecular = False
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    system, engine = prepare_engine(calc, chain_system(0), topology)
    gromacs.export(engine, system, tmp_path, SimulationSettings(steps=10, save_every=10))
    itp = (tmp_path / "MOL1.itp").read_text()
    assert section(itp, "exclusions") == [["1", "2", "3", "4"], ["2", "3", "4"], ["3", "4"]]
    assert section(itp, "moleculetype") == [["MOL1", "0"]]
    if GMX:
        gmx(["grompp", "-f", "grompp.mdp", "-c", "conf.gro", "-p", "topol.top", "-o", "topol.tpr"], tmp_path)


def test_tabulated_pairs_and_graph_networks_are_refused_for_gromacs_in_one_line(tmp_path, capsys):
    for net, message in (("pair_mlp", "GROMACS 2020 and later cannot run tabulated non-bonded potentials"),
                         ("schnet", "SchNet network is not pair-additive")):
        out = tmp_path / net
        code = main(["export", "--model", str(water_checkpoint(tmp_path, net)), "--start", f"{DEFAULT}@0",
                     "--engine", "gromacs", "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
        assert not out.exists()
    morse = build_prior({"class_path": "morse", "init_args": {"type_names": ["W"], "cutoff": CUT, "params": {
        "W-W": {"D": 0.2, "alpha": 1.5, "r0": 3.2}}}})
    for prior, message in ((morse, "the pair terms Morse are not Lennard-Jones"),
                           (water_lj(smoothing="force_shift"), "one modifier (none, shift or switch)")):
        save_prior(prior, tmp_path / "other.json")
        code = main(["export", "--model", str(tmp_path / "other.json"), "--start", f"{DEFAULT}@0", "--engine", "gromacs",
                     "--out", str(tmp_path / "other"), "--overwrite"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err


def pair_forces(model: CGModel, start: str) -> np.ndarray:
    """Forces (kcal/mol/Å) of ``model`` on the start frame (one-bead water: no bonded terms)."""
    atoms, _ = load_start(start)
    types = np.array([model.type_names.index(t) for t in atoms.arrays["bead_type"]])
    cache = TopologyCache(len(atoms), np.zeros((0, 2), int), np.asarray(atoms.arrays["molecule_id"]))
    graph = batch_graph(atoms.get_positions()[None], np.asarray(atoms.cell)[None], types, cache, CUT)
    return model.double()(graph)["forces"].detach().numpy()


@pytest.mark.parametrize("fmt, tol", [("lammps", 1e-4), ("gromacs", 1e-3), ("votca", 1e-2)])
def test_pair_mlp_tables_read_back_through_table_file_give_its_pair_forces(tmp_path, fmt, tol):
    """``export-tables --network-only`` of a pair_mlp, read by the ``table_file`` prior: the network's forces, to the
    table's accuracy (VOTCA keeps U only, so its forces come from a spline through U)."""
    from cgzoo.md.calculator import load_any_model

    ckpt = water_checkpoint(tmp_path, "pair_mlp")
    out = tmp_path / "tables"
    start = f"{DEFAULT}@0"
    assert main(["export-tables", "--model", str(ckpt), "--start", start, "--out", str(out), "--format", fmt,
                 "--network-only"]) == 0
    report = json.loads((out / "tables.json").read_text())
    (rule,) = report["pair_tables"]
    assert rule == {"name": "pair", "exclude": 0, "intramolecular": True}  # pair_mlp's own rule: no exclusions
    path = out / fmt / ("pair.table" if fmt == "lammps" else "")
    prior = build_prior({"class_path": "table_file", "init_args": {"type_names": ["W"], "path": str(path), "kind": "pair",
                                                                   "exclude": rule["exclude"]}})
    model = load_any_model(ckpt)
    network = CGModel(None, model.net, mode="ml_only", energy_scale=float(model.energy_scale))
    f_ref = pair_forces(network, start)
    f_tab = pair_forces(CGModel(prior, None, mode="prior_only"), start)
    assert np.abs(f_ref).max() > 0.5  # the network's pair forces are not negligible
    assert np.abs(f_tab - f_ref).max() < tol * np.abs(f_ref).max(), (np.abs(f_tab - f_ref).max(), np.abs(f_ref).max())


def test_export_tables_of_the_whole_model_sum_prior_and_network_and_refuse_a_graph_network(tmp_path, capsys):
    from cgzoo.md.calculator import load_any_model

    ckpt = water_checkpoint(tmp_path, "pair_mlp")
    start = f"{DEFAULT}@0"
    assert main(["export-tables", "--model", str(ckpt), "--start", start, "--out", str(tmp_path / "all")]) == 0
    prior = build_prior({"class_path": "table_file", "init_args": {
        "type_names": ["W"], "path": str(tmp_path / "all" / "lammps" / "pair.table"), "kind": "pair"}})
    f_ref = pair_forces(load_any_model(ckpt), start)
    assert_forces(pair_forces(CGModel(prior, None, mode="prior_only"), start), f_ref)  # the engines' tolerance
    code = main(["export-tables", "--model", str(water_checkpoint(tmp_path, "schnet")), "--start", start,
                 "--out", str(tmp_path / "schnet")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "SchNet network is not pair-additive" in err[0], err
