"""The ``cgzoo evaluate`` pipeline: compare CG simulation runs with the mapped reference dataset, observable by observable.

Every registered observable (:mod:`cgzoo.observables.registry`) is measured by the same code for
the reference and each run, on one shared definition: a common r grid (``r_max`` defaults to just
under half the smallest cell width of all trajectories) and the grids each observable takes from
the reference (the reference is measured first, see :mod:`cgzoo.observables.base`). Runs lose
their first ``equil_fs`` fs and every frame from the first non-finite one on (such a run is
reported unstable; a run killed or stopped early, incomplete).

``split="test"`` keeps the reference's held-out frames under the training defaults (fractions
0.8/0.1/0.1, 10 blocks, gap 2, seed 0, as :class:`cgzoo.training.data.CGDataModule`); the
default ``"all"`` uses every frame, the best estimate of the reference ensemble, since a CG
simulation samples new configurations rather than replaying the training frames.
Outputs in ``out``: ``metrics.json``, ``metrics.csv``, ``report.md`` and ``plots/*.png``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgzoo.data.dataset import CGDataset
from cgzoo.data.splits import DEFAULT_SPLIT, block_split
from cgzoo.errors import InputError, check_output_path
from cgzoo.intervals import split_half
from cgzoo.observables import bonded, structure
from cgzoo.observables.base import Observable, Settings
from cgzoo.observables.compare import is_stable
from cgzoo.observables.integrity import bond_ranges, broken_frames
from cgzoo.observables.plots import REFERENCE, format_number, plot_all
from cgzoo.observables.registry import registered_observables
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.outputs import atomic_dir, check_owned_dir, output_lock
from cgzoo.progress import progress_bar
from cgzoo.terms import BONDED
from cgzoo.units import FS_TO_PS

if TYPE_CHECKING:
    from tqdm import tqdm

#: The training split defaults, so ``split="test"`` selects the frames no model was trained on.
TRAINING_SPLIT = DEFAULT_SPLIT
#: metrics.csv columns of every run before the observables' own (:func:`csv_columns`).
RUN_COLUMNS = ("label", "stable", "outcome", "status", "n_frames", "force_rmse_test")


def evaluate(
    reference: str | Path,
    runs: dict[str, str | Path],
    out: str | Path,
    split: str = "all",
    r_max: float | None = None,
    bins: int = 200,
    equil_fs: float = 0.0,
    reference_pressure_bar: float | None = None,
    msd_window_fs: tuple[float, float] | None = None,
    overwrite: bool = False,
    show_progress: bool | None = False,
) -> dict[str, Any]:
    """Measure the reference dataset and every run, write metrics, plots and ``report.md`` to ``out``; return the metrics.

    ``reference_pressure_bar``: what each run's mean pressure is compared with (datasets store none); ``msd_window_fs``:
    the lag window D is fitted over for all (default: 20–80 % of the reference's longest lag); ``show_progress``: a bar
    of the trajectories read and the observables measured (:func:`cgzoo.progress.progress_bar`: None on a terminal
    only, True always, False never).

    ``out`` is locked from the start and appears, complete, only at the end (:mod:`cgzoo.outputs`).
    """
    out = check_output_path(out, overwrite)
    check_owned_dir(out, "metrics.json", "evaluation report")  # before the long measurement, not after
    if bins < 1 or (r_max is not None and not r_max > 0) or not equil_fs >= 0:
        raise InputError(None, f"need --bins ≥ 1, --r-max > 0 and --equil-ps ≥ 0 (got {bins}, {r_max}, "
                               f"{equil_fs / 1000.0} ps)")
    if msd_window_fs is not None and not 0 <= msd_window_fs[0] < msd_window_fs[1]:
        raise InputError(None, f"--msd-window must be two increasing lag times ≥ 0 (got {msd_window_fs[0] * FS_TO_PS:g} "
                               f"and {msd_window_fs[1] * FS_TO_PS:g} ps)")
    with output_lock(out):
        return _evaluate(reference, runs, out, split, r_max, bins, equil_fs, reference_pressure_bar, msd_window_fs,
                         overwrite, show_progress)


def _evaluate(reference: str | Path, runs: dict[str, str | Path], out: Path, split: str, r_max: float | None,
              bins: int, equil_fs: float, reference_pressure_bar: float | None,
              msd_window_fs: tuple[float, float] | None, overwrite: bool, show_progress: bool | None) -> dict[str, Any]:
    """The body of :func:`evaluate`, run while holding ``out``."""
    if not runs:
        raise InputError(None, "give at least one run to evaluate")
    if REFERENCE in runs:
        raise InputError(None, f"a run may not be labelled {REFERENCE!r}")
    with progress_bar(total=1 + len(runs), desc="evaluate: reading", unit="trajectory", show=show_progress) as bar:
        bar.set_postfix_str(REFERENCE)
        ref = load_reference(reference, split)
        bar.update()
        trajs = {}
        for label, path in runs.items():
            bar.set_postfix_str(label)
            trajs[label] = load_run(path, ref.type_names, equil_fs)
            bar.update()
    for label, traj in trajs.items():
        _check_same_terms(ref, traj, runs[label])
    usable = {label: t for label, t in trajs.items() if t.n_frames >= 2}
    r_max = r_max if r_max is not None else min(structure.max_rdf_range(t) for t in [ref, *usable.values()])
    observables = registered_observables()
    settings = Settings(r_max=r_max, bins=bins, reference_pressure_bar=reference_pressure_bar, msd_window_fs=msd_window_fs)
    halves = 2 if ref.n_frames >= 4 else 0
    with progress_bar(total=len(observables) * (1 + len(usable) + halves), desc="evaluate", unit="observable",
                      show=show_progress) as bar:
        bar.set_description(f"evaluate: {REFERENCE}")
        results = {REFERENCE: measure_reference(observables, ref, settings, bar)}
        for label, traj in usable.items():
            bar.set_description(f"evaluate: {label}")
            results[label] = observe(observables, traj, settings, bar)
        bar.set_description(f"evaluate: {REFERENCE} halves (floor)")
        floor = reference_floor(observables, ref, Settings(r_max=r_max, bins=bins,
                                                           reference_pressure_bar=reference_pressure_bar,
                                                           msd_window_fs=msd_window_fs), bar)
    ranges = bond_ranges(ref)
    metrics = {
        "reference": {"path": str(reference), "split": split, "n_frames": ref.n_frames, "bond_ranges_A": ranges,
                      **{k: v for obs in observables for k, v in obs.values(results[REFERENCE][obs.name]).items()}},
        "settings": {"r_max_A": r_max, "rdf_bins": bins,
                     **{k: v for obs in observables for k, v in obs.definition(results[REFERENCE][obs.name]).items()},
                     "equil_fs": equil_fs},
        "runs": {label: {"run_dir": str(runs[label]), "status": traj.status, "stable": is_stable(traj, ranges),
                         "outcome": run_outcome(traj, ranges), "force_rmse_test": _recorded_force_rmse(runs[label]),
                         "n_frames": traj.n_frames, "broken_frames": int(broken_frames(traj, ranges).sum()),
                         **compare_observables(observables, results[REFERENCE], results.get(label))}
                 for label, traj in trajs.items()},
        "floor": floor,
    }
    with atomic_dir(out, overwrite, marker="metrics.json", what="evaluation report") as tmp:
        plots = plot_all(observables, results, trajs, metrics, tmp / "plots")
        write_metrics(metrics, tmp, observables)
        write_markdown(metrics, plots, tmp, observables)
    return metrics


def load_reference(path: str | Path, split: str = "all") -> CGTrajectory:
    """The reference dataset as a trajectory: every frame, or the held-out test frames of the training split."""
    if split not in ("all", "test"):
        raise InputError(None, f"split must be 'all' or 'test', not {split!r}")
    ds = CGDataset.load(path)
    frames = None
    if split == "test":
        try:
            frames = block_split(ds.n_frames, **TRAINING_SPLIT)["test"]
        except ValueError as exc:
            raise InputError(path, f"cannot cut the test split: {exc}") from None
    traj = CGTrajectory.from_dataset(ds, frames)
    traj.source = str(path)
    return traj


def load_run(run_dir: str | Path, type_names: list[str], equil_fs: float = 0.0) -> CGTrajectory:
    """A run's finite frames after ``equil_fs`` fs, bead types ordered as ``type_names`` (the reference's)."""
    traj = CGTrajectory.from_run(run_dir).with_types(type_names)
    finite = traj.select(slice(0, traj.finite_frames()))
    start = finite.times[0] + equil_fs if finite.n_frames else 0.0
    analysed = finite.select(finite.times >= start)
    analysed.status = traj.status if finite.n_frames == traj.n_frames else f"{traj.status} (non-finite frames)"
    return analysed


def run_outcome(traj: CGTrajectory, ranges: dict[str, tuple[float, float]] | None = None) -> str:
    """"stable" (complete, every frame finite, no bond outside the reference's ``ranges``), "unstable" (the guard
    stopped it, or frames went non-finite), "broken" (molecules fell apart: some bond left its range) or "incomplete"
    (killed, stopped early or still running: its frames are fine, there are just fewer of them)."""
    if is_stable(traj, ranges):
        return "stable"
    if traj.status.startswith("unstable") or traj.status.endswith("(non-finite frames)"):
        return "unstable"
    if ranges is not None and broken_frames(traj, ranges).any():
        return "broken"
    return "incomplete"


def reference_floor(observables: Sequence[Observable], ref: CGTrajectory, settings: Settings,
                    bar: tqdm | None = None) -> dict[str, Any] | None:
    """The reference's second half measured against its first (:func:`cgzoo.intervals.split_half`): the error a perfect
    model would show over half the reference's length, below which no run can be judged closer (None under 4 frames)."""
    if ref.n_frames < 4:
        return None
    first, second = (ref.select(frames) for frames in split_half(np.arange(ref.n_frames)))
    measured = measure_reference(observables, first, settings, bar)
    return compare_observables(observables, measured, observe(observables, second, settings, bar))


def measure_reference(observables: Sequence[Observable], ref: CGTrajectory, settings: Settings,
                      bar: tqdm | None = None) -> dict[str, Any]:
    """Measure the reference observable by observable into ``settings.reference``, which later ones and every run use."""
    for obs in observables:
        settings.reference[obs.name] = _measured(obs, ref, settings, bar)
    return dict(settings.reference)


def observe(observables: Sequence[Observable], traj: CGTrajectory, settings: Settings,
            bar: tqdm | None = None) -> dict[str, Any]:
    """Every observable of one run, by name, on the reference's grids."""
    return {obs.name: _measured(obs, traj, settings, bar) for obs in observables}


def _measured(obs: Observable, traj: CGTrajectory, settings: Settings, bar: tqdm | None) -> Any:
    """``obs`` measured on ``traj``, advancing the progress ``bar`` (a :func:`cgzoo.progress.progress_bar`) if given."""
    if bar is not None:
        bar.set_postfix_str(obs.name)
    result = obs.measure(traj, settings)
    if bar is not None:
        bar.update()
    return result


def compare_observables(observables: Sequence[Observable], ref: dict[str, Any], run: dict[str, Any] | None) -> dict[str, Any]:
    """A run's scalars and errors against the reference (every column None where the run has too few frames)."""
    if run is None:
        return {column.key: None for obs in observables for column in obs.columns}
    out: dict[str, Any] = {}
    for obs in observables:
        out.update(obs.values(run[obs.name]))
        out.update(obs.compare(ref[obs.name], run[obs.name]))
    return out


def _check_same_terms(ref: CGTrajectory, run: CGTrajectory, run_dir: str | Path) -> None:
    """Refuse a run whose bonded type keys differ from the reference's (a different CG topology)."""
    for kind in BONDED:
        ref_keys, run_keys = set(bonded.term_keys(ref, kind)), set(bonded.term_keys(run, kind))
        if ref_keys != run_keys:
            raise InputError(run_dir, f"{kind} types {sorted(run_keys)} differ from the reference's {sorted(ref_keys)}")


# --- outputs ---------------------------------------------------------------------------------


def csv_columns(observables: Sequence[Observable]) -> tuple[str, ...]:
    """metrics.csv columns: :data:`RUN_COLUMNS`, then every observable's columns in registry order."""
    return (*RUN_COLUMNS, *(column.key for obs in observables for column in obs.columns))


def write_metrics(metrics: dict[str, Any], out: Path, observables: Sequence[Observable]) -> None:
    """``metrics.json`` (everything, NaN as null) and ``metrics.csv`` (one row per run, :func:`csv_columns`)."""
    (out / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n")
    columns = csv_columns(observables)
    with (out / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for label, m in metrics["runs"].items():
            row = {"label": label, **m}
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])


def _recorded_force_rmse(run_dir: str | Path) -> float | None:
    """The held-out force RMSE ``cgzoo simulate`` recorded for the run's model (kcal/mol/Å), if any."""
    info = json.loads((Path(run_dir) / "run.json").read_text())
    value = info.get("force_rmse_test")
    return None if value is None else float(value)


def write_markdown(metrics: dict[str, Any], plots: dict[str, list[Path]], out: Path,
                   observables: Sequence[Observable]) -> None:
    """``report.md``: what was compared, a summary table (reference first), how to read it, and every plot."""
    ref, settings = metrics["reference"], metrics["settings"]
    intro = (f"Reference: `{ref['path']}` ({ref['split']} frames: {ref['n_frames']}, "
             f"T = {format_number(ref.get('temperature_K'))} K); runs skip their first "
             f"{settings['equil_fs'] * FS_TO_PS:g} ps.")
    columns = [column for obs in observables for column in obs.columns if column.header is not None]
    header = ["run", "stable", "frames", "force RMSE (test)", *(column.header for column in columns)]
    notes = [note for obs in observables if (note := obs.describe(settings))]
    force = ("force RMSE (test) is the model's held-out force error on the reference's test frames (kcal/mol/Å, "
             "per component, recorded by `cgzoo simulate`)")
    legend = "; ".join([force, *notes, "Δx/x are signed relative errors against the reference"]) + \
        ". Smaller magnitudes are better."
    keys = ["force_rmse_test", *(column.key for column in columns)]
    lines = ["# CG model evaluation", "", intro, "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header), _row(REFERENCE, "–", ref, keys),
             *[_row(label, "yes" if m["stable"] else f"**no**: {m['outcome']} ({m['status']})", m, keys)
               for label, m in metrics["runs"].items()],
             *([_row("reference split-half (floor)", "–", {**metrics["floor"], "n_frames": ref["n_frames"] // 2}, keys)]
               if metrics.get("floor") else []),
             "", legend + " The floor row is the reference's second half against its first: the error of a perfect "
             "model with half the reference's data.", ""]
    for section, files in plots.items():
        lines += [f"## {section}", "", *[f"![{f.stem}](plots/{f.name})" for f in files], ""]
    (out / "report.md").write_text("\n".join(lines))


def _row(label: str, stable: str, m: dict[str, Any], keys: list[str]) -> str:
    """One markdown table row of the summary: label, stability, frames and the values of ``keys``."""
    cells = [label, stable, str(m["n_frames"]), *(format_number(m.get(k)) for k in keys)]
    return "| " + " | ".join(cells) + " |"


def json_safe(value: Any) -> Any:
    """Metrics with NaN/inf as None, tuples as lists and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
