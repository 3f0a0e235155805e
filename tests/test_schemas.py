"""Typed input schemas and split checks: every bad prior spec, study file, mapping or split setting is one line
naming the file and key, exit 2, no traceback (issue 14, items 4 and 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from cgzoo.cli import main
from cgzoo.data.splits import SplitError, block_split
from cgzoo.errors import InputError, MappingError
from cgzoo.fitting.spec import load_spec
from cgzoo.mapping import load_mapping
from cgzoo.models.registry import NETWORKS
from cgzoo.study import load_study
from conftest import make_dataset

pytestmark = pytest.mark.faults
ROOT = Path(__file__).parents[1]
FM_PAIR = ROOT / "datasets" / "priors" / "fm_pair.yaml"
LJ = ROOT / "datasets" / "priors" / "lj.yaml"
STUDY = ROOT / "experiments" / "delta_study" / "study.yaml"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    """A 40-frame synthetic CG dataset (enough for 5 blocks with gap 2)."""
    return str(make_dataset(n_frames=40).save(tmp_path_factory.mktemp("data") / "cg.h5"))


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI, check it failed as a user error (exit 2, one line, no traceback) and return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    return err


def edited(source: Path, edit, tmp_path: Path, name: str = "prior.yaml") -> Path:
    """``source`` YAML with ``edit`` applied to its data, written to ``tmp_path / name``."""
    data = yaml.safe_load(source.read_text())
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("source, edit, message", [
    (FM_PAIR, lambda d: d.update(splitt=d.pop("split")),
     "prior.yaml: unknown key(s) splitt (allowed: split, max_frames, temperature, terms, pressure)"),
    (FM_PAIR, lambda d: d["terms"][0].update(pair_spacing=-0.2), "prior.yaml: terms[0].pair_spacing: must be > 0 (got -0.2)"),
    (FM_PAIR, lambda d: d["terms"][0].update(pair_spacing=0), "prior.yaml: terms[0].pair_spacing: must be > 0 (got 0)"),
    (FM_PAIR, lambda d: d["terms"][0].update(pair_spacing=[0.1, 0.2]),
     "prior.yaml: terms[0].pair_spacing: must be a valid number (got [0.1, 0.2])"),
    (LJ, lambda d: d["terms"][0]["init_args"].update(cutoff=-9.0), "prior.yaml: terms[0].init_args.cutoff: must be > 0 (got -9.0)"),
    (FM_PAIR, lambda d: d.update(temperature=-5), "prior.yaml: temperature: must be > 0 (got -5)"),
    (FM_PAIR, lambda d: d["split"].update(gap=-1), "prior.yaml: split.gap: must be >= 0 (got -1)"),
    (FM_PAIR, lambda d: d["terms"][0].update(bondz=False), "prior.yaml: terms[0]: unknown key(s) bondz (allowed: fit,"),
    (LJ, lambda d: d["terms"][0].pop("class_path"), "prior.yaml: terms[0].class_path: required key is missing"),
])
def test_bad_prior_spec_is_one_line(capsys, tmp_path, dataset, source, edit, message):
    spec = edited(source, edit, tmp_path)
    assert message in one_line_error(capsys, ["fit-prior", "--data", dataset, "--prior", str(spec), "--out",
                                              str(tmp_path / "out"), "--quiet"])
    assert not (tmp_path / "out").exists()


def test_prior_spec_directory_or_missing_is_one_line(capsys, tmp_path, dataset):
    out = str(tmp_path / "out")
    assert "is a directory, not a file" in one_line_error(capsys, ["fit-prior", "--data", dataset, "--prior", str(tmp_path),
                                                                   "--out", out, "--quiet"])
    assert "nope.yaml: prior spec does not exist" in one_line_error(
        capsys, ["fit-prior", "--data", dataset, "--prior", str(tmp_path / "nope.yaml"), "--out", out, "--quiet"])


def test_prior_class_rejecting_its_arguments_names_the_term(capsys, tmp_path, dataset):
    spec = tmp_path / "prior.yaml"
    spec.write_text(yaml.safe_dump({"split": {"fractions": [0.6, 0.2, 0.2], "blocks": 5},
                                    "terms": [{"class_path": "lennard_jones", "init_args": {"cutoff": 5.0, "smoothing": "wiggly",
                                                                                             "params": {}}}]}))
    err = one_line_error(capsys, ["fit-prior", "--data", dataset, "--prior", str(spec), "--out", str(tmp_path / "o"), "--quiet"])
    assert "prior.yaml: terms[0] (lennard_jones): LennardJones: smoothing must be one of" in err


def test_shipped_prior_specs_stay_valid():
    for path in sorted((ROOT / "datasets" / "priors").glob("*.yaml")):
        assert load_spec(path) == yaml.safe_load(path.read_text())


@pytest.mark.parametrize("args, message", [
    (["--gap", "-1"], "split: gap must be an integer >= 0, got -1"),
    (["--fractions", "0.5", "0.5", "0.5"], "split: fractions must be positive and sum to 1, got [0.5, 0.5, 0.5]"),
    (["--fractions", "1.2", "-0.1", "-0.1"], "split: fractions must be positive and sum to 1"),
    (["--fractions", "0.8", "0.2", "0"], "split: fractions must be positive and sum to 1"),
    (["--blocks", "10", "--gap", "4"], "the dataset has 40 frames, and 10 blocks with gap 4 need at least 50"),
    (["--blocks", "50"], "split: the dataset has 40 frames, fewer than the 50 blocks"),
])
def test_bad_split_is_one_line(capsys, dataset, args, message):
    assert message in one_line_error(capsys, ["split", dataset, *args])


def test_bad_split_in_prior_spec_names_the_spec(capsys, tmp_path, dataset):
    spec = edited(FM_PAIR, lambda d: d.update(split={"fractions": [0.6, 0.2, 0.2], "blocks": 10, "gap": 4}), tmp_path)
    err = one_line_error(capsys, ["fit-prior", "--data", dataset, "--prior", str(spec), "--out", str(tmp_path / "o"), "--quiet"])
    assert "prior.yaml: split: " in err and "would be empty" in err


def test_negative_gap_in_training_is_one_line(capsys, tmp_path, dataset):
    network = sorted(NETWORKS)[0]
    err = one_line_error(capsys, ["fit", "--config", str(ROOT / "models" / f"{network}.yaml"),
                                  "--config", str(ROOT / "models" / "modes" / "ml_only.yaml"), "--data.data", dataset,
                                  "--data.prior", "none", "--data.gap", "-2", "--trainer.max_epochs", "1",
                                  "--trainer.default_root_dir", str(tmp_path / "train")])
    assert "gap" in err and "-2" in err  # rejected by the CLI's type or by block_split, either way in one line


def test_splits_never_overlap_and_are_never_empty():
    for n_frames in (30, 57, 200):
        for gap in (0, 1, 2):
            for seed in range(4):
                try:
                    splits = block_split(n_frames, (0.7, 0.2, 0.1), n_blocks=10, gap=gap, seed=seed)
                except SplitError:
                    continue
                frames = np.concatenate(list(splits.values()))
                assert len(frames) == len(set(frames.tolist())) and all(len(v) for v in splits.values())
    with pytest.raises(ValueError):  # still a ValueError for callers that catch one
        block_split(100, gap=-1)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["presets"]["cpu"].update(seeds="zero"), "study.yaml: presets.cpu.seeds: must be a list (got 'zero')"),
    (lambda d: d["defaults"]["md"].update(temperature_K=-5), "study.yaml: defaults.md.temperature_K: must be > 0 (got -5)"),
    (lambda d: d["defaults"]["atomistic"]["default"].update(temperature=-5),
     "study.yaml: defaults.atomistic.default.temperature: must be > 0 (got -5)"),
    (lambda d: d["presets"]["cpu"]["md"].update(nvt_steps=-10), "presets.cpu.md.nvt_steps: must be > 0 (got -10)"),
    (lambda d: d.update(gird=d.pop("grid")), "study.yaml: unknown key(s) gird (allowed: name, grid, defaults, presets)"),
    (lambda d: d["presets"]["cpu"].update(workers=0), "presets.cpu.workers: must be > 0 (got 0)"),
    (lambda d: d["grid"]["priors"].pop("bonded"), "study.yaml: grid.priors.bonded: required key is missing"),
])
def test_bad_study_file_is_one_line(capsys, tmp_path, edit, message):
    study = edited(STUDY, edit, tmp_path, "study.yaml")
    assert message in one_line_error(capsys, ["study", str(study), "--preset", "cpu"])


def test_study_directory_is_one_line(capsys, tmp_path):
    assert "is a directory, not a file" in one_line_error(capsys, ["study", str(tmp_path), "--preset", "cpu"])
    with pytest.raises(InputError, match="study file does not exist"):
        load_study(tmp_path / "none.yaml", "cpu")


MAPPING = ROOT / "datasets" / "mappings" / "hexane-ua_2bead_com.yaml"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(weight="mass"), "map.yaml: unknown key(s) weight (allowed: name, weights, force_map, molecules)"),
    (lambda d: d["molecules"][0]["beads"][0].update(weights=[1.0, -2.0, 1.0]),
     "map.yaml: molecules[HEX].beads[A].weights[1]: must be >= 0 (got -2.0)"),
    (lambda d: d["molecules"][0]["beads"][0].update(weights=[0, 0, 0]), "beads[A]: weights sum to 0"),
    (lambda d: d["molecules"][0]["beads"][1].update(type="P R"), "molecules[HEX].beads[B].type: must be a non-empty name"),
    (lambda d: d["molecules"][0].update(bonds=[["A", "B", "A"]]), "molecules[HEX].bonds[0]: must have at most 2 item(s)"),
    (lambda d: d["molecules"][0].update(residues="HEX"), "molecules[HEX].residues: must be a list (got 'HEX')"),
])
def test_bad_mapping_is_one_line(tmp_path, edit, message):
    path = edited(MAPPING, edit, tmp_path, "map.yaml")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_mapping_directory_and_bad_votca_weights_are_one_line(tmp_path):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(MappingError, match="dir.yaml: mapping file is a directory"):
        load_mapping(folder)
    xml = tmp_path / "neg.xml"
    xml.write_text("<cg_molecule><name>W</name><topology><cg_beads><cg_bead><name>A</name><type>W</type>"
                   "<mapping>M</mapping><beads>1:SOL:OW 1:SOL:HW1</beads></cg_bead></cg_beads></topology>"
                   "<maps><map><name>M</name><weights>1.0 -3.0</weights></map></maps></cg_molecule>")
    with pytest.raises(MappingError, match=r"neg\.xml: molecules\[W\]\.beads\[A\]\.weights\[1\]: must be >= 0"):
        load_mapping(xml)
