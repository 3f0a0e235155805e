"""The results of a noise-floor run: ``noise_floor.json``, ``report.md`` and ``noise_floor.png``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cgzoo.errors import InputError
from cgzoo.outputs import save_figure, write_atomic, write_json_atomic

RESULTS = "noise_floor.json"
#: Force components drawn in the scatter panel (a random subset, so the figure stays small).
MAX_SCATTER = 4000


def read_results(out: Path) -> dict:
    """``noise_floor.json`` of a finished run."""
    path = Path(out) / RESULTS
    if not path.exists():
        raise InputError(out, f"has no {RESULTS}; run cgzoo noise-floor with --source and --mapping first")
    return json.loads(path.read_text())


def write_results(out: Path, summary: dict, mean: np.ndarray, raw: np.ndarray) -> None:
    """Write the JSON summary, the markdown report and the figure (mean (M, B, 3) and raw (M, B, 3) forces)."""
    write_json_atomic(out / RESULTS, summary)
    write_atomic(out / "report.md", markdown(summary))
    _figure(out / "noise_floor.png", summary, mean, raw)


def markdown(summary: dict) -> str:
    """The report: settings, the floor per bead type, and each model's scores."""
    s = summary["settings"]
    lines = [
        f"# Noise floor of {Path(s['mapping']).name} on {s['system']}", "",
        (f"Source `{s['source']}` ({summary['n_frames_source']} frames, {summary['n_atoms']} atoms, "
         f"{summary['n_beads']} beads). M = {s['configs']} configurations, each restrained "
         f"(K = {s['stiffness']:g} kcal/mol/Å²) for {s['equil_ps']:g} ps + {s['run_ps']:g} ps at "
         f"{s['temperature']:g} K, dt {s['timestep_fs']:g} fs, {s['n_samples']} force samples every "
         f"{s['sample_every_fs']:g} fs. Bead centres stayed within {summary['restraint_rms_deviation_A']:.4f} Å RMS "
         f"({summary['restraint_max_deviation_A']:.3f} Å max) of their targets."), "",
        "| bead type | noise floor (fraction of Var F) | R² ceiling | floor MSE (kcal/mol/Å)² | Var F | SEM² share |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in summary["floor"].items():
        lines.append(f"| {name} | {f['fraction']:.4f} ± {f['fraction_error']:.4f} | {1 - f['fraction']:.4f} | "
                     f"{f['floor_mse']:.3f} | {f['total_variance']:.3f} | {f['sem_correction']:.3f} |")
    if summary["models"]:
        lines += ["", "| model | bead type | R² vs mean force | R² vs raw | ceiling | excess MSE | excess / Var F |",
                  "|---|---|---|---|---|---|---|"]
        for model, scores in summary["models"].items():
            for name, m in scores.items():
                lines.append(f"| `{model}` | {name} | {m['r2_mean']:.4f} ± {m['r2_mean_error']:.4f} | {m['r2_raw']:.4f} | "
                             f"{m['r2_ceiling']:.4f} | {m['excess_mse']:.3f} ± {m['excess_mse_error']:.3f} | "
                             f"{m['excess_fraction']:.4f} |")
    lines += ["", ("Errors are bootstrap SDs over the M configurations. The floor is bias-corrected for the "
                   "finite run (SEM² share: the part of it that correction is); see docs/noise_floor.md."), ""]
    return "\n".join(lines)


def _figure(path: Path, summary: dict, mean: np.ndarray, raw: np.ndarray) -> None:
    """Raw mapped force against mean force (one panel), floor and model excess per bead type (the other)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rng = np.random.default_rng(0)
    pick = rng.permutation(mean.size)[:MAX_SCATTER]
    left.scatter(mean.ravel()[pick], raw.ravel()[pick], s=2, alpha=0.4)
    lim = float(np.abs(raw.ravel()[pick]).max())
    left.plot([-lim, lim], [-lim, lim], "k-", lw=0.8)
    left.set(xlabel="mean force (kcal/mol/Å)", ylabel="raw mapped force (kcal/mol/Å)",
             title="force components at the M configurations")
    names = list(summary["floor"])
    x = np.arange(len(names))
    width = 0.8 / (1 + len(summary["models"]))
    right.bar(x, [summary["floor"][n]["fraction"] for n in names], width,
              yerr=[summary["floor"][n]["fraction_error"] for n in names], label="noise floor")
    for k, (model, scores) in enumerate(summary["models"].items(), start=1):
        right.bar(x + k * width, [scores[n]["excess_fraction"] for n in names], width,
                  yerr=[scores[n]["excess_mse_error"] / summary["floor"][n]["total_variance"] for n in names],
                  label=f"excess: {Path(model).name}")
    right.set_xticks(x + width * len(summary["models"]) / 2, names)
    right.set(ylabel="fraction of mapped-force variance", title="noise floor and model excess error")
    right.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
