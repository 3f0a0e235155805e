"""Fault suite, outputs: one writer per output, nothing under a final name until complete, damaged data refused.

Each writing command is tried against a second writer holding its output, killed with SIGKILL in the
middle of writing and then re-run as the README documents (the same command), and fed damaged datasets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from cgzoo.cli import main
from cgzoo.data.dataset import CGDataset, verify_checksums
from cgzoo.errors import InputError
from cgzoo.generate import run_generate
from cgzoo.outputs import atomic_dir, atomic_file, output_lock

pytestmark = [pytest.mark.faults, pytest.mark.filterwarnings("ignore:.*cutoff reduced")]

ROOT = Path(__file__).parents[1]
WATER_MAPPING = ROOT / "datasets" / "mappings" / "spce-water_1bead_com.yaml"
FM_PAIR_SPEC = """split: {fractions: [0.8, 0.1, 0.1], blocks: 4, gap: 1, seed: 0}
terms:
  - {fit: force_matching, cutoff: 4.5, pair_spacing: 0.25, bonds: false, angles: false, dihedrals: false}
"""


@pytest.fixture(scope="module")
def water_run(tmp_path_factory) -> Path:
    """A tiny atomistic SPC/E run with 40 frames (enough for fm_pair.yaml's split and to kill a map mid-way)."""
    out = tmp_path_factory.mktemp("faults") / "water"
    return run_generate("spce-water", out, n_molecules=40, equil_ps=0.2, prod_ps=0.8, save_every_fs=20.0, seed=3,
                        threads=1, progress=False)


@pytest.fixture(scope="module")
def fm_pair(tmp_path_factory) -> Path:
    """A force-matched pair prior spec whose cutoff fits the tiny box."""
    path = tmp_path_factory.mktemp("faults_spec") / "fm_pair.yaml"
    path.write_text(FM_PAIR_SPEC)
    return path


@pytest.fixture(scope="module")
def water_h5(water_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults_ds") / "water.h5"
    assert main(["map", "--top", str(water_run), "--mapping", str(WATER_MAPPING), "--out", str(out), "--quiet"]) == 0
    return out


def _one_line_error(capsys, code: int, *needles: str) -> str:
    """Assert exit 2 and a single stderr line containing every needle; return it."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


class HeldLock:
    """Another process holding the writer lock of a path, as a concurrent cgzoo command would."""

    def __init__(self, path: Path) -> None:
        code = f"from cgzoo.outputs import output_lock\nimport sys, time\nwith output_lock({str(path)!r}):\n" \
               "    print('held', flush=True)\n    time.sleep(60)\n"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def __enter__(self) -> "HeldLock":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()


def test_outputs_library_is_atomic_and_exclusive(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.glob(".out.txt.tmp-*"))
    with atomic_dir(tmp_path / "d", False, marker="a", what="test output") as tmp:
        (tmp / "a").write_text("1")
    with atomic_dir(tmp_path / "d", True, marker="a", what="test output") as tmp:
        (tmp / "a").write_text("2")
        assert (tmp_path / "d" / "a").read_text() == "1"  # the old output stays until the new one is complete
    assert (tmp_path / "d" / "a").read_text() == "2"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="is not a cgzoo test output .*will not delete it"):
        with atomic_dir(tmp_path / "mine", True, marker="a", what="test output"):
            pass
    assert (tmp_path / "mine" / "thesis.tex").exists()
    with HeldLock(target):
        with pytest.raises(Exception, match="another cgzoo process is writing"):
            with output_lock(target):
                pass
    with output_lock(target), output_lock(target):  # re-entrant within one process
        pass


@pytest.mark.parametrize("verb", ["map", "convert", "fit-prior"])
def test_a_second_writer_is_refused_in_one_line(verb, water_run, water_h5, fm_pair, tmp_path, capsys):
    out = tmp_path / ("out.h5" if verb != "fit-prior" else "prior")
    argv = {
        "map": ["map", "--top", str(water_run), "--mapping", str(WATER_MAPPING), "--out", str(out), "--quiet"],
        "convert": ["convert", str(water_h5), str(out)],
        "fit-prior": ["fit-prior", "--data", str(water_h5), "--prior", str(fm_pair), "--out", str(out), "--no-plots",
                      "--quiet"],
    }[verb]
    with HeldLock(out):
        _one_line_error(capsys, main(argv), str(out), "another cgzoo process is writing")
    assert not out.exists()
    assert main(argv) == 0  # once the other writer is gone the same command succeeds


def test_two_real_map_processes_to_one_output(water_run, tmp_path):
    out = tmp_path / "race.h5"
    argv = [sys.executable, "-m", "cgzoo", "map", "--top", str(water_run), "--mapping", str(WATER_MAPPING),
            "--out", str(out), "--quiet", "--chunk-size", "1"]
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    err = next(e for c, e in results if c == 2).strip()  # locked out, or (if it started late) the output exists
    assert len(err.splitlines()) == 1 and ("another cgzoo process" in err or "already exists" in err), err
    ds = CGDataset.load(out)  # whatever happened, the file is one complete, verified dataset
    assert ds.n_frames == 40 and (ds.topology.masses > 0).all()
    assert ds.provenance["command"].startswith("cgzoo map --top ")  # `python -m cgzoo` is recorded as the command


def _killed_run(tmp_path: Path, argv: list[str], module: str, attr: str, after_calls: int = 1) -> None:
    """Run ``cgzoo argv`` in a fresh interpreter that SIGKILLs itself once ``module.attr`` returned ``after_calls`` times."""
    owner, _, name = attr.rpartition(".")
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(f"""
        import importlib, os, signal
        from cgzoo.cli import main
        target = importlib.import_module({module!r})
        for part in {owner!r}.split(".") if {owner!r} else []:
            target = getattr(target, part)
        original, calls = getattr(target, {name!r}), []

        def dying(*args, **kwargs):
            result = original(*args, **kwargs)
            calls.append(1)
            if len(calls) >= {after_calls}:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(target, {name!r}, dying)
        main({argv!r})
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("suffix", [".h5", ".extxyz"])
def test_map_killed_mid_write_leaves_nothing_and_reruns(suffix, water_run, tmp_path):
    out = tmp_path / f"cg{suffix}"
    argv = ["map", "--top", str(water_run), "--mapping", str(WATER_MAPPING), "--out", str(out), "--quiet",
            "--chunk-size", "2"]
    if suffix == ".h5":  # killed after 2 of 20 chunks were appended
        _killed_run(tmp_path, argv, "cgzoo.data.dataset", "DatasetWriter.append", after_calls=2)
    else:  # killed once every frame is written to the temporary, before the rename
        _killed_run(tmp_path, argv, "cgzoo.data.export", "write_extxyz")
    assert not out.exists()  # nothing under the final name
    assert list(tmp_path.glob(f".{out.name}.tmp-*"))  # the killed writer's temporary is there ...
    assert main(argv) == 0  # ... and the documented recovery, the same command, works and removes it
    assert not list(tmp_path.glob(f".{out.name}.tmp-*"))
    if suffix == ".h5":
        assert CGDataset.load(out).n_frames == 40 and verify_checksums(out)
    else:
        from ase.io import read

        assert len(read(out, index=":")) == 40


def test_fit_prior_killed_before_its_report_leaves_no_prior(water_h5, fm_pair, tmp_path):
    out = tmp_path / "prior"
    argv = ["fit-prior", "--data", str(water_h5), "--prior", str(fm_pair), "--out", str(out), "--quiet",
            "--export", "lammps"]
    # killed after prior.json's neighbours (tables, plots, report.json, report.md) are written
    _killed_run(tmp_path, argv, "cgzoo.fitting.spec", "markdown_report")
    assert not out.exists()
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} >= {"prior.json", "report.json", "report.md", "plots", "tables"}
    assert not list(tmp_path.glob(".prior.tmp-*"))


def _damage(path: Path, how: str) -> None:
    """Damage a dataset file the ways a user's disk, editor or foreign writer does."""
    if how == "overwrite_50kb":
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.seek(size // 2)
            fh.write(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
        return
    with h5py.File(path, "r+") as h5:
        keep_checksums = how.endswith("_checked")
        if how.startswith("zero_masses"):
            h5["masses"][...] = 0.0
        elif how.startswith("zero_box"):
            h5["box"][...] = 0.0
        elif how == "flip_one_force_checked":
            h5["forces"][3, 5, 1] += 1.0
        if not keep_checksums:
            del h5.attrs["checksums"]  # a foreign writer that keeps none: the sanity checks must catch it


@pytest.mark.parametrize("how, message", [
    ("overwrite_50kb", ""),
    ("zero_masses", "mass 0.0"),
    ("zero_box", "cell of zero volume"),
    ("zero_masses_checked", "checksum of 'masses'"),
    ("flip_one_force_checked", "checksum of 'forces'"),
])
def test_damaged_datasets_fail_info_and_fit_in_one_line(how, message, water_h5, fm_pair, tmp_path, capsys):
    path = tmp_path / "damaged.h5"
    path.write_bytes(water_h5.read_bytes())
    _damage(path, how)
    _one_line_error(capsys, main(["info", str(path)]), str(path), message)
    _one_line_error(capsys, main(["fit-prior", "--data", str(path), "--prior", str(fm_pair), "--out",
                                  str(tmp_path / "p"), "--no-plots", "--quiet"]), str(path), message)
    assert not (tmp_path / "p").exists()


def test_info_reports_verified_checksums(water_h5, capsys):
    assert main(["info", str(water_h5)]) == 0
    assert "checksums         verified" in capsys.readouterr().out


def test_writer_refuses_nan_and_flat_cells_before_writing(cg_dataset, tmp_path):
    bad = CGDataset(**{**cg_dataset.__dict__, "boxes": np.zeros_like(cg_dataset.boxes)})
    with pytest.raises(InputError, match="frame 0 has a cell of zero volume"):
        bad.save(tmp_path / "flat.h5")
    nan = cg_dataset.forces.copy()
    nan[2, 1, 0] = np.nan
    with pytest.raises(InputError, match="frame 2 has NaN or infinite forces"):
        CGDataset(**{**cg_dataset.__dict__, "forces": nan}).save(tmp_path / "nan.h5")
    assert not list(tmp_path.iterdir()) or all(p.name.endswith(".lock") for p in tmp_path.iterdir())


@pytest.mark.parametrize("verb", ["fit-prior", "evaluate", "export"])
def test_overwrite_never_deletes_a_directory_cgzoo_did_not_write(verb, water_h5, fm_pair, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    argv = {"fit-prior": ["fit-prior", "--data", str(water_h5), "--prior", str(fm_pair), "--out", str(out), "--quiet"],
            "evaluate": ["evaluate", "--reference", str(water_h5), "--run", f"a={tmp_path}", "--out", str(out)],
            "export": ["export", "--model", str(tmp_path), "--start", str(water_h5), "--engine", "lammps",
                       "--out", str(out)]}[verb]
    _one_line_error(capsys, main([*argv, "--overwrite"]), str(out), "will not delete it")
    assert (out / "thesis.tex").read_text() == "years of work"


def test_unwritable_output_is_named_not_blamed_on_another_process(water_h5, tmp_path, capsys):
    _one_line_error(capsys, main(["convert", str(water_h5), "/proc/cgzoo_test.h5"]), "/proc/cgzoo_test.h5",
                    "cannot write here")


def test_interrupt_is_one_line_and_leaves_no_output(water_run, tmp_path):
    out = tmp_path / "int.h5"
    script = tmp_path / "interrupt.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import cgzoo.data.dataset as dataset
        from cgzoo.cli import main
        original = dataset.DatasetWriter.append

        def interrupted(self, *args):
            original(self, *args)
            raise KeyboardInterrupt

        dataset.DatasetWriter.append = interrupted
        sys.exit(main(["map", "--top", {str(water_run)!r}, "--mapping", {str(WATER_MAPPING)!r}, "--out", {str(out)!r},
                       "--quiet"]))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == 130 and proc.stderr.strip() == "cgzoo map: interrupted", proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".int.h5.tmp-*"))


def test_map_bad_output_paths_and_chunk_size(water_run, tmp_path, capsys):
    base = ["map", "--top", str(water_run), "--mapping", str(WATER_MAPPING), "--quiet"]
    (tmp_path / "dir.h5").mkdir()
    _one_line_error(capsys, main([*base, "--out", str(tmp_path / "dir.h5")]), "is a directory")
    _one_line_error(capsys, main([*base, "--out", str(tmp_path / "dir.h5"), "--overwrite"]), "is a directory")
    _one_line_error(capsys, main([*base, "--out", str(tmp_path / "x.h5"), "--chunk-size", "0"]), "--chunk-size")
    _one_line_error(capsys, main([*base, "--out", str(tmp_path / "x.csv")]), "unknown dataset suffix")
    assert not (tmp_path / "x.h5").exists()


def test_study_killed_then_rerun_completes(tmp_path, monkeypatch):
    """SIGKILL to a running study (all its processes), then the same command: finished tasks are kept, the rest run."""
    from test_study import _tiny_study

    from cgzoo.study import run_study

    monkeypatch.chdir(tmp_path)
    config = _tiny_study(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "cgzoo.cli", "study", str(config), "--preset", "test"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:  # kill as soon as the atomistic data are done and the mapping is queued
        if line.startswith("done   atomistic/hexane-ua"):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log: list[str] = []
    _, states = run_study(config, "test", log=log.append)
    assert all(s["status"] == "done" for n, s in states.items() if n.startswith("hexane-ua_"))
    assert "atomistic/hexane-ua" not in {line.split()[1] for line in log if line.startswith("queued")}
