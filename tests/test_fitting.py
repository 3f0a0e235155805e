"""Prior fitting: force matching recovers known potentials, streams exactly, and the fit-prior command works end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from synthetic import forces_of, lj_fluid_system

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset, CGTopology
from cgzoo.errors import FitError
from cgzoo.fitting.boltzmann import inverted_table
from cgzoo.fitting.force_matching import FMSettings, ForceMatching, fit_force_matching
from cgzoo.fitting.least_squares import fit_least_squares
from cgzoo.priors import build_prior, load_prior
from cgzoo.testing.cases import LJ_TRUE
from cgzoo.testing.systems import TYPES, graph_of, separated_chains
from cgzoo.units import kT

CUT = 7.0


def lj_prior(params=LJ_TRUE, **kw):
    return build_prior({"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": CUT, "smoothing": "force_shift",
                                                                     "params": params, **kw}}).double()


@pytest.fixture(scope="module")
def lj_data():
    system = lj_fluid_system(n_frames=10)
    system["forces"] = forces_of(lj_prior(), system, CUT)
    return system


def stream(system):
    def frames():
        for f in range(len(system["positions"])):
            yield graph_of(system, CUT, frames=slice(f, f + 1), requires_grad=False), system["forces"][f]
    return frames


def test_force_matching_recovers_lennard_jones(lj_data):
    prior, report = fit_force_matching(TYPES, stream(lj_data), FMSettings(cutoff=CUT, pair_spacing=0.1, smoothing=1e-6))
    table = prior.priors[0]
    truth = lj_prior()
    r = np.linspace(3.0, 6.9, 40)
    for a, b in (("A", "A"), ("A", "B"), ("B", "B")):
        types = (torch.full((40,), TYPES.index(name)) for name in (a, b))
        e_true = truth.smoothed_energy(torch.as_tensor(r), *types).detach().numpy()
        e_fit, _ = table.evaluate(f"{a}-{b}", r)
        # tolerance: 0.005 kcal/mol (≈ 0.01 kT) where the pair was sampled, with noise-free forces
        assert np.abs(e_fit - e_true).max() < 5e-3, (a, b)
    assert report["train_force_rmse"] < 0.02 * report["reference_force_rms"]


def test_streaming_normal_equations_equal_one_shot_least_squares(lj_data):
    settings = FMSettings(cutoff=CUT, pair_spacing=0.25, smoothing=1e-3, ridge=1e-8)
    fm = ForceMatching(TYPES, settings)
    for graph, _ in stream(lj_data)():
        fm.scan(graph)
    fm.build_terms()
    designs = []
    for graph, forces in stream(lj_data)():
        fm.accumulate(graph, forces)
        designs.append(fm.design(graph))
    streamed, _ = fm.solve()
    # one shot: the stacked design matrix with the same penalties as extra rows, solved by lstsq
    g = np.concatenate(designs)
    f = lj_data["forces"].reshape(-1)
    scale = float(np.mean(np.diag(g.T @ g)))
    rows, rhs = [g], [f]
    for term in fm.terms.values():
        block = g[:, term.columns]
        op = np.zeros((term.basis.second_differences().shape[0], g.shape[1]))
        op[:, term.columns] = term.basis.second_differences()
        rows.append(math.sqrt(settings.smoothing * float(np.mean(np.sum(block**2, axis=0)))) * op)
        rhs.append(np.zeros(len(op)))
    rows.append(math.sqrt(settings.ridge * scale) * np.eye(g.shape[1]))
    rhs.append(np.zeros(g.shape[1]))
    one_shot = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)[0]
    np.testing.assert_allclose(streamed, one_shot, rtol=1e-6, atol=1e-8)


def test_force_matching_bonded_terms_alongside_pairs():
    system = separated_chains(n_frames=16, seed=3)
    bonded = build_prior([{"class_path": "harmonic_bond", "init_args": {"type_names": TYPES, "params": {
        "A-B": {"k": 20.0, "r0": 3.8}, "B-B": {"k": 30.0, "r0": 3.7}}}},
        {"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": 6.0, "params": LJ_TRUE,
                                                      "smoothing": "force_shift"}}]).double()
    system["forces"] = forces_of(bonded, system, 6.5)

    def frames():
        for f in range(16):
            yield graph_of(system, 6.5, frames=slice(f, f + 1), requires_grad=False), system["forces"][f]

    prior, report = fit_force_matching(TYPES, frames, FMSettings(cutoff=6.0, pair_spacing=0.2, bond_spacing=0.05,
                                                                 angles=False, dihedrals=False, smoothing=1e-6))
    bond = next(p for p in prior.priors if p.kind == "bond")
    assert report["terms"]["bond A-B"]["samples"] == 16 * 8 * 2
    r = np.linspace(3.55, 4.05, 20)  # the densely sampled part of the bond-length distribution
    _, force = bond.evaluate("A-B", r)
    np.testing.assert_allclose(force, -20.0 * (r - 3.8), atol=0.3)


def test_boltzmann_inversion_of_a_gaussian_bond():
    rng = np.random.default_rng(0)
    k_true, r0 = 40.0, 3.8
    sigma = math.sqrt(kT(300.0) / k_true)
    samples = rng.normal(r0, sigma, 400_000)
    table = inverted_table("bond", "A-B", samples, 300.0, bins=80)
    x, u = np.array(table["x"]), np.array(table["u"])
    # U_BI = ½k(r−r0)² + 2kT ln r  (the r² Jacobian); compare its curvature at the minimum region
    expected = 0.5 * k_true * (x - r0) ** 2 + 2 * kT(300.0) * np.log(x)
    inner = np.abs(x - r0) < 2 * sigma
    diff = (u - expected)[inner]
    assert np.ptp(diff) < 0.15 * np.ptp(expected[inner])


def test_least_squares_recovers_lj_parameters(lj_data):
    start = {k: {"sigma": v["sigma"] * 0.93, "epsilon": v["epsilon"] * 1.6} for k, v in LJ_TRUE.items()}
    prior = lj_prior(start)
    frames = [(g, f) for g, f in stream(lj_data)()][:5]
    report = fit_least_squares(prior, frames)
    for key, truth in LJ_TRUE.items():
        assert report["params"][key]["sigma"] == pytest.approx(truth["sigma"], rel=2e-3)
        assert report["params"][key]["epsilon"] == pytest.approx(truth["epsilon"], rel=2e-2)


def test_boltzmann_inversion_refuses_undersampled_terms():
    with pytest.raises(FitError, match="bond A-B has only 3 samples"):
        inverted_table("bond", "A-B", np.array([3.7, 3.8, 3.9]), 300.0)


def _dataset(tmp_path, system) -> str:
    n = len(system["bead_types"])
    top = CGTopology(bead_types=system["bead_types"], type_names=TYPES, bead_names=np.array(["X"] * n),
                     masses=np.full(n, 18.0), molecule_ids=system["molecule_ids"], bonds=system["bonds"],
                     angles=system["angles"], dihedrals=system["dihedrals"])
    ds = CGDataset(system["positions"].astype(np.float32), system["forces"].astype(np.float32), system["boxes"],
                   np.arange(len(system["positions"])) * 1000.0, top, 300.0, {})
    return str(ds.save(tmp_path / "lj.h5"))


def test_fit_prior_command_end_to_end_with_user_prior(lj_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CGZOO_PLUGINS", "user_prior")  # a user's prior module loads only when enabled
    data = _dataset(tmp_path, lj_data)
    spec = {"split": {"fractions": [0.6, 0.2, 0.2], "blocks": 5, "gap": 0},  # 10 frames: no room for gaps
            "terms": [{"class_path": "user_prior.GaussianPairBump", "init_args": {"height": 0.5, "cutoff": CUT}},
                      {"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "prior"
    assert main(["fit-prior", "--data", data, "--prior", str(spec_path), "--out", str(out), "--export", "lammps", "gromacs",
                 "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["errors"]["val"]["force_rmse"] < 0.05 * report["errors"]["val"]["reference_force_rms"]
    assert report["not_exported"] == ["GaussianPairBump"]
    assert (out / "tables" / "lammps" / "pair.table").exists() and (out / "plots" / "pair_A-B.png").exists()
    assert "force_matching" in (out / "report.md").read_text()
    reloaded = load_prior(out).double()
    graph = graph_of(lj_data, CUT, frames=slice(0, 1))
    (grad,) = torch.autograd.grad(reloaded(graph).sum(), graph.pos)
    np.testing.assert_allclose(-grad.numpy(), lj_data["forces"][0], atol=0.05 * np.abs(lj_data["forces"][0]).max())
    # refusing to overwrite, and a broken spec, are one-line errors naming the file
    assert main(["fit-prior", "--data", data, "--prior", str(spec_path), "--out", str(out), "--quiet"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("terms: [{fit: magic}]")
    assert main(["fit-prior", "--data", data, "--prior", str(bad), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "bad.yaml: terms[0].fit: must be 'force_matching', 'boltzmann_inversion' or 'least_squares' (got 'magic')" in capsys.readouterr().err


def test_prior_fitted_on_training_frames_only(lj_data, tmp_path):
    system = dict(lj_data)
    forces = system["forces"].copy()
    from cgzoo.data.splits import block_split

    splits = block_split(len(forces), (0.6, 0.2, 0.2), n_blocks=5, gap=0, seed=0)
    forces[splits["val"]] = np.nan_to_num(forces[splits["val"]] * 1e6)  # poison the held-out frames
    system["forces"] = forces
    data = _dataset(tmp_path, system)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"split": {"fractions": [0.6, 0.2, 0.2], "blocks": 5, "gap": 0},
                                    "terms": [{"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]}))
    assert main(["fit-prior", "--data", data, "--prior", str(spec), "--out", str(tmp_path / "p"), "--quiet", "--no-plots"]) == 0
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    assert report["errors"]["train"]["force_rmse"] < 0.05 * report["errors"]["train"]["reference_force_rms"]
    assert report["errors"]["test"]["force_rmse"] < 0.05 * report["errors"]["test"]["reference_force_rms"]


def test_fit_prior_draws_a_bar_of_each_pass_over_the_frames_only_when_asked(lj_data, tmp_path, capsys):
    """A bar per pass (counts and rate) when asked; none where stderr is no terminal (here) unless asked, or with --quiet."""
    from cgzoo.fitting.spec import fit_prior

    data = _dataset(tmp_path, lj_data)
    spec = {"split": {"fractions": [0.6, 0.2, 0.2], "blocks": 5, "gap": 0},
            "terms": [{"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]}
    fit_prior(data, spec, progress=lambda msg: None, show_progress=None)
    assert "pass 1" not in capsys.readouterr().err
    _, report = fit_prior(data, spec, progress=lambda msg: None, show_progress=True)
    err = capsys.readouterr().err
    n = report["terms"][0]["frames"]
    assert "term 0 force_matching pass 1" in err and "term 0 force_matching pass 2" in err and f"{n}/{n}" in err
    assert "frame/s" in err or "s/frame" in err
    assert "test errors" in err
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    assert main(["fit-prior", "--data", data, "--prior", str(spec_path), "--out", str(tmp_path / "p"), "--no-plots"]) == 0
    captured = capsys.readouterr()
    assert "term 0: force_matching" in captured.out and "pass 1" not in captured.err


def test_prior_plots_label_the_force_as_the_derivative_along_its_coordinate(tmp_path, monkeypatch):
    """Pair forces read −dU/dr and angle forces −dU/dθ (not a generic x), each in its own unit."""
    from matplotlib.figure import Figure

    from cgzoo.fitting.plots import plot_terms

    labels = {}
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kw: labels.update({Path(path).stem: fig.axes[1].get_ylabel()}))
    angle = build_prior({"class_path": "harmonic_angle",
                         "init_args": {"type_names": TYPES, "params": {"A-B-A": {"k": 20.0, "theta0": 110.0}}}})
    plot_terms(lj_prior(), {"pair": ["A-B"]}, TYPES, {}, tmp_path)
    plot_terms(angle, {"angle": ["A-B-A"]}, TYPES, {}, tmp_path)
    assert labels == {"pair_A-B": "F = −dU/dr (kcal/mol/Å)", "angle_A-B-A": "−dU/dθ (kcal/mol/rad)"}
