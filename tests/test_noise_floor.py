"""``cgzoo noise-floor`` (cgzoo.meanforce): the mean force and noise floor of a harmonic trimer against their exact values.

Toy: trimers 1–2–3 with zero-rest-length springs ``½k r²``; beads are atoms 1 and 3, atom 2 is
unmapped. With both beads restrained by ``K`` the ensemble is Gaussian, so the mean mapped force on
bead 1 is ``−(k/2)·K/(K+k)·(R1 − R3)`` (→ ``−(k/2)(R1 − R3)``) and its fluctuation and the bead
positions' spread follow from the inverse Hessian. For free trimers at equilibrium, the mapped-force
variance is ``k·kT`` per component, half of it fluctuation: the noise floor is 1/2 as K → ∞.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import openmm
import pytest

from cgzoo.cli import main
from cgzoo.errors import InputError
from cgzoo.generate import run_generate
from cgzoo.io.base import AtomTopology
from cgzoo.mapping import CGMapper
from cgzoo.mapping.spec import parse_yaml
from cgzoo.meanforce import score_models
from cgzoo.meanforce.restrained import RestraintSettings, run_restrained
from cgzoo.meanforce.run import measure
from cgzoo.meanforce.source import ALL, SourceFrames
from cgzoo.meanforce.statistics import config_stats
from cgzoo.priors import save_prior
from cgzoo.priors.harmonic import HarmonicBond
from cgzoo.units import KB, KCAL_MOL_A2_TO_KJ_MOL_NM2

K_SPRING = 10.0  # kcal/mol/Å², the trimer's springs
TEMPERATURE = 300.0
KT = KB * TEMPERATURE
N_TRIMERS = 16
MASS = 12.0
BOX = np.eye(3) * 80.0
MAPPING = """name: trimer
molecules:
  - name: TRI
    residues: [TRI]
    beads:
      - {name: B1, type: E, atoms: [A1]}
      - {name: B3, type: E, atoms: [A3]}
    bonds: [[B1, B3]]
"""


def trimer_system() -> openmm.System:
    """N_TRIMERS trimers with springs 1–2 and 2–3 of zero rest length (no other interaction)."""
    system = openmm.System()
    spring = openmm.CustomBondForce("0.5*k_spring*r^2")
    spring.addGlobalParameter("k_spring", K_SPRING * KCAL_MOL_A2_TO_KJ_MOL_NM2)
    for t in range(N_TRIMERS):
        for _ in range(3):
            system.addParticle(MASS)
        spring.addBond(3 * t, 3 * t + 1, [])
        spring.addBond(3 * t + 1, 3 * t + 2, [])
    system.addForce(spring)
    system.setDefaultPeriodicBoxVectors(*(BOX * 0.1))
    return system


def trimer_mapper() -> CGMapper:
    topology = AtomTopology(names=np.array(["A1", "A2", "A3"] * N_TRIMERS), resnames=np.array(["TRI"] * 3 * N_TRIMERS),
                            resids=np.repeat(np.arange(1, N_TRIMERS + 1), 3), masses=np.full(3 * N_TRIMERS, MASS),
                            molecule_ids=np.repeat(np.arange(N_TRIMERS), 3),
                            bonds=np.array([[3 * t + d, 3 * t + d + 1] for t in range(N_TRIMERS) for d in (0, 1)]),
                            source="trimer")
    return CGMapper(parse_yaml(MAPPING, "trimer.yaml"), topology)


def equilibrium_trimers(rng: np.random.Generator, n_sets: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_sets`` configurations of free trimers at equilibrium: positions (n, 3N, 3) Å and atom-1/atom-3 forces."""
    step = rng.normal(scale=np.sqrt(KT / K_SPRING), size=(n_sets, N_TRIMERS, 2, 3))
    centres = rng.uniform(10.0, 70.0, size=(n_sets, N_TRIMERS, 1, 3))
    atoms = np.concatenate([np.zeros((n_sets, N_TRIMERS, 1, 3)), np.cumsum(step, axis=2)], axis=2) + centres
    bead_forces = np.stack([K_SPRING * step[:, :, 0], -K_SPRING * step[:, :, 1]], axis=2)  # −k(r1−r2), −k(r3−r2)
    return atoms.reshape(n_sets, 3 * N_TRIMERS, 3), bead_forces.reshape(n_sets, 2 * N_TRIMERS, 3)


def exact(stiffness: float) -> tuple[float, float, float]:
    """Per component, with beads restrained by ``stiffness``: mean-force factor on −(k/2)(R1−R3), force variance, bead variance."""
    k = K_SPRING
    hessian = np.array([[k + stiffness, -k, 0.0], [-k, 2 * k, -k], [0.0, -k, k + stiffness]])
    cov = KT * np.linalg.inv(hessian)
    a = np.array([1.0, -1.0, 0.0])
    return stiffness / (stiffness + k), k**2 * float(a @ cov @ a), float(cov[0, 0])


def settings(stiffness: float = 2000.0, run_ps: float = 30.0) -> RestraintSettings:
    return RestraintSettings(stiffness=stiffness, temperature=TEMPERATURE, timestep_fs=2.0, friction_per_ps=5.0,
                             equil_ps=1.0, run_ps=run_ps, sample_every_fs=20.0, platform="Reference")


def test_restrained_trimers_give_the_exact_mean_force_and_fluctuation():
    mapper = trimer_mapper()
    positions, _ = equilibrium_trimers(np.random.default_rng(1), 1)
    samples = run_restrained(trimer_system(), positions[0], BOX, mapper.position_map, mapper.force_map, settings(), seed=7)
    stats = config_stats(samples.forces)
    targets = np.asarray(mapper.position_map @ positions[0]).reshape(N_TRIMERS, 2, 3)
    factor, force_var, _ = exact(2000.0)
    expected = -0.5 * K_SPRING * factor * (targets[:, 0] - targets[:, 1])
    expected = np.stack([expected, -expected], axis=1)  # bead 3 feels the opposite mean force
    z = (stats.mean.reshape(N_TRIMERS, 2, 3) - expected) / np.sqrt(stats.sem2.reshape(N_TRIMERS, 2, 3))
    assert np.abs(z).max() < 5.0 and np.mean(z**2) < 3.0
    assert np.abs(expected).mean() > 10 * np.sqrt(stats.sem2.mean())  # the test resolves the mean force
    # fluctuation variance k·kT/2 per component (3·k·kT/2 per bead) up to the restraint's small correction
    assert (stats.variance + stats.sem2).mean() == pytest.approx(force_var, rel=0.06)
    assert force_var == pytest.approx(K_SPRING * KT / 2, rel=0.01)


def test_restraint_holds_bead_centres_with_the_expected_spread():
    mapper = trimer_mapper()
    positions, _ = equilibrium_trimers(np.random.default_rng(2), 1)
    spreads = []
    for stiffness in (200.0, 2000.0):
        samples = run_restrained(trimer_system(), positions[0], BOX, mapper.position_map, mapper.force_map,
                                 settings(stiffness, run_ps=6.0), seed=3)
        _, _, bead_var = exact(stiffness)
        assert samples.rms_deviation == pytest.approx(np.sqrt(3 * bead_var), rel=0.15)
        spreads.append(samples.rms_deviation)
    assert spreads[1] < spreads[0] / 2.5  # ten times stiffer: √10 times closer


def toy_frames(n_configs: int) -> SourceFrames:
    """M equilibrium configurations of free trimers; the total variance from many more, as a long run would give it."""
    rng = np.random.default_rng(4)
    _, many = equilibrium_trimers(rng, 400)
    positions, raw = equilibrium_trimers(rng, n_configs)
    variance = float(many.var())
    return SourceFrames(frame_indices=np.arange(n_configs), positions=positions, boxes=np.repeat(BOX[None], n_configs, 0),
                        raw_forces=raw, total_variance={"E": variance, ALL: variance}, n_frames=n_configs)


#: M and the run length of the toy measurement: the floor to about 1 % (bootstrap), well inside the tolerances below
TOY_CONFIGS, TOY_PS = 8, 25.0


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("noise") / "toy"
    summary = measure(out, {"source": "toy", "system": "trimer", "mapping": "trimer.yaml"}, toy_frames(TOY_CONFIGS),
                      lambda box: trimer_system(), trimer_mapper(), settings(run_ps=TOY_PS), progress=False)
    return out, summary


def test_noise_floor_of_free_trimers_is_one_half(toy_run):
    _, summary = toy_run
    floor = summary["floor"]["E"]
    _, force_var, _ = exact(2000.0)
    assert floor["fraction"] == pytest.approx(force_var / floor["total_variance"], rel=0.06)
    assert floor["fraction"] == pytest.approx(0.5, abs=0.04)
    assert 0 < floor["fraction_error"] < 0.05
    assert summary["floor"][ALL]["fraction"] == floor["fraction"]


def test_exact_mean_force_model_scores_one_and_no_excess(toy_run, tmp_path):
    out, _ = toy_run
    exact_model = save_prior(HarmonicBond(["E"], {"E-E": {"k": K_SPRING / 2, "r0": 0.0}}), tmp_path / "prior.json")
    wrong_model = save_prior(HarmonicBond(["E"], {"E-E": {"k": K_SPRING / 4, "r0": 0.0}}), tmp_path / "half.json")
    summary = score_models(out, [exact_model, wrong_model])
    good, bad = summary["models"][str(exact_model)]["E"], summary["models"][str(wrong_model)]["E"]
    assert good["r2_mean"] == pytest.approx(1.0, abs=0.01)
    assert abs(good["excess_fraction"]) < 0.06
    assert good["r2_raw"] == pytest.approx(good["r2_ceiling"], abs=0.06)
    assert bad["r2_mean"] < 0.85 and bad["excess_fraction"] > 0.08
    saved = json.loads((out / "noise_floor.json").read_text())
    assert set(saved["models"]) == {str(exact_model), str(wrong_model)}
    assert str(exact_model) in (out / "report.md").read_text()


def test_resume_skips_finished_configurations(toy_run, monkeypatch, tmp_path):
    out, summary = toy_run
    model = save_prior(HarmonicBond(["E"], {"E-E": {"k": K_SPRING / 2, "r0": 0.0}}), tmp_path / "prior.json")
    score_models(out, [model])
    before = {p.name: p.stat().st_mtime_ns for p in (out / "configs").iterdir()}
    (out / "configs" / "config_0003.npz").unlink()
    calls = []
    monkeypatch.setattr("cgzoo.meanforce.run.run_restrained",
                        lambda *a, **kw: calls.append(1) or run_restrained(*a, **kw))
    again = measure(out, {"source": "toy", "system": "trimer", "mapping": "trimer.yaml"}, toy_frames(TOY_CONFIGS),
                    lambda box: trimer_system(), trimer_mapper(), settings(run_ps=TOY_PS), progress=False)
    assert len(calls) == 1
    after = {p.name: p.stat().st_mtime_ns for p in (out / "configs").iterdir()}
    assert all(after[name] == before[name] for name in before if name != "config_0003.npz")
    assert again["floor"]["E"]["fraction"] == pytest.approx(summary["floor"]["E"]["fraction"], rel=0.05)
    assert str(model) in again["models"]  # a resume keeps the scores made so far
    with pytest.raises(InputError, match="other settings.*stiffness"):
        measure(out, {"source": "toy", "system": "trimer", "mapping": "trimer.yaml"}, toy_frames(TOY_CONFIGS),
                lambda box: trimer_system(), trimer_mapper(), settings(stiffness=500.0, run_ps=TOY_PS), progress=False)


@pytest.fixture(scope="module")
def water_run(tmp_path_factory) -> Path:
    """A tiny SPC/E run: 40 molecules (its shrunk cutoff warns), 4 frames."""
    out = tmp_path_factory.mktemp("noise_water") / "water"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="40 molecules fill")
        return run_generate("spce-water", out, n_molecules=40, equil_ps=0.2, prod_ps=0.2, save_every_fs=50.0, seed=1,
                            threads=1, progress=False)


def test_cli_measures_a_generate_run(water_run, tmp_path, capsys):
    mapping = Path(__file__).resolve().parents[1] / "datasets" / "mappings" / "spce-water_1bead_com.yaml"
    out = tmp_path / "nf"
    assert main(["noise-floor", "--source", str(water_run), "--mapping", str(mapping), "--out", str(out),
                 "--configs", "2", "--ps", "0.2", "--equil-ps", "0", "--threads", "1"]) == 0
    summary = json.loads((out / "noise_floor.json").read_text())
    assert 0.0 < summary["floor"]["W"]["fraction"] < 1.0
    assert summary["settings"]["frames"] == [0, 3]
    assert summary["restraint_max_deviation_A"] < 0.3
    assert {"report.md", "noise_floor.png", "mean_forces.npz", "settings.json"} <= set(os.listdir(out))
    assert "noise floor" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--mapping", "hexane-ua_3bead_com.yaml"], "molecule 0 (residues SOL) has no entry in the mapping"),
    (["--configs", "9"], "asked for 9 configurations but the run has only 4 frames"),
    (["--stiffness", "0"], "stiffness must be positive"),
    (["--ps", "0.05"], "gives 2 force samples every 20.0 fs; the standard error needs at least 10"),
])
def test_bad_inputs_give_one_line_errors(water_run, tmp_path, capsys, args, message):
    mappings = Path(__file__).resolve().parents[1] / "datasets" / "mappings"
    argv = ["noise-floor", "--source", str(water_run), "--mapping", str(mappings / "spce-water_1bead_com.yaml"),
            "--out", str(tmp_path / "nf"), "--configs", "1", "--ps", "0.2", "--threads", "1"]
    for flag, value in zip(args[::2], args[1::2], strict=True):
        value = str(mappings / value) if flag == "--mapping" else value
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "nf" / "noise_floor.json").exists()


def test_optimized_force_map_removes_the_trimer_noise_and_keeps_its_mean_force():
    """For the trimer, bead 1's force plus half the unmapped middle atom's is −(k/2)(r1−r3) exactly: the least-variance
    consistent map finds those weights, and its restrained fluctuation vanishes while the mean force stays the same."""
    from cgzoo.mapping.force_map import ForceCovariance, optimize_force_map

    rng = np.random.default_rng(5)
    atoms, _ = equilibrium_trimers(rng, 1000)
    r1, r2, r3 = (atoms.reshape(1000, N_TRIMERS, 3, 3)[:, :, i] for i in range(3))
    atomic = np.stack([-K_SPRING * (r1 - r2), -K_SPRING * (2 * r2 - r1 - r3), -K_SPRING * (r3 - r2)], axis=2)
    mapper = CGMapper(parse_yaml(MAPPING, "trimer.yaml"), trimer_mapper().topology, force_map="optimized")
    stats = ForceCovariance(mapper.layouts)
    stats.add(atomic.reshape(1000, 3 * N_TRIMERS, 3))
    mapper.use_force_map(optimize_force_map(mapper, stats, list(range(1000)), ridge=1e-8))
    # the middle atom's weight is 1/2 up to the sampling error of the fitted covariance (~1/√(frames·trimers·3))
    assert mapper.force_map[:2, :3].toarray() == pytest.approx(np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]]), abs=0.01)
    positions, _ = equilibrium_trimers(np.random.default_rng(1), 1)
    samples = run_restrained(trimer_system(), positions[0], BOX, mapper.position_map, mapper.force_map,
                             settings(run_ps=2.0), seed=7)
    stats = config_stats(samples.forces)
    factor, force_var, _ = exact(2000.0)
    # what is left is the mean force moving with the restrained beads, (k/2)²·2kT/K ≈ 0.5 % of the basic fluctuation
    assert stats.variance.mean() < 0.01 * force_var
    targets = np.asarray(mapper.position_map @ positions[0]).reshape(N_TRIMERS, 2, 3)
    expected = -0.5 * K_SPRING * factor * (targets[:, 0] - targets[:, 1])
    assert stats.mean.reshape(N_TRIMERS, 2, 3)[:, 0] == pytest.approx(expected, abs=0.05 * np.abs(expected).mean())
