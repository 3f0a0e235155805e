"""End to end: generate each built-in system (tiny), map it with every shipped mapping, check the CG physics."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset
from cgzoo.generate import SYSTEMS, run_generate
from cgzoo.io import read_atomistic
from cgzoo.mapping import CGMapper, load_mapping

MAPPINGS = Path(__file__).parents[1] / "datasets" / "mappings"
TINY_N = {"spce-water": 40, "methanol-ua": 30, "hexane-ua": 20, "cyclohexane-ua": 20}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    out = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*cutoff reduced.*")
        for name in SYSTEMS:
            out[name] = run_generate(name, root / name, n_molecules=TINY_N[name], equil_ps=0.4, prod_ps=0.6,
                                     save_every_fs=200.0, seed=2, threads=2, progress=False)
    return out


def test_top_level_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "``" not in out and ":mod:" not in out
    assert "coarse-grained molecular dynamics" in out


CASES = sorted(p.name for p in MAPPINGS.glob("*.yaml"))


def test_every_system_has_its_shipped_mappings():
    systems = {name.split("_")[0] for name in CASES}
    assert systems == set(SYSTEMS)
    expected = {"spce-water": {1}, "methanol-ua": {1, 2}, "hexane-ua": {1, 2, 3}, "cyclohexane-ua": {1, 3}}
    for system, resolutions in expected.items():
        for n in resolutions:
            for op in ("com", "cog"):
                assert f"{system}_{n}bead_{op}.yaml" in CASES


@pytest.mark.parametrize("mapping", CASES)
def test_map_generated_run_with_shipped_mapping(runs, mapping, tmp_path):
    system = mapping.split("_")[0]
    n_beads_per_mol = int(mapping.split("_")[1][0])
    out = tmp_path / "cg.h5"
    assert main(["map", "--top", str(runs[system]), "--mapping", str(MAPPINGS / mapping), "--out", str(out), "--quiet"]) == 0
    ds = CGDataset.load(out)
    assert ds.n_beads == TINY_N[system] * n_beads_per_mol
    assert ds.n_frames == 3
    assert ds.provenance["mapping"]["name"] and len(ds.provenance["mapping"]["sha256"]) == 64

    source = read_atomistic(runs[system])
    (chunk,) = list(source.iter_chunks(10))
    mapper = CGMapper(load_mapping(MAPPINGS / mapping), source.topology)
    # bead masses add up to the molecule masses; mapped forces add up per molecule
    np.testing.assert_allclose(ds.topology.masses.sum(), source.topology.masses.sum(), rtol=1e-6)
    atom_mol = source.topology.molecule_ids
    bead_mol = ds.topology.molecule_ids
    for m in (0, TINY_N[system] - 1):
        np.testing.assert_allclose(ds.forces[:, bead_mol == m].sum(axis=1), chunk.forces[:, atom_mol == m].sum(axis=1),
                                   rtol=1e-4, atol=1e-3)
    # COM maps: the mass-weighted bead centre of a (whole) molecule is the molecule's centre of mass
    if mapping.endswith("_com.yaml"):
        whole = mapper.make_whole(chunk.positions, chunk.boxes)
        m = 1
        atoms = atom_mol == m
        com = (whole[:, atoms] * source.topology.masses[atoms, None]).sum(1) / source.topology.masses[atoms].sum()
        beads = bead_mol == m
        bead_pos = ds.positions[:, beads]
        ref = bead_pos[:, :1]  # unwrap the molecule's beads around its first bead
        box = ds.boxes[0]
        frac = np.linalg.solve(box.T, (bead_pos - ref).reshape(-1, 3).T).T
        bead_pos = ref + (frac - np.round(frac)).reshape(bead_pos.shape) @ box
        bead_com = (bead_pos * ds.topology.masses[beads, None]).sum(1) / ds.topology.masses[beads].sum()
        d = np.linalg.solve(box.T, (bead_com - com).T).T
        np.testing.assert_allclose(d - np.round(d), 0.0, atol=1e-4)
    # bonded CG topology per molecule
    per_mol = {1: (0, 0), 2: (1, 0), 3: (2 if system == "hexane-ua" else 3, 1 if system == "hexane-ua" else 3)}
    bonds, angles = per_mol[n_beads_per_mol]
    assert len(ds.topology.bonds) == bonds * TINY_N[system]
    assert len(ds.topology.angles) == angles * TINY_N[system]


def test_info_and_extxyz_of_mapped_water(runs, tmp_path, capsys):
    out = tmp_path / "w.extxyz"
    assert main(["map", "--top", str(runs["spce-water"]), "--mapping", str(MAPPINGS / "spce-water_1bead_com.yaml"),
                 "--out", str(out), "--quiet"]) == 0
    from ase.io import read

    frames = read(out, index=":")
    assert len(frames) == 3 and len(frames[0]) == TINY_N["spce-water"]
    assert set(frames[0].arrays["bead_type"]) == {"W"}
    h5 = tmp_path / "w.h5"
    assert main(["map", "--top", str(runs["spce-water"]), "--mapping", str(MAPPINGS / "spce-water_1bead_com.yaml"),
                 "--out", str(h5), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(h5)]) == 0
    text = capsys.readouterr().out
    density = float(text.split("density (g/cm³)")[1].split("mean")[1].split()[0])
    assert 0.8 < density < 1.2
