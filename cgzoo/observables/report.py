"""The ``cgzoo evaluate`` pipeline: compare CG simulation runs with the mapped reference dataset, observable by observable.

Every observable is computed by the same function for the reference and each run, on one shared
definition: a common r grid (``r_max`` defaults to just under half the smallest cell width of all
trajectories), the reference's first-shell radii for triplet angles and the reference's histogram
edges for bonded distributions. g(r) is intermolecular (see :mod:`cgzoo.observables.structure`).
D is each trajectory's own long-time estimate (MSD fitted over 20–80 % of its longest lag, see
:mod:`cgzoo.observables.dynamics`). Runs lose their first ``equil_fs`` fs and every frame from
the first non-finite one on (such a run is reported unstable; a run killed or stopped early, incomplete).

``split="test"`` keeps the reference's held-out frames under the training defaults (fractions
0.8/0.1/0.1, 10 blocks, gap 2, seed 0, as :class:`cgzoo.training.data.CGDataModule`); the
default ``"all"`` uses every frame, the best estimate of the reference ensemble, since a CG
simulation samples new configurations rather than replaying the training frames.
Outputs in ``out``: ``metrics.json``, ``metrics.csv``, ``report.md`` and ``plots/*.png``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.data.dataset import CGDataset
from cgzoo.data.splits import DEFAULT_SPLIT, block_split
from cgzoo.errors import InputError, check_output_path
from cgzoo.observables import bonded, dynamics, structure, thermo
from cgzoo.observables.compare import is_stable, js_divergence, rdf_error, relative_error
from cgzoo.observables.plots import REFERENCE, format_number, plot_all
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.outputs import atomic_dir, check_owned_dir, output_lock
from cgzoo.terms import BONDED
from cgzoo.units import FS_TO_PS

#: The training split defaults, so ``split="test"`` selects the frames no model was trained on.
TRAINING_SPLIT = DEFAULT_SPLIT
BONDED_KINDS = tuple(BONDED)
#: metrics.csv columns, one row per run.
CSV_COLUMNS = ("label", "stable", "outcome", "status", "n_frames", "force_rmse_test", "rdf_error", "bond_js", "angle_js", "dihedral_js", "triplet_js",
               "density_g_cm3", "density_rel_error", "pressure_bar", "pressure_rel_error", "temperature_K",
               "D_msd_1e-5_cm2_s", "diffusion_rel_error", "D_gk_1e-5_cm2_s")


@dataclass
class Observables:
    """Everything measured on one trajectory, on the shared grids of one evaluation."""

    n_frames: int
    rdf: dict[str, tuple[np.ndarray, np.ndarray]]
    bonded: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    triplet: tuple[np.ndarray, np.ndarray]
    density_g_cm3: float
    pressure_bar: float | None
    temperature_K: float | None
    msd: tuple[np.ndarray, np.ndarray]
    vacf: tuple[np.ndarray, np.ndarray] | None
    d_gk_a2_fs: float | None
    msd_fit: dynamics.MSDFit


@dataclass
class Settings:
    """The shared grids every trajectory is measured on."""

    r_max: float
    bins: int
    shell_radii: dict[str, float]
    edges: dict[str, dict[str, np.ndarray]]


def evaluate(
    reference: str | Path,
    runs: dict[str, str | Path],
    out: str | Path,
    split: str = "all",
    r_max: float | None = None,
    bins: int = 200,
    equil_fs: float = 0.0,
    reference_pressure_bar: float | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Measure the reference dataset and every run, write metrics, plots and ``report.md`` to ``out``; return the metrics.

    ``out`` is locked from the start and appears, complete, only at the end (:mod:`cgzoo.outputs`).
    """
    out = check_output_path(out, overwrite)
    check_owned_dir(out, "metrics.json", "evaluation report")  # before the long measurement, not after
    if bins < 1 or (r_max is not None and not r_max > 0) or not equil_fs >= 0:
        raise InputError(None, f"need --bins ≥ 1, --r-max > 0 and --equil-ps ≥ 0 (got {bins}, {r_max}, "
                               f"{equil_fs / 1000.0} ps)")
    with output_lock(out):
        return _evaluate(reference, runs, out, split, r_max, bins, equil_fs, reference_pressure_bar, overwrite)


def _evaluate(reference: str | Path, runs: dict[str, str | Path], out: Path, split: str, r_max: float | None,
              bins: int, equil_fs: float, reference_pressure_bar: float | None, overwrite: bool) -> dict[str, Any]:
    """The body of :func:`evaluate`, run while holding ``out``."""
    if not runs:
        raise InputError(None, "give at least one run to evaluate")
    if REFERENCE in runs:
        raise InputError(None, f"a run may not be labelled {REFERENCE!r}")
    ref = load_reference(reference, split)
    trajs = {label: load_run(path, ref.type_names, equil_fs) for label, path in runs.items()}
    for label, traj in trajs.items():
        _check_same_terms(ref, traj, runs[label])
    usable = [t for t in trajs.values() if t.n_frames >= 2]
    r_max = r_max if r_max is not None else min(structure.max_rdf_range(t) for t in [ref, *usable])
    ref_rdf = structure.rdf(ref, r_max, bins, intermolecular=True)
    radii = {k: structure.first_minimum(r, g) for k, (r, g) in ref_rdf.items() if k != structure.ALL_PAIRS}
    settings = Settings(r_max=r_max, bins=bins, shell_radii=radii, edges=_reference_edges(ref))
    obs = {REFERENCE: observe(ref, settings, ref_rdf)}
    obs[REFERENCE].pressure_bar = reference_pressure_bar
    for label, traj in trajs.items():
        if traj.n_frames >= 2:
            obs[label] = observe(traj, settings)
    metrics = {
        "reference": {"path": str(reference), "split": split, **_scalars(obs[REFERENCE])},
        "settings": {"r_max_A": r_max, "rdf_bins": bins, "rdf": "intermolecular", "shell_radii_A": settings.shell_radii,
                     "msd_fit_window_fraction": dynamics.FIT_WINDOW, "equil_fs": equil_fs},
        "runs": {label: {"run_dir": str(runs[label]), "status": traj.status, "stable": is_stable(traj),
                         "outcome": run_outcome(traj),
                         "force_rmse_test": _recorded_force_rmse(runs[label]),
                         **compare_observables(obs[REFERENCE], obs.get(label), traj.n_frames)}
                 for label, traj in trajs.items()},
    }
    with atomic_dir(out, overwrite, marker="metrics.json", what="evaluation report") as tmp:
        plots = plot_all(obs, trajs, metrics, tmp / "plots")
        write_metrics(metrics, tmp)
        write_markdown(metrics, plots, tmp)
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


def run_outcome(traj: CGTrajectory) -> str:
    """"stable" (complete, every frame finite), "unstable" (the guard stopped it, or frames went non-finite) or
    "incomplete" (killed, stopped early or still running: its frames are fine, there are just fewer of them)."""
    if is_stable(traj):
        return "stable"
    if traj.status.startswith("unstable") or traj.status.endswith("(non-finite frames)"):
        return "unstable"
    return "incomplete"


def observe(traj: CGTrajectory, settings: Settings,
            rdf: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Observables:
    """Every observable of one trajectory on the shared grids (``rdf``: its g(r) if already computed with them)."""
    has_velocities = traj.velocities is not None
    msd = dynamics.msd(traj)
    return Observables(
        n_frames=traj.n_frames,
        rdf=rdf if rdf is not None else structure.rdf(traj, settings.r_max, settings.bins, intermolecular=True),
        bonded={kind: bonded.bonded_distributions(traj, kind, settings.edges[kind]) for kind in BONDED_KINDS},
        triplet=structure.triplet_angles(traj, settings.shell_radii),
        density_g_cm3=thermo.mean_density(traj),
        pressure_bar=thermo.mean_pressure(traj),
        temperature_K=thermo.mean_temperature(traj),
        msd=msd,
        vacf=dynamics.vacf(traj) if has_velocities else None,
        d_gk_a2_fs=dynamics.diffusion_green_kubo(traj) if has_velocities else None,
        msd_fit=dynamics.fit_msd(*msd),
    )


def compare_observables(ref: Observables, run: Observables | None, n_frames: int) -> dict[str, Any]:
    """Metrics of one run against the reference (None where the run has too few frames or no such observable)."""
    if run is None:
        return {"n_frames": n_frames, "rdf_error": None, "rdf_error_per_pair": {},
                **{f"{kind}_js": None for kind in BONDED_KINDS}, "triplet_js": None,
                "density_rel_error": None, "pressure_rel_error": None, "diffusion_rel_error": None}
    per_pair = {k: rdf_error(g, run.rdf[k][1]) for k, (_, g) in ref.rdf.items() if k in run.rdf}
    type_pairs = [v for k, v in per_pair.items() if k != structure.ALL_PAIRS]
    out: dict[str, Any] = {"n_frames": n_frames, "rdf_error": _mean(type_pairs), "rdf_error_per_pair": per_pair}
    for kind in BONDED_KINDS:
        per_key = {k: js_divergence(p, run.bonded[kind][k][1]) for k, (_, p) in ref.bonded[kind].items()}
        out[f"{kind}_js"] = _mean(per_key.values())
        out[f"{kind}_js_per_key"] = per_key
    out["triplet_js"] = js_divergence(ref.triplet[1], run.triplet[1])
    out.update(_scalars(run))
    out["density_rel_error"] = relative_error(run.density_g_cm3, ref.density_g_cm3)
    out["pressure_rel_error"] = relative_error(run.pressure_bar, ref.pressure_bar)
    out["diffusion_rel_error"] = relative_error(run.msd_fit.d_a2_fs, ref.msd_fit.d_a2_fs)
    return out


def _scalars(o: Observables) -> dict[str, Any]:
    """Scalar observables of one trajectory, D in both Å²/fs and 10⁻⁵ cm²/s (None where not finite)."""
    def finite(d: float | None, factor: float = 1.0) -> float | None:
        return None if d is None or not np.isfinite(d) else float(d * factor)

    d_msd, d_gk, to_cgs = o.msd_fit.d_a2_fs, o.d_gk_a2_fs, dynamics.A2_FS_TO_1E5_CM2_S
    return {"n_frames": o.n_frames, "density_g_cm3": o.density_g_cm3, "pressure_bar": o.pressure_bar,
            "temperature_K": o.temperature_K, "D_msd_A2_fs": finite(d_msd), "D_msd_1e-5_cm2_s": finite(d_msd, to_cgs),
            "msd_fit_window_fs": o.msd_fit.window_fs, "D_gk_A2_fs": finite(d_gk), "D_gk_1e-5_cm2_s": finite(d_gk, to_cgs)}


def _reference_edges(ref: CGTrajectory) -> dict[str, dict[str, np.ndarray]]:
    """Histogram edges per bonded kind and type key, spanning the reference's sampled range."""
    return {kind: {key: bonded.default_edges(kind, values) for key, values in bonded.bonded_values(ref, kind).items()}
            for kind in BONDED_KINDS}


def _check_same_terms(ref: CGTrajectory, run: CGTrajectory, run_dir: str | Path) -> None:
    """Refuse a run whose bonded type keys differ from the reference's (a different CG topology)."""
    for kind in BONDED_KINDS:
        ref_keys, run_keys = set(bonded.term_keys(ref, kind)), set(bonded.term_keys(run, kind))
        if ref_keys != run_keys:
            raise InputError(run_dir, f"{kind} types {sorted(run_keys)} differ from the reference's {sorted(ref_keys)}")


def _mean(values) -> float | None:
    """Mean of finite values, None if there are none."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


# --- outputs ---------------------------------------------------------------------------------


def write_metrics(metrics: dict[str, Any], out: Path) -> None:
    """``metrics.json`` (everything, NaN as null) and ``metrics.csv`` (one row per run, :data:`CSV_COLUMNS`)."""
    (out / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2) + "\n")
    with (out / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for label, m in metrics["runs"].items():
            row = {"label": label, **m}
            writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])


def _recorded_force_rmse(run_dir: str | Path) -> float | None:
    """The held-out force RMSE ``cgzoo simulate`` recorded for the run's model (kcal/mol/Å), if any."""
    info = json.loads((Path(run_dir) / "run.json").read_text())
    value = info.get("force_rmse_test")
    return None if value is None else float(value)


def write_markdown(metrics: dict[str, Any], plots: dict[str, list[Path]], out: Path) -> None:
    """``report.md``: what was compared, a summary table (reference first), how to read it, and every plot."""
    ref, settings = metrics["reference"], metrics["settings"]
    shells = ", ".join(f"{k}: {v:.2f} Å" for k, v in settings["shell_radii_A"].items())
    intro = (f"Reference: `{ref['path']}` ({ref['split']} frames: {ref['n_frames']}, "
             f"T = {format_number(ref['temperature_K'])} K). g(r) is intermolecular, up to {settings['r_max_A']:.2f} Å; "
             f"triplet neighbours lie within the reference's first shell ({shells}); D is fitted to MSD = 6Dt + b "
             f"over 20–80 % of each trajectory's longest lag; runs skip their first {settings['equil_fs'] * FS_TO_PS:g} ps.")
    header = ["run", "stable", "frames", "force RMSE (test)", "g(r) RMS Δg", "bond JS", "angle JS", "dihedral JS", "triplet JS",
              "ρ (g/cm³)", "Δρ/ρ", "P (bar)", "ΔP/P", "T (K)", "D (10⁻⁵ cm²/s)", "ΔD/D"]
    legend = ("force RMSE (test) is the model's held-out force error on the reference's test frames (kcal/mol/Å, "
              "per component, recorded by `cgzoo simulate`); RMS Δg is the root-mean-square difference of g(r) over r, averaged over type pairs; JS is the "
              "Jensen–Shannon divergence in bits (0 identical, 1 disjoint), averaged over type keys; Δx/x are signed "
              "relative errors against the reference (pressure only when a reference pressure was given). "
              "Smaller magnitudes are better.")
    lines = ["# CG model evaluation", "", intro, "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header), _row(REFERENCE, "–", ref),
             *[_row(label, "yes" if m["stable"] else f"**no**: {m['outcome']} ({m['status']})", m)
               for label, m in metrics["runs"].items()],
             "", legend, ""]
    for section, files in plots.items():
        lines += [f"## {section}", "", *[f"![{f.stem}](plots/{f.name})" for f in files], ""]
    (out / "report.md").write_text("\n".join(lines))


def _row(label: str, stable: str, m: dict[str, Any]) -> str:
    """One markdown table row of the summary."""
    cells = [label, stable, str(m["n_frames"]), *(format_number(m.get(c)) for c in (
        "force_rmse_test", "rdf_error", "bond_js", "angle_js", "dihedral_js", "triplet_js", "density_g_cm3", "density_rel_error",
        "pressure_bar", "pressure_rel_error", "temperature_K", "D_msd_1e-5_cm2_s", "diffusion_rel_error"))]
    return "| " + " | ".join(cells) + " |"


def _json_safe(value: Any) -> Any:
    """Metrics with NaN/inf as None, tuples as lists and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
