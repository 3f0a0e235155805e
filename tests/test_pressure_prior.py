"""Pressure-consistent priors: the virial constraint and the ramp move a known LJ fluid's virial pressure to the target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from synthetic import forces_of, lj_fluid_system

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset, CGTopology
from cgzoo.fitting.force_matching import FMSettings, fit_force_matching
from cgzoo.fitting.pressure import VirialConstraint, frame_pressures_bar
from cgzoo.fitting.spec import fit_prior, load_spec, spec_splits
from cgzoo.priors import build_prior, load_prior
from cgzoo.priors.export import tabulate
from cgzoo.priors.ramp import PressureRamp
from cgzoo.refine.pressure import Iteration, next_amplitude, split_ramp
from cgzoo.testing.cases import LJ_TRUE
from cgzoo.testing.systems import TYPES, graph_of

CUT = 7.0
T = 300.0


def lj_prior():
    return build_prior({"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": CUT,
                                                                     "smoothing": "force_shift", "params": LJ_TRUE}}).double()


@pytest.fixture(scope="module")
def lj_data():
    system = lj_fluid_system(n_frames=10)
    system["forces"] = forces_of(lj_prior(), system, CUT)
    return system


def graphs(system):
    return [graph_of(system, CUT, frames=slice(f, f + 1), requires_grad=False) for f in range(len(system["positions"]))]


def stream(system):
    def frames():
        for f, graph in enumerate(graphs(system)):
            yield graph, system["forces"][f]
    return frames


def dataset(tmp_path, system) -> str:
    n = len(system["bead_types"])
    top = CGTopology(bead_types=system["bead_types"], type_names=TYPES, bead_names=np.array(["X"] * n),
                     masses=np.full(n, 18.0), molecule_ids=system["molecule_ids"], bonds=system["bonds"],
                     angles=system["angles"], dihedrals=system["dihedrals"])
    ds = CGDataset(system["positions"].astype(np.float32), system["forces"].astype(np.float32), system["boxes"],
                   np.arange(len(system["positions"])) * 1000.0, top, T, {})
    return str(ds.save(tmp_path / "lj.h5"))


def mean_pressure(prior, system) -> float:
    return float(frame_pressures_bar(prior.double(), graphs(system), T).mean())


def test_virial_constraint_moves_the_lj_fluid_pressure_to_its_target(lj_data):
    truth = mean_pressure(lj_prior(), lj_data)
    target = truth - 2000.0
    settings = FMSettings(cutoff=CUT, pair_spacing=0.2, smoothing=1e-6)
    free, _ = fit_force_matching(TYPES, stream(lj_data), settings)
    fitted, report = fit_force_matching(TYPES, stream(lj_data), settings, VirialConstraint(target, T))
    # unconstrained force matching recovers the true LJ, whose pressure is not the target
    assert abs(mean_pressure(free, lj_data) - truth) < 0.01 * abs(truth) + 5.0
    # constrained: the autograd virial of the fitted tables equals the target (not only the fit's own bookkeeping)
    assert mean_pressure(fitted, lj_data) == pytest.approx(target, abs=1e-3 * abs(target) + 1.0)
    info = report["virial_constraint"]
    assert info["train_pressure_bar"] == pytest.approx(target, abs=1e-6 * abs(target))
    assert info["unconstrained_train_pressure_bar"] == pytest.approx(truth, abs=0.01 * abs(truth) + 5.0)
    assert report["train_force_rmse"] > info["unconstrained_train_force_rmse"]  # the constraint costs force accuracy


def test_spec_pressure_counts_the_terms_before_and_the_ramp_hits_the_target(lj_data, tmp_path):
    data = dataset(tmp_path, lj_data)
    truth = mean_pressure(lj_prior(), lj_data)
    target = truth + 1500.0
    soft = {"class_path": "soft_repulsion", "init_args": {"cutoff": CUT, "smoothing": "shift", "params": {},
                                                          "default": {"sigma": 3.0, "epsilon": 0.3, "n": 12.0}}}
    split = {"fractions": [0.6, 0.2, 0.2], "blocks": 5, "gap": 0}  # 10 frames: no room for gaps
    for method in ("virial", "ramp"):
        spec_path = tmp_path / f"{method}.yaml"
        spec_path.write_text(yaml.safe_dump({"split": split, "pressure": {"target_bar": target, "method": method},
                                             "terms": [soft, {"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]}))
        spec = load_spec(spec_path)
        prior, report = fit_prior(data, spec, progress=lambda msg: None)
        frames = spec_splits(spec, len(lj_data["positions"]))["train"]
        train = {k: v[frames] if k in ("positions", "boxes", "forces") else v for k, v in lj_data.items()}
        assert mean_pressure(prior, train) == pytest.approx(target, abs=1e-3 * abs(target) + 1.0), method
    ramps = [p for p in prior.priors if isinstance(p, PressureRamp)]
    assert len(ramps) == 1 and report["terms"][-1]["method"] == "pressure_ramp"
    assert report["terms"][-1]["amplitude"] > 0  # raising the pressure takes a repulsive ramp


def test_ramp_is_exported_with_the_pair_tables():
    ramp = build_prior({"class_path": "pressure_ramp", "init_args": {"type_names": TYPES, "cutoff": 6.0, "params": {},
                                                                     "default": {"amplitude": -0.5}}})
    table = build_prior({"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "pair", "tables": {
        k: {"x": list(np.linspace(2.5, 6.0, 36)), "u": list((6.0 - np.linspace(2.5, 6.0, 36)) ** 3 * 0.01)}
        for k in ("A-A", "A-B", "B-B")}}})
    both = build_prior([{"class_path": "tabulated", "init_args": table.config()}, {"class_path": "pressure_ramp",
                                                                                     "init_args": ramp.config()}])
    exported = tabulate(both, "pair", ["A-A", "A-B", "B-B"], TYPES)
    r = np.linspace(3.0, 5.9, 30)
    u_table, f_table = table.evaluate("A-B", r)
    u_both, f_both = exported.evaluate("A-B", r)
    np.testing.assert_allclose(u_both - u_table, -0.5 * (1 - r / 6.0), atol=1e-6)
    np.testing.assert_allclose(f_both - f_table, -0.5 / 6.0, atol=1e-4)  # the ramp's constant force A/r_c


def test_prior_dir_keeps_the_ramp_for_delta_models(lj_data, tmp_path):
    data = dataset(tmp_path, lj_data)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"split": {"fractions": [0.6, 0.2, 0.2], "blocks": 5, "gap": 0},
                                    "pressure": {"target_bar": 1.0, "method": "ramp"},
                                    "terms": [{"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]}))
    assert main(["fit-prior", "--data", data, "--prior", str(spec), "--out", str(tmp_path / "p"), "--quiet", "--no-plots",
                 "--export", "lammps"]) == 0
    reloaded = load_prior(tmp_path / "p")
    assert any(isinstance(p, PressureRamp) for p in reloaded.priors)
    assert "pressure_ramp" in (tmp_path / "p" / "report.md").read_text()


@pytest.mark.parametrize("pressure, message", [
    ({"target_bar": 1.0, "method": "magic"}, "pressure.method: must be 'virial' or 'ramp' (got 'magic')"),
    ({"method": "virial"}, "pressure.target_bar: required"),
])
def test_bad_pressure_spec_is_one_line_naming_the_file(lj_data, tmp_path, capsys, pressure, message):
    data = dataset(tmp_path, lj_data)
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"pressure": pressure, "terms": [{"fit": "force_matching", "cutoff": CUT}]}))
    assert main(["fit-prior", "--data", data, "--prior", str(spec), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.yaml" in err and message in err, err


def test_virial_needs_force_matching_last(lj_data, tmp_path, capsys):
    data = dataset(tmp_path, lj_data)
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"pressure": {"target_bar": 1.0}, "terms": [
        {"fit": "force_matching", "cutoff": CUT}, {"class_path": "lennard_jones", "init_args": {"cutoff": CUT, "params": LJ_TRUE}}]}))
    assert main(["fit-prior", "--data", data, "--prior", str(spec), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the last term, which must be a force_matching term" in err, err


def test_refinement_step_uses_the_secant_once_it_has_the_right_sign():
    first = [Iteration(0.0, 5000.0, 10.0, 100)]
    assert next_amplitude(first, 0.0, 10_000.0) == pytest.approx(-0.5)
    two = first + [Iteration(-0.5, 2000.0, 10.0, 100)]  # the secant slope is 6000 bar per kcal/mol
    assert next_amplitude(two, 0.0, 10_000.0) == pytest.approx(-0.5 - 2000.0 / 6000.0)
    wrong = first + [Iteration(-0.5, 6000.0, 10.0, 100)]  # noise gave the wrong sign: fall back to the first-order slope
    assert next_amplitude(wrong, 0.0, 10_000.0) == pytest.approx(-0.5 - 6000.0 / 10_000.0)


def test_split_ramp_adds_a_zero_ramp_following_the_pair_terms():
    rest, ramp = split_ramp(build_prior([{"class_path": "lennard_jones", "init_args": {
        "type_names": TYPES, "cutoff": CUT, "params": LJ_TRUE, "exclude": 2}}]), None)
    assert len(rest) == 1 and ramp.cutoff == CUT and ramp.exclude == 2
    assert float(ramp(graph_of(lj_fluid_system(n_frames=1), CUT))[0].detach()) == 0.0
    with pytest.raises(ValueError, match="no pair term"):
        split_ramp(build_prior({"class_path": "harmonic_bond", "init_args": {"type_names": TYPES,
                                                                            "params": {"A-B": {"k": 1.0, "r0": 3.0}}}}), None)


def test_refine_pressure_command_writes_a_prior_with_its_iterations(lj_data, tmp_path, capsys):
    data = dataset(tmp_path, lj_data)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"split": {"fractions": [0.6, 0.2, 0.2], "blocks": 5, "gap": 0},
                                    "terms": [{"fit": "force_matching", "cutoff": CUT, "pair_spacing": 0.2}]}))
    assert main(["fit-prior", "--data", data, "--prior", str(spec), "--out", str(tmp_path / "p"), "--quiet", "--no-plots"]) == 0
    out = tmp_path / "refined"
    args = ["refine-pressure", "--prior", str(tmp_path / "p"), "--data", data, "--out", str(out), "--target-bar", "1.0",
            "--iterations", "2", "--steps", "400", "--equilibration-steps", "100", "--save-every", "20",
            "--tolerance", "1e-9", "--quiet"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    first, second = report["iterations"]
    assert first["amplitude"] == 0.0 and first["frames"] == 16  # log rows at steps 100…400 every 20
    assert second["amplitude"] < 0  # the LJ fluid at this density is far above 1 bar: an attractive ramp
    assert abs(second["pressure_bar"] - 1.0) < abs(first["pressure_bar"] - 1.0)
    assert sorted(p.name for p in (out / "iterations" / "00").iterdir()) == ["log.csv", "prior.json"]
    chosen = report["iterations"][report["chosen"]]["amplitude"]
    ramp = next(p for p in load_prior(out).priors if isinstance(p, PressureRamp))
    assert float(ramp.table.values[0, 0, 0].detach()) == pytest.approx(chosen)
    # a second run refuses the existing output in one line
    assert main(args) == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
