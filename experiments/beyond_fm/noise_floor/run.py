"""Noise floor of SPC/E 1-bead and hexane 2-/3-bead COM mappings, its convergence, and the force-matched priors scored.

Run from the repository root once the reference runs /work/data/bfm/atom/{spce-water,hexane-ua} exist:

    PYTHONPATH=. OMP_NUM_THREADS=1 python experiments/beyond_fm/noise_floor/run.py [MAPPING ...]

It maps each run and fits its prior with ``cgzoo map`` and ``cgzoo fit-prior`` where they are
missing; every measurement is a ``cgzoo noise-floor`` output directory under /work/data/bfm/noise/
(resumed, so a rerun redoes no MD and only rescores); results.json, results.md and convergence.png
are written next to this script.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cgzoo.meanforce import run_noise_floor
from cgzoo.outputs import save_figure, write_atomic, write_json_atomic

ATOM = Path("/work/data/bfm/atom")
DATA = Path("/work/data/bfm/noise")
HERE = Path(__file__).resolve().parent
MAPPINGS = Path("datasets/mappings")
#: (label, generate run, mapping, prior fitted on the dataset mapped from the same run)
SYSTEMS = [
    ("spce-water 1-bead COM", "spce-water", "spce-water_1bead_com", "fm_pair"),
    ("hexane 3-bead COM", "hexane-ua", "hexane-ua_3bead_com", "fm_full"),
    ("hexane 2-bead COM", "hexane-ua", "hexane-ua_2bead_com", "fm_full"),
]
#: the main measurement and the two convergence series (same M configurations within a series)
MAIN = {"configs": 12, "run_ps": 5.0, "stiffness": 1000.0}
SERIES_CONFIGS = 4
STIFFNESSES = (300.0, 1000.0, 3000.0, 10000.0)
LENGTHS_PS = (0.5, 2.0, 8.0, 20.0)
SERIES_PS = 2.0
#: systems that get the convergence series (the wall-time budget allows them for two)
SERIES_FOR = ("spce-water_1bead_com", "hexane-ua_3bead_com")


def measure(system: str, mapping: str, tag: str, models: list[Path] = (), **kw) -> dict:
    """One noise-floor directory (resumed if present); returns its summary and the wall time it took."""
    out = DATA / f"nf_{mapping}_{tag}"
    start = time.perf_counter()
    summary = run_noise_floor(ATOM / system, MAPPINGS / f"{mapping}.yaml", out, threads=1, models=list(models),
                              progress=False, **kw)
    summary["wall_s"] = time.perf_counter() - start
    print(f"{mapping} {tag}: floor {summary['floor']['all']['fraction']:.4f} ± "
          f"{summary['floor']['all']['fraction_error']:.4f}  ({summary['wall_s']:.0f} s)", flush=True)
    return summary


def prepare(system: str, mapping: str, prior: str) -> Path:
    """The force-matched prior of ``mapping``: the run mapped with ``cgzoo map``, fitted with ``cgzoo fit-prior``."""
    dataset, prior_dir = DATA / f"{mapping}.h5", DATA / f"prior_{mapping}"
    if not dataset.exists():
        subprocess.run(["cgzoo", "map", "--top", str(ATOM / system), "--mapping", str(MAPPINGS / f"{mapping}.yaml"),
                        "--out", str(dataset)], check=True)
    if not (prior_dir / "prior.json").exists():
        subprocess.run(["cgzoo", "fit-prior", "--data", str(dataset), "--prior", f"datasets/priors/{prior}.yaml",
                        "--out", str(prior_dir)], check=True)
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


def extrapolate(series: dict[str, dict], main_summary: dict) -> dict[str, dict]:
    """Per bead type: the floor's 1/K law ``a + b/K`` fitted to the stiffness series (weights 1/error²), applied to the main run.

    A bead restrained at K wanders by kT/K per component, adding about kT·|∇F̄|²/K of mean-force
    variation to the fluctuation, so the floor's leading error is b/K; ``a`` is the K → ∞ floor.
    """
    stiffness = np.array([float(k) for k in series])
    out = {}
    for name in next(iter(series.values())):
        y = np.array([f[name]["fraction"] for f in series.values()])
        w = 1.0 / np.array([f[name]["fraction_error"] for f in series.values()]) ** 2
        design = np.stack([np.ones_like(stiffness), 1.0 / stiffness], axis=1)
        cov = np.linalg.inv(design.T @ (design * w[:, None]))
        a, b = cov @ design.T @ (w * y)
        bias = b / main_summary["settings"]["stiffness"]
        main = main_summary["floor"][name]
        scores = next(iter(main_summary["models"].values()), {}).get(name)
        out[name] = {"floor_inf_series": float(a), "floor_inf_series_error": float(np.sqrt(cov[0, 0])),
                     "slope_b": float(b), "main_bias": float(bias), "main_corrected": main["fraction"] - float(bias),
                     "prior_excess_fraction_corrected": None if scores is None else scores["excess_fraction"] + float(bias)}
    return out


def main() -> int:
    results: dict = {"main_settings": MAIN, "series_configs": SERIES_CONFIGS, "series_ps": SERIES_PS,
                     "systems": {}}
    only = set(sys.argv[1:])
    for label, system, mapping, prior in SYSTEMS:
        if only and mapping not in only:
            continue
        prior_dir = prepare(system, mapping, prior)
        entry: dict = {"label": label, "prior": str(prior_dir), "prior_spec": prior, "fit_prior_r2": fit_r2(mapping)}
        main_summary = measure(system, mapping, "main", [prior_dir],
                               configs=MAIN["configs"], run_ps=MAIN["run_ps"], stiffness=MAIN["stiffness"])
        entry["main"] = main_summary
        if mapping in SERIES_FOR:
            entry["stiffness"] = {str(k): measure(system, mapping, f"K{k:g}_T{SERIES_PS:g}", configs=SERIES_CONFIGS,
                                                  run_ps=SERIES_PS, stiffness=k)["floor"] for k in STIFFNESSES}
            entry["length"] = {str(t): measure(system, mapping, f"K1000_T{t:g}", configs=SERIES_CONFIGS, run_ps=t,
                                               stiffness=1000.0)["floor"] for t in LENGTHS_PS}
            entry["extrapolated"] = extrapolate(entry["stiffness"], main_summary)
        results["systems"][mapping] = entry
    write_json_atomic(HERE / "results.json", results)
    write_atomic(HERE / "results.md", markdown(results))
    figure(results)
    return 0


def markdown(results: dict) -> str:
    """The tables of results.md."""
    m = results["main_settings"]
    lines = ["# Noise floor of CG force maps (restrained atomistic MD)", "",
             (f"Main: M = {m['configs']} configurations evenly spaced over the 100 ps reference run, each "
              f"{m['run_ps']:g} ps (+0.2 ps discarded) with every bead centre restrained at K = {m['stiffness']:g} "
              "kcal/mol/Å², force samples every 20 fs. Errors: bootstrap SD over the M configurations."), "",
             ("| mapping | bead type | noise floor | R² ceiling | prior R² vs raw | prior R² vs mean force | "
              "prior excess MSE / Var F | fit-prior R² (test) | s per config |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for mapping, entry in results["systems"].items():
        s = entry["main"]
        scores = next(iter(s["models"].values()), {})
        for name, f in s["floor"].items():
            p = scores.get(name)
            prior_cols = (f"{p['r2_raw']:.3f} | {p['r2_mean']:.3f} ± {p['r2_mean_error']:.3f} | "
                          f"{p['excess_fraction']:.3f} ± {p['excess_mse_error'] / f['total_variance']:.3f}"
                          if p else "– | – | –")
            fit = entry["fit_prior_r2"] if name == "all" and entry["fit_prior_r2"] is not None else None
            lines.append(f"| {mapping} | {name} | {f['fraction']:.4f} ± {f['fraction_error']:.4f} | "
                         f"{1 - f['fraction']:.3f} | {prior_cols} | {'–' if fit is None else f'{fit:.3f}'} | "
                         f"{s['seconds_per_config']:.0f} |")
    lines += ["", ("Stiffness correction: floor(K) = a + b/K fitted to the stiffness series; the main run's floor "
                  "less b/K_main, and the prior's excess plus the same b/K_main."), "",
              ("| mapping | bead type | a (K → ∞, series) | b/K_main | main floor corrected | R² ceiling corrected | "
              "prior excess / Var F corrected |"), "|---|---|---|---|---|---|---|"]
    for mapping, entry in results["systems"].items():
        for name, x in entry.get("extrapolated", {}).items():
            excess = x["prior_excess_fraction_corrected"]
            lines.append(f"| {mapping} | {name} | {x['floor_inf_series']:.4f} ± {x['floor_inf_series_error']:.4f} | "
                         f"{x['main_bias']:.4f} | {x['main_corrected']:.4f} | {1 - x['main_corrected']:.3f} | "
                         f"{'–' if excess is None else f'{excess:.3f}'} |")
    lines += ["", (f"Convergence (M = {results['series_configs']}, all beads): stiffness at {results['series_ps']:g} "
                   "ps runs, run length at K = 1000."), "",
              "| mapping | series | value | noise floor | SEM² share |", "|---|---|---|---|---|"]
    for mapping, entry in results["systems"].items():
        for series, unit in (("stiffness", "kcal/mol/Å²"), ("length", "ps")):
            for value, floor in entry.get(series, {}).items():
                f = floor["all"]
                lines.append(f"| {mapping} | {series} | {value} {unit} | {f['fraction']:.4f} ± {f['fraction_error']:.4f}"
                             f" | {f['sem_correction']:.3f} |")
    return "\n".join(lines) + "\n"


def figure(results: dict) -> None:
    """Floor against stiffness and against run length, per mapping with series."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for mapping, entry in results["systems"].items():
        for ax, series in zip(axes, ("stiffness", "length"), strict=True):
            if series in entry:
                x = [float(v) for v in entry[series]]
                y = [f["all"]["fraction"] for f in entry[series].values()]
                e = [f["all"]["fraction_error"] for f in entry[series].values()]
                ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=mapping)
    axes[0].set(xscale="log", xlabel="restraint K (kcal/mol/Å²)", ylabel="noise floor (fraction of Var F)")
    axes[1].set(xscale="log", xlabel="restrained run length (ps)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, HERE / "convergence.png")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
