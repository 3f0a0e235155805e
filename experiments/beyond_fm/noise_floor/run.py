"""Noise floor of SPC/E 1-bead and hexane 2-/3-bead COM mappings, its convergence, and the force-matched priors scored.

Run from the repository root once the reference runs $CGZOO_BEYOND_FM_DATA/atom/{spce-water,hexane-ua} exist:

    PYTHONPATH=. OMP_NUM_THREADS=1 python experiments/beyond_fm/noise_floor/run.py [MAPPING ...]

It maps each run and fits its prior with ``cgzoo map`` and ``cgzoo fit-prior`` where they are
missing; every measurement is a ``cgzoo noise-floor`` output directory under $CGZOO_BEYOND_FM_DATA/noise/
(resumed, so a rerun redoes no MD and only rescores); results.json, results.md and convergence.png
are written next to this script.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
import os
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cgzoo.meanforce import run_noise_floor
from cgzoo.outputs import save_figure, write_atomic, write_json_atomic

#: where the experiment's atomistic runs and derived data live (not in the repository)
DATA_ROOT = Path(os.environ.get("CGZOO_BEYOND_FM_DATA", "runs/beyond_fm"))

ATOM = DATA_ROOT / "atom"
DATA = DATA_ROOT / "noise"
HERE = Path(__file__).resolve().parent
MAPPINGS = Path("datasets/mappings")


@dataclass(frozen=True)
class Run:
    """One measurement: restraint K (kcal/mol/Å²), sampled ps, M configurations, time step fs."""

    stiffness: float
    run_ps: float
    configs: int
    timestep_fs: float

    @property
    def tag(self) -> str:
        return f"K{self.stiffness:g}_T{self.run_ps:g}_M{self.configs}_dt{self.timestep_fs:g}"


@dataclass(frozen=True)
class Plan:
    """A mapping of a generate run, its force-matched prior spec, main runs (prior scored) and convergence series."""

    label: str
    system: str
    mapping: str
    prior: str
    mains: tuple[Run, ...]
    stiffness: tuple[Run, ...] = ()
    length: tuple[Run, ...] = ()


#: Water's slowest restraint mode is fine at 2 fs up to K = 10⁴. Hexane's beads are joined by C–C bonds of
#: k = 620 kcal/mol/Å², so K must be ≫ 620 before the floor settles; K ≥ 10⁴ is run at 1 fs.
PLANS = (
    Plan("spce-water 1-bead COM", "spce-water", "spce-water_1bead_com", "fm_pair",
         mains=(Run(1000.0, 5.0, 12, 2.0),),
         stiffness=tuple(Run(k, 2.0, 4, 2.0) for k in (300.0, 1000.0, 3000.0, 10000.0)),
         length=tuple(Run(1000.0, t, 4, 2.0) for t in (0.5, 2.0, 8.0, 20.0))),
    Plan("hexane 3-bead COM", "hexane-ua", "hexane-ua_3bead_com", "fm_full",
         mains=(Run(1000.0, 5.0, 12, 2.0), Run(10000.0, 4.0, 8, 1.0)),
         stiffness=(*(Run(k, 2.0, 4, 2.0) for k in (300.0, 1000.0, 3000.0)),
                    *(Run(k, 2.0, 4, 1.0) for k in (3000.0, 10000.0, 30000.0))),
         length=tuple(Run(1000.0, t, 4, 2.0) for t in (0.5, 2.0, 8.0))),
    Plan("hexane 2-bead COM", "hexane-ua", "hexane-ua_2bead_com", "fm_full", mains=(Run(10000.0, 4.0, 8, 1.0),)),
)
#: the stiffest points of a series that the 1/K law is fitted to
EXTRAPOLATE_POINTS = 3


def measure(plan: Plan, run: Run, models: list[Path] = ()) -> dict:
    """One noise-floor directory (resumed if present); returns its summary with the wall time this call took."""
    start = time.perf_counter()
    summary = run_noise_floor(ATOM / plan.system, MAPPINGS / f"{plan.mapping}.yaml", DATA / f"nf_{plan.mapping}_{run.tag}",
                              configs=run.configs, run_ps=run.run_ps, stiffness=run.stiffness,
                              timestep_fs=run.timestep_fs, threads=1, models=list(models), progress=False)
    summary["wall_s"] = time.perf_counter() - start
    print(f"{plan.mapping} {run.tag}: floor {summary['floor']['all']['fraction']:.4f} ± "
          f"{summary['floor']['all']['fraction_error']:.4f}  ({summary['wall_s']:.0f} s)", flush=True)
    return summary


def prepare(system: str, mapping: str, prior: str) -> Path:
    """The force-matched prior of ``mapping``: the run mapped with ``cgzoo map``, fitted with ``cgzoo fit-prior``."""
    dataset, prior_dir = DATA / f"{mapping}.h5", DATA / f"prior_{mapping}"
    if not dataset.exists():
        subprocess.run([sys.executable, "-m", "cgzoo", "map", "--top", str(ATOM / system),
                        "--mapping", str(MAPPINGS / f"{mapping}.yaml"), "--out", str(dataset)], check=True)
    if not (prior_dir / "prior.json").exists():
        subprocess.run([sys.executable, "-m", "cgzoo", "fit-prior", "--data", str(dataset),
                        "--prior", f"datasets/priors/{prior}.yaml", "--out", str(prior_dir)], check=True)
    return prior_dir


def fit_r2(mapping: str) -> float | None:
    """The prior's force R² on the test split of its dataset from ``cgzoo fit-prior``'s report: 1 − (RMSE / RMS F)².

    The mapped forces' mean is zero, so their RMS is their standard deviation.
    """
    path = DATA / f"prior_{mapping}" / "report.json"
    if not path.exists():
        return None
    test = json.loads(path.read_text())["errors"]["test"]
    return 1.0 - (test["force_rmse"] / test["reference_force_rms"]) ** 2


def extrapolate(series: list[dict], main: dict) -> dict[str, dict]:
    """Per bead type: ``a + b/K`` fitted (weights 1/error²) to the stiffest points of a stiffness series, applied to ``main``.

    A bead restrained at K wanders by kT/K per component, which adds about kT·|∇F̄|²/K of mean-force
    variation to the fluctuation once K is stiffer than every atomistic spring across beads: the
    floor's leading error is then b/K, and ``a`` is the K → ∞ floor.
    """
    points = sorted(series, key=lambda p: p["run"]["stiffness"])[-EXTRAPOLATE_POINTS:]
    stiffness = np.array([p["run"]["stiffness"] for p in points])
    design = np.stack([np.ones_like(stiffness), 1.0 / stiffness], axis=1)
    scores = next(iter(main["models"].values()), {})
    out = {}
    for name in main["floor"]:
        y = np.array([p["floor"][name]["fraction"] for p in points])
        w = 1.0 / np.array([p["floor"][name]["fraction_error"] for p in points]) ** 2
        cov = np.linalg.inv(design.T @ (design * w[:, None]))
        a, b = cov @ design.T @ (w * y)
        bias = float(b) / main["settings"]["stiffness"]
        out[name] = {"fitted_stiffnesses": stiffness.tolist(), "floor_inf": float(a),
                     "floor_inf_error": float(np.sqrt(cov[0, 0])), "b": float(b), "main_bias": bias,
                     "main_corrected": main["floor"][name]["fraction"] - bias,
                     "prior_excess_fraction_corrected": (scores[name]["excess_fraction"] + bias) if name in scores
                     else None}
    return out


def main() -> int:
    only = set(sys.argv[1:])
    results: dict = {"extrapolate_points": EXTRAPOLATE_POINTS, "systems": {}}
    for plan in PLANS:
        if only and plan.mapping not in only:
            continue
        prior_dir = prepare(plan.system, plan.mapping, plan.prior)
        entry: dict = {"label": plan.label, "prior": str(prior_dir), "prior_spec": plan.prior,
                       "fit_prior_r2": fit_r2(plan.mapping),
                       "mains": [{"run": asdict(r), **measure(plan, r, [prior_dir])} for r in plan.mains]}
        for series in ("stiffness", "length"):
            entry[series] = [{"run": asdict(r), "floor": measure(plan, r)["floor"]} for r in getattr(plan, series)]
        if entry["stiffness"]:  # only for main runs inside the fitted range, where the 1/K law holds
            fitted_from = sorted(p["run"]["stiffness"] for p in entry["stiffness"])[-EXTRAPOLATE_POINTS]
            entry["extrapolated"] = [{"run": m["run"], **extrapolate(entry["stiffness"], m)} for m in entry["mains"]
                                     if m["run"]["stiffness"] >= fitted_from]
        results["systems"][plan.mapping] = entry
    write_json_atomic(HERE / "results.json", results)
    write_atomic(HERE / "results.md", markdown(results))
    figure(results)
    return 0


def markdown(results: dict) -> str:
    """The tables of results.md."""
    lines = ["# Noise floor of CG force maps (restrained atomistic MD)", "",
             ("Runs: K restraint (kcal/mol/Å²), T sampled ps (+0.2 ps discarded), M configurations evenly spaced "
              "over the 100 ps reference run, dt fs; force samples every 20 fs. Errors: bootstrap SD over the M "
              "configurations. Floors are fractions of the mapped-force variance Var F."), "",
             ("| mapping | run | bead type | noise floor | R² ceiling | prior R² vs raw | prior R² vs mean force | "
              "prior excess / Var F | fit-prior R² (test) | s per config |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for mapping, entry in results["systems"].items():
        for s in entry["mains"]:
            tag = _tag(s["run"])
            scores = next(iter(s["models"].values()), {})
            for name, f in s["floor"].items():
                p = scores.get(name)
                prior_cols = (f"{p['r2_raw']:.3f} | {p['r2_mean']:.3f} ± {p['r2_mean_error']:.3f} | "
                              f"{p['excess_fraction']:.3f} ± {p['excess_mse_error'] / f['total_variance']:.3f}"
                              if p else "– | – | –")
                fit = entry["fit_prior_r2"] if name == "all" else None
                lines.append(f"| {mapping} | {tag} | {name} | {f['fraction']:.4f} ± {f['fraction_error']:.4f} | "
                             f"{1 - f['fraction']:.3f} | {prior_cols} | {'–' if fit is None else f'{fit:.3f}'} | "
                             f"{s['seconds_per_config']:.0f} |")
    lines += ["", (f"Stiffness correction: floor(K) = a + b/K fitted to the {results['extrapolate_points']} stiffest "
                   "points of the stiffness series; a main run's floor less b/K_main, its prior excess plus b/K_main "
                   "(main runs at least as stiff as the softest fitted point only)."),
              "", ("| mapping | run | bead type | fitted K | a (K → ∞) | b/K_main | floor corrected | "
                   "R² ceiling corrected | prior excess / Var F corrected |"), "|---|---|---|---|---|---|---|---|---|"]
    for mapping, entry in results["systems"].items():
        for extra in entry.get("extrapolated", []):
            for name, x in ((n, x) for n, x in extra.items() if n != "run"):
                excess = x["prior_excess_fraction_corrected"]
                lines.append(f"| {mapping} | {_tag(extra['run'])} | {name} | {', '.join(f'{k:g}' for k in x['fitted_stiffnesses'])}"
                             f" | {x['floor_inf']:.4f} ± {x['floor_inf_error']:.4f} | {x['main_bias']:.4f} | "
                             f"{x['main_corrected']:.4f} | {1 - x['main_corrected']:.3f} | "
                             f"{'–' if excess is None else f'{excess:.3f}'} |")
    lines += ["", "Convergence series (all beads).", "", "| mapping | series | run | noise floor | SEM² share |",
              "|---|---|---|---|---|"]
    for mapping, entry in results["systems"].items():
        for series in ("stiffness", "length"):
            for point in entry[series]:
                f = point["floor"]["all"]
                lines.append(f"| {mapping} | {series} | {_tag(point['run'])} | {f['fraction']:.4f} ± "
                             f"{f['fraction_error']:.4f} | {f['sem_correction']:.3f} |")
    return "\n".join(lines) + "\n"


def _tag(run: dict) -> str:
    return f"K={run['stiffness']:g} T={run['run_ps']:g} M={run['configs']} dt={run['timestep_fs']:g}"


def figure(results: dict) -> None:
    """Floor against stiffness and against run length, per mapping with series (open marks: dt = 1 fs)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for k, (mapping, entry) in enumerate(results["systems"].items()):
        color = f"C{k}"
        for ax, series, key in ((axes[0], "stiffness", "stiffness"), (axes[1], "length", "run_ps")):
            for dt, face in ((2.0, color), (1.0, "white")):
                points = [p for p in entry[series] if p["run"]["timestep_fs"] == dt]
                if points:
                    ax.errorbar([p["run"][key] for p in points], [p["floor"]["all"]["fraction"] for p in points],
                                yerr=[p["floor"]["all"]["fraction_error"] for p in points], marker="o", color=color,
                                mfc=face, capsize=3, label=f"{mapping} dt {dt:g} fs")
        for extra in entry.get("extrapolated", [])[:1]:
            axes[0].axhline(extra["all"]["floor_inf"], color=color, ls=":", lw=1)
    axes[0].set(xscale="log", xlabel="restraint K (kcal/mol/Å²)", ylabel="noise floor (fraction of Var F)",
                title="stiffness (dotted: 1/K fit, K → ∞)")
    axes[1].set(xscale="log", xlabel="restrained run length (ps), K = 1000", title="run length")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, HERE / "convergence.png")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
