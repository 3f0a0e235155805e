"""Fault suite, second sweep: bad inputs a reviewer found after the first round of hardening, each one line or refused."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset
from cgzoo.errors import CGZooError, InputError
from cgzoo.models import build_network
from cgzoo.neighbors import CellTooSmall
from cgzoo.priors import load_prior
from cgzoo.priors.lennard_jones import LennardJones
from cgzoo.schema import parse_yaml

pytestmark = pytest.mark.faults
ROOT = Path(__file__).parents[1]
DEFAULT = ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"


def one_line(capsys, code: int, *needles: str) -> str:
    """Assert exit 2 with one stderr line holding every needle."""
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("text", ["hello\n", "a: 1\n", "\x00" * 64])
def test_any_non_checkpoint_as_model_is_one_line(text, tmp_path, capsys):
    model = tmp_path / "model.ckpt"
    model.write_text(text)
    code = main(["simulate", "--model", str(model), "--start", f"{DEFAULT}@0", "--out", str(tmp_path / "run"),
                 "--steps", "2"])
    one_line(capsys, code, str(model), "not a readable checkpoint")
    assert not (tmp_path / "run").exists()


def test_training_config_files_and_values(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("seed: [\n")
    one_line(capsys, main(["fit", "--config", str(tmp_path / "none.yaml")]), "none.yaml", "does not exist")
    one_line(capsys, main(["fit", "--config", str(tmp_path)]), "is a directory")
    one_line(capsys, main(["fit", f"--config={tmp_path / 'bad.yaml'}"]), "bad.yaml", "not valid YAML")
    one_line(capsys, main(["fit", "--config", str(ROOT / "models" / "pair_mlp.yaml"), "--config",
                          str(ROOT / "models" / "modes" / "delta.yaml"), "--model.lr", "-1"]),
             "--model.lr")


@pytest.mark.parametrize("network", ["pair_mlp", "schnet", "equivariant"])
def test_networks_refuse_a_cutoff_that_sees_nothing(network):
    for cutoff in (-1.0, 0.0, float("nan")):
        with pytest.raises(ValueError, match="cutoff must be a positive"):
            build_network(network, ["A"], cutoff=cutoff)


def test_cell_too_small_is_a_user_error():
    assert issubclass(CellTooSmall, CGZooError)


def test_lennard_jones_switch_must_lie_inside_the_cutoff():
    params = {"A-A": {"sigma": 3.0, "epsilon": 0.2}}
    with pytest.raises(ValueError, match="r_switch must lie in"):
        LennardJones(["A"], params, cutoff=5.0, r_switch=7.0)
    with pytest.raises(ValueError, match="cutoff must be positive"):
        LennardJones(["A"], params, cutoff=-5.0)


def test_prior_files_deep_incomplete_or_from_the_future(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"format": "cgzoo-prior", "version": 1, "prior": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError, match="nested too deeply"):
        load_prior(deep)
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"format": "cgzoo-prior", "version": 99, "prior": {"class_path": "no_prior"}}))
    with pytest.raises(InputError, match="version 99"):
        load_prior(future)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"format": "cgzoo-prior", "version": 1}))
    with pytest.raises(InputError, match="missing key 'prior'"):
        load_prior(missing)


def test_evaluate_refuses_empty_histograms(tmp_path, capsys):
    for option, value in (("--bins", "0"), ("--r-max", "-3")):
        code = main(["evaluate", "--reference", str(DEFAULT), "--run", f"a={tmp_path}", "--out", str(tmp_path / "e"),
                     option, value])
        one_line(capsys, code, "--bins")


def test_zero_frames_and_damaged_checksum_records(cg_dataset, tmp_path, capsys):
    path = cg_dataset.save(tmp_path / "ds.h5")
    empty = tmp_path / "empty.h5"
    empty.write_bytes(path.read_bytes())
    with h5py.File(empty, "r+") as h5:
        for key in ("positions", "forces", "box", "time"):
            h5[key].resize(0, axis=0)
        del h5.attrs["checksums"]
    one_line(capsys, main(["info", str(empty)]), "has no frames")
    for record in ("{}", "[1, 2]", json.dumps({"forces": "0" * 64})):
        damaged = tmp_path / "damaged.h5"
        damaged.write_bytes(path.read_bytes())
        with h5py.File(damaged, "r+") as h5:
            h5["forces"][0, 0, 0] += 1.0
            h5.attrs["checksums"] = record
        one_line(capsys, main(["info", str(damaged)]), "damaged")
    with pytest.raises(InputError, match="no frames to write"):
        CGDataset(**{**cg_dataset.__dict__, "positions": cg_dataset.positions[:0], "forces": cg_dataset.forces[:0],
                     "boxes": cg_dataset.boxes[:0], "times": cg_dataset.times[:0]}).save(tmp_path / "none.h5")


def test_yaml_numbers_in_exponent_form():
    assert parse_yaml("a: 1e-3\nb: -2E5\nc: 5\nd: 1e\n", "x.yaml") == {"a": 1e-3, "b": -2e5, "c": 5, "d": "1e"}


def test_study_seeds_must_be_distinct(tmp_path, capsys):
    doc = yaml.safe_load((ROOT / "experiments" / "delta_study" / "study.yaml").read_text())
    doc["presets"]["cpu"]["seeds"] = [0, 0]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(doc))
    one_line(capsys, main(["study", str(tmp_path / "study.yaml"), "--preset", "cpu", "--workers", "1"]),
             "seeds must be distinct")
    with pytest.raises(SystemExit):  # argparse's own usage error
        main(["study", str(tmp_path / "study.yaml"), "--preset", "cpu", "--workers", "0"])


def test_type_names_with_dash_are_refused_where_they_enter(tmp_path):
    mapping = yaml.safe_load((ROOT / "datasets" / "mappings" / "spce-water_1bead_com.yaml").read_text())
    mapping["molecules"][0]["beads"][0]["type"] = "W-2"
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(mapping))
    from cgzoo.mapping import load_mapping

    with pytest.raises(InputError, match="may not contain '-'"):
        load_mapping(tmp_path / "m.yaml")


def test_gromacs_tables_refuse_colliding_file_names(tmp_path):
    from cgzoo.tables import write_gromacs
    from cgzoo.priors.tabulated import Tabulated

    names = ["a", "a_a", "a_a_a"]
    x = np.linspace(0.5, 5.0, 50)
    keys = [f"{names[i]}-{names[j]}" for i in range(3) for j in range(i, 3)]
    prior = Tabulated(names, "pair", {k: {"x": x.tolist(), "u": np.exp(-x).tolist()} for k in keys})
    with pytest.raises(InputError, match="rename the bead types without '_'"):
        write_gromacs(prior, tmp_path)


def test_restart_refuses_another_start_and_overwrite(tmp_path, capsys):
    prior = tmp_path / "prior"
    spec = tmp_path / "lj.yaml"
    spec.write_text("terms:\n  - class_path: lennard_jones\n    init_args: {cutoff: 7.0, params: {W-W: {sigma: 3.1, epsilon: 0.15}}}\n")
    assert main(["fit-prior", "--data", str(DEFAULT), "--prior", str(spec), "--out", str(prior), "--no-plots",
                 "--quiet"]) == 0
    run = ["simulate", "--model", str(prior), "--out", str(tmp_path / "run"), "--engine", "ase", "--quiet"]
    assert main([*run, "--start", f"{DEFAULT}@0", "--steps", "4", "--save-every", "2"]) == 0
    one_line(capsys, main([*run, "--restart", "--start", f"{DEFAULT}@5", "--steps", "8"]), "drop --start")
    one_line(capsys, main([*run, "--restart", "--overwrite", "--steps", "8"]), "give one of them")
    assert main([*run, "--restart", "--start", f"{DEFAULT}@0", "--steps", "8"]) == 0
