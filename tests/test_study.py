"""The study driver: the shipped grid expands as documented, bad study files fail in one line, and a tiny study
runs end to end, skips finished work on a re-run, re-runs only what a changed setting touches, and keeps
going past a failed branch."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from cgzoo.errors import InputError
from cgzoo.study import build_plan, load_study, run_study
from cgzoo.study.curves import main_grid_trainings, plot_learning_curves, prior_val_rmse, read_curve
from cgzoo.study.runner import read_state

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "experiments" / "delta_study" / "study.yaml"


def test_shipped_presets_expand_to_the_documented_grid():
    cpu = load_study(SHIPPED, "cpu")
    full = load_study(SHIPPED, "full")
    assert len(full.mappings) == 18 and len(full.seeds) >= 3 and len(cpu.seeds) >= 3
    assert {m.system for m in full.mappings} == {"spce-water", "methanol-ua", "hexane-ua", "cyclohexane-ua"}
    assert {m.operator for m in full.mappings} == {"com", "cog"}
    assert {m.beads_per_molecule for m in full.mappings if m.system == "hexane-ua"} == {1, 2, 3}
    assert full.architectures == ["pair_mlp", "schnet", "equivariant"]
    assert full.modes == ["prior_only", "ml_only", "delta"]
    # the CPU preset covers water 1-bead and hexane 3-bead, with MD for the pair-additive models only
    assert [m.name for m in cpu.mappings] == ["spce-water_1bead_com", "hexane-ua_3bead_com"]
    assert cpu.md_architectures == ["pair_mlp"] and cpu.ensembles == ["nvt"] and full.ensembles == ["nvt", "npt"]
    assert cpu.architectures == ["pair_mlp", "schnet"]
    # every network of both presets gets the molecular topology (bond-aware), so ML only is a fair baseline
    assert all(args["bond_aware"] for preset in (cpu, full) for args in preset.networks.values())
    tasks = build_plan(full)
    trained = [t for t in tasks if t.fn == "train" and "/data_efficiency/" not in t.name]
    assert len(trained) == 18 * 3 * 2 * 3  # mappings × architectures × (ml_only, delta) × seeds
    assert all(f"{t.meta['mapping']}/prior" in t.deps for t in trained)
    # each trained cell starts from its architecture's zoo config and its mode's
    assert {(t.meta["architecture"], t.params["mode"], *t.params["configs"]) for t in trained} == {
        (a, m, f"models/{a}.yaml", f"models/modes/{m}.yaml") for a in full.architectures for m in ("ml_only", "delta")}
    # CPU: MD for the prior and pair_mlp only; data-efficiency cells on the main grid's 50 frames reuse its models,
    # and each other size has its own prior, fitted on the same frames as the networks over it
    cpu_tasks = build_plan(cpu)
    simulated = {t.meta["architecture"] for t in cpu_tasks if t.fn == "simulate"}
    assert simulated == {"prior", "pair_mlp"}
    de_train = [t for t in cpu_tasks if t.fn == "train" and "/data_efficiency/" in t.name]
    assert {t.meta["frames"] for t in de_train} == {10, 30, 100}
    for t in de_train:
        assert t.params["training"]["data.max_train_frames"] == t.meta["frames"]
        if t.params["mode"] == "delta":
            assert t.params["prior"].task.endswith(f"/data_efficiency/prior_n{t.meta['frames']}")
    de_priors = {t.params["max_frames"] for t in cpu_tasks if t.fn == "fit_prior"}
    assert de_priors == {10, 30, 50, 100}


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["grid"].update(architectures=["pair_mlp", "transformer"]), "unknown ['transformer']"),
    (lambda d: d["grid"].update(modes=["delta", "prior_plus"]),
     "grid.modes[1]: must be 'prior_only', 'ml_only' or 'delta'"),
    (lambda d: d["grid"]["systems"].update({"argon": ["1bead_com"]}), "does not exist"),
    (lambda d: d["grid"]["systems"].update({"argon": ["one_bead"]}), "is not '<n>bead_<operator>'"),
    (lambda d: d["presets"]["cpu"]["networks"].pop("schnet"), "no network settings for ['schnet']"),
    (lambda d: d["grid"].update(zoo_dir="nowhere"), "zoo config needed by"),
    (lambda d: d["presets"]["cpu"]["networks"]["schnet"].update(cutoff=7.0), "every network needs the same explicit cutoff"),
    (lambda d: [n.update(cutoff=8.0) for n in d["presets"]["cpu"]["networks"].values()],
     "network cutoff 8.0 Å is shorter than the 9.0 Å of the prior"),
])
def test_bad_study_files_fail_in_one_line(tmp_path, edit, message):
    data = yaml.safe_load(SHIPPED.read_text())
    edit(data)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_study(path, "cpu")
    with pytest.raises(InputError, match="no preset 'gpu'"):
        load_study(SHIPPED, "gpu")


def _tiny_study(tmp_path: Path, md_steps: int = 60) -> Path:
    spec = yaml.safe_load((ROOT / "datasets" / "priors" / "fm_full.yaml").read_text())
    spec["terms"][0]["cutoff"] = 6.0  # the tiny box is 17 Å wide
    (tmp_path / "prior.yaml").write_text(yaml.safe_dump(spec))
    study = {
        "name": "tiny",
        "grid": {"systems": {"hexane-ua": ["3bead_com"], "cyclohexane-ua": ["3bead_com"]},
                 "architectures": ["pair_mlp"], "modes": ["prior_only", "ml_only", "delta"],
                 "mappings_dir": str(ROOT / "datasets" / "mappings"), "zoo_dir": str(ROOT / "models"),
                 "priors": {"pairs": str(tmp_path / "prior.yaml"), "bonded": str(tmp_path / "prior.yaml")}},
        "defaults": {"md": {"timestep_fs": 2.0, "save_every": 5, "barostat": "berendsen", "pdamp_fs": 200.0},
                     "evaluate": {"nvt_equil_ps": 0.02, "npt_equil_ps": 0.02}},
        "presets": {"test": {
            "work_dir": str(tmp_path / "work"), "results_dir": str(tmp_path / "results"), "workers": 1,
            "atomistic": {"hexane-ua": {"n_molecules": 24, "equil_ps": 0.4, "prod_ps": 4.0, "save_every_fs": 100.0, "seed": 3},
                          "cyclohexane-ua": {"path": str(tmp_path / "missing")}},
            "networks": {"pair_mlp": {"cutoff": 6.0, "hidden": [8], "n_rbf": 8}},
            "training": {"trainer.max_epochs": 1, "data.max_train_frames": 4, "data.cache_dir": str(tmp_path / "cache")},
            "seeds": [0, 1],
            "md": {"nvt_steps": md_steps, "npt_steps": md_steps, "replicas": 2},
            "data_efficiency": {"mappings": ["hexane-ua_3bead_*"], "frames": [2, 4], "nvt_steps": 40}}},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_tiny_study_runs_resumes_and_isolates_failures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # every path comes from the study file
    config = _tiny_study(tmp_path)
    log: list[str] = []
    study, states = run_study(config, "test", log=log.append)

    # hexane's data were generated (24 molecules); the cyclohexane branch has no data: its tasks
    # fail or are skipped, hexane's complete
    assert json.loads((tmp_path / "work" / "atomistic" / "hexane-ua" / "run" / "topology.json").read_text())["options"]["n_molecules"] == 24
    assert states["atomistic/cyclohexane-ua"]["status"] == "failed"
    assert "does not exist" in states["atomistic/cyclohexane-ua"]["error"]
    assert {s["status"] for n, s in states.items() if n.startswith("cyclohexane-ua_")} == {"skipped"}
    assert all(s["status"] == "done" for n, s in states.items() if n.startswith("hexane-ua_"))

    rows = list(csv.DictReader((study.results_dir / "results.csv").open()))
    hexane_rows = [r for r in rows if r["system"] == "hexane-ua"]
    # 2 seeds × 2 replicas of each model; replicas start from different frames
    assert sorted((r["architecture"], r["mode"], r["seed"], r["replica"]) for r in hexane_rows) == sorted(
        (a, m, s, k) for a, m in (("prior", "prior_only"), ("pair_mlp", "ml_only"), ("pair_mlp", "delta"))
        for s in "01" for k in "01")
    starts = {read_state(t)["result"]["start_frame"] for t in build_plan(study)
              if t.fn == "simulate" and t.meta["mapping"] == "hexane-ua_3bead_com" and t.meta["label"] == "prior_only_s0"}
    assert len(starts) == 2
    hexane = {(r["architecture"], r["mode"]): r for r in hexane_rows if r["seed"] == "0" and r["replica"] == "0"}
    for row in hexane_rows:
        assert float(row["force_rmse"]) > 0 and float(row["force_r2"]) <= 1 and row["n_beads"] == "72"
        assert row["status_nvt"] in ("complete", "unstable") and row["stable_nvt"] in ("True", "False")
        if row["stable_nvt"] == "True":
            assert float(row["rdf_error"]) >= 0 and float(row["bonded_js"]) >= 0
    # the prior-only model's force error is the one fit-prior's model gives on the same test frames
    prior_result = read_state(next(t for t in build_plan(study) if t.name == "hexane-ua_3bead_com/prior/heldout"))["result"]
    assert float(hexane[("prior", "prior_only")]["force_rmse"]) == pytest.approx(prior_result["force_rmse"], rel=1e-5)
    assert float(hexane[("prior", "prior_only")]["force_rmse_vs_prior"]) == 0.0
    delta = hexane[("pair_mlp", "delta")]
    # results.csv keeps 6 significant digits of each RMSE: the ratio from the rounded values agrees to ~1e-5
    assert float(delta["force_rmse_vs_prior"]) == pytest.approx(float(delta["force_rmse"]) / prior_result["force_rmse"] - 1,
                                                                abs=1e-5)
    summary = (study.results_dir / "summary.md").read_text()
    assert "pair_mlp: Δ vs ML only better/tie/worse" in summary and "| hexane-ua_3bead_com | pair_mlp Δ |" in summary
    assert "| hexane-ua_3bead_com | reference split-half (floor) |" in summary
    prior_row = next(line for line in summary.splitlines() if line.startswith("| hexane-ua_3bead_com | prior only"))
    assert prior_row.count("[") >= 2  # 2 seeds × 2 replicas: the force error and the run metrics have intervals
    delta_row = next(line for line in summary.splitlines() if line.startswith("| hexane-ua_3bead_com | pair_mlp Δ"))
    assert delta_row.split(" | ")[3].count("[") == 1  # the paired force difference to the prior has its interval
    assert (study.results_dir / "error_vs_resolution_com.png").stat().st_size > 0
    assert (study.results_dir / "delta_vs_ml_only.png").stat().st_size > 0
    # learning curves of the finished main-grid trainings only: hexane's, not the failed cyclohexane branch's
    assert sorted(p.name for p in study.results_dir.glob("learning_curves_*.png")) == ["learning_curves_hexane-ua_3bead_com.png"]

    # data efficiency: the prior and both networks on 2 and 4 frames (seed 0); the 4-frame models are the main grid's
    de = list(csv.DictReader((study.results_dir / "data_efficiency.csv").open()))
    assert sorted((r["architecture"], r["mode"], r["frames"]) for r in de) == sorted(
        (a, m, n) for a, m in (("prior", "prior_only"), ("pair_mlp", "ml_only"), ("pair_mlp", "delta")) for n in "24")
    main = {(r["architecture"], r["mode"]): r for r in hexane_rows if r["seed"] == "0" and r["replica"] == "0"}
    for r in de:
        assert float(r["force_rmse"]) > 0 and r["stable_nvt"] in ("True", "False")
        if r["frames"] == "4":
            assert float(r["force_rmse"]) == pytest.approx(float(main[r["architecture"], r["mode"]]["force_rmse"]), rel=1e-5)
    assert not [t for t in build_plan(study) if t.name.startswith("hexane-ua_3bead_com/data_efficiency/train/")
                and t.meta["frames"] == 4]
    assert (study.results_dir / "data_efficiency_hexane-ua_3bead_com.png").stat().st_size > 0
    assert "| pair_mlp Δ |" in (study.results_dir / "data_efficiency.md").read_text()

    # a re-run does no finished work again; only the failed task is retried
    log.clear()
    run_study(config, "test", log=log.append)
    assert [line.split()[1] for line in log if line.startswith("queued")] == ["atomistic/cyclohexane-ua"]

    # a longer MD re-runs MD and evaluation, not data, prior or training
    config = _tiny_study(tmp_path, md_steps=80)
    log.clear()
    run_study(config, "test", log=log.append)
    started = {line.split()[1] for line in log if line.startswith("queued")}
    assert started and all("/md/" in name or "/eval_" in name for name in started
                           if name.startswith("hexane") and "/data_efficiency/" not in name)
    nvt = json.loads((tmp_path / "work" / "hexane-ua_3bead_com" / "md" / "pair_mlp_delta_s0_nvt_r0" / "run" / "run.json").read_text())
    assert nvt["steps"] == 80


def test_learning_curves_cover_every_finished_main_grid_training(tmp_path):
    """One figure per mapping from the main grid's learning_curve.csv files (data-efficiency trainings left out), with
    the prior's validation RMSE from its fit report; an epoch without a validation value is a gap, not an error."""
    study = load_study(SHIPPED, "cpu")
    study.work_dir = tmp_path / "work"
    tasks = build_plan(study)
    hexane = "hexane-ua_3bead_com"
    trains = [t for t in tasks if t.fn == "train" and t.meta["mapping"] == hexane]
    states = {}
    for i, task in enumerate(trains):
        task.out.mkdir(parents=True)
        (task.out / "learning_curve.csv").write_text("epoch,train/force_rmse,val/force_rmse\n0,13.0,12.9\n1,12.6,\n2,12.5,12.6\n")
        states[task.name] = {"status": "done", "result": {"converged": i % 2 == 0}}
    (tmp_path / "prior").mkdir()
    (tmp_path / "prior" / "report.json").write_text(json.dumps({"errors": {"val": {"force_rmse": 12.4}}}))
    states[f"{hexane}/prior"] = {"status": "done", "result": {"prior": str(tmp_path / "prior" / "prior.json")}}

    found = main_grid_trainings(tasks, states)
    assert list(found) == [hexane] and len(found[hexane]) == 2 * 2 * 3  # 2 architectures × 2 modes × 3 seeds
    assert prior_val_rmse(states, hexane) == 12.4 and prior_val_rmse(states, "spce-water_1bead_com") is None
    curve = read_curve(trains[0].out / "learning_curve.csv")
    assert curve["epoch"] == [0, 1, 2] and math.isnan(curve["val/force_rmse"][1])
    written = plot_learning_curves(tasks, states, tmp_path / "results")
    assert [p.name for p in written] == [f"learning_curves_{hexane}.png"] and written[0].stat().st_size > 0


def test_results_of_a_study_where_everything_failed_are_still_written(tmp_path):
    """Failed and skipped cells are rows with empty values; the summary and the figures are still produced."""
    from cgzoo.study.results import write_results

    study = load_study(SHIPPED, "cpu")
    study.mappings = study.mappings[:2]
    tasks = build_plan(study)
    states = {t.name: {"status": "skipped", "error": "depends on atomistic/spce-water"} for t in tasks}
    written = write_results(tasks, states, tmp_path, ["# nothing ran"])
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    # per mapping: the prior (3 seeds × 3 replicas), pair_mlp ML only and Δ (× 3 seeds × 3 replicas), and one row without
    # MD for each schnet model (2 modes × 3 seeds)
    assert len(rows) == 2 * (9 + 18 + 6) and all(r["force_rmse"] == "" and r["stable_nvt"] == "" for r in rows)
    summary = (tmp_path / "summary.md").read_text()
    assert "Δ vs ML only better/tie/worse 0/0/0" in summary
    assert "NPT density" not in summary  # the CPU preset runs no NPT ensemble: no column for it
    assert all(p.exists() for p in written)


def test_findings_call_better_only_where_intervals_separate():
    """Run metrics compare intervals; the force error compares models frame by frame on the same held-out frames."""
    import numpy as np

    from cgzoo.intervals import bootstrap_interval, rmse_interval
    from cgzoo.study.results import FrameErrors, findings, study_metrics

    rng = np.random.default_rng(0)
    frames = np.arange(60)
    counts = np.full(60, 300.0)
    hard = rng.gamma(2.0, 1.0, 60) * counts  # per-frame squared errors, very different from frame to frame

    def cell(squared_by_seed, rdf_by_seed, stable=(2, 2)):
        out = {m.column: bootstrap_interval([]) for m in study_metrics()}
        errors = FrameErrors(frames, np.stack(squared_by_seed), counts)
        out.update(force_rmse=rmse_interval(errors.squared, counts), frame_errors=errors,
                   rdf_error=bootstrap_interval([[v] for v in rdf_by_seed]))
        return {**out, "stability": stable, "n_seeds": len(squared_by_seed)}

    key = ("w", 1, "com", "w_1bead_com")
    noise = [1.0 + 0.01 * rng.standard_normal(60) for _ in range(3)]
    agg = {(*key, "prior", "prior_only"): cell([hard], [0.10, 0.11, 0.09]),
           (*key, "net", "ml_only"): cell([hard * 1.02] * 3, [0.30, 0.32, 0.31], (1, 2)),  # 1 % worse on every frame
           (*key, "net", "delta"): cell([hard * n for n in noise], [0.10, 0.12, 0.09])}
    lines = findings(agg, ["nvt"])
    force, rdf = (next(line for line in lines if line.startswith(f"- **{label}")) for label in ("force RMSE", "g(r)"))
    # forces, paired: Δ (prior + noise) vs ML only (1 % worse everywhere): better; Δ vs prior: a tie; ML only: worse
    assert "net: Δ vs ML only better/tie/worse 1/0/0; Δ vs prior better/tie/worse 0/1/0; " \
           "ML only vs prior better/tie/worse 0/0/1" in force
    assert "net: Δ vs ML only better/tie/worse 1/0/0; Δ vs prior better/tie/worse 0/1/0; " \
           "ML only vs prior better/tie/worse 0/0/1" in rdf
    assert "ML only 1/2" in "\n".join(lines) and "Δ 2/2" in "\n".join(lines)
    # one seed each for a run metric: no interval, no evidence, every comparison a tie
    for a in agg.values():
        a["rdf_error"] = bootstrap_interval([[a["rdf_error"].estimate]])
    rdf = next(line for line in findings(agg, ["nvt"]) if line.startswith("- **g(r)"))
    assert "net: Δ vs ML only better/tie/worse 0/1/0; Δ vs prior better/tie/worse 0/1/0" in rdf


def test_a_votca_xml_mapping_is_a_grid_point(tmp_path):
    """``<system>_<n>bead_<operator>.xml`` in the study's mappings_dir is found like a YAML mapping."""
    from tests.test_mapping import HEXANE_3BEAD_XML

    (tmp_path / "hexane-ua_3bead_votca.xml").write_text(HEXANE_3BEAD_XML)
    data = yaml.safe_load(SHIPPED.read_text())
    data["grid"].update(mappings_dir=str(tmp_path), systems={"hexane-ua": ["3bead_votca"]},
                        zoo_dir=str(ROOT / "models"))
    data["grid"]["priors"] = {k: str(ROOT / v) for k, v in data["grid"]["priors"].items()}
    data["presets"]["cpu"].pop("only")
    data["presets"]["cpu"].pop("data_efficiency")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    (cell,) = load_study(path, "cpu").mappings
    assert (cell.system, cell.beads_per_molecule, cell.operator) == ("hexane-ua", 3, "votca")
    assert cell.path.suffix == ".xml"


def test_progress_line_counts_tasks_and_estimates_the_time_left_once_every_kind_was_timed():
    from cgzoo.study.runner import progress

    assert progress(3, 10, 120.0, {"train": [60.0]}, ["train", "simulate"], 2) == "[3/10, 2.0 min]"
    # 2 trainings of 60 s and 1 run of 240 s left on 2 workers: (60 + 60 + 240) / 2 s = 3 min
    assert progress(3, 10, 120.0, {"train": [30.0, 90.0], "simulate": [240.0]}, ["train", "train", "simulate"], 2) \
        == "[3/10, 2.0 min, ~3 min left]"
