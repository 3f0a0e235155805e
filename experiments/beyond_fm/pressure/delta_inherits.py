"""Do Δ-models keep the pressure correction of their prior? Train the same Δ pair_mlp on the plain and on the
pressure-refined water prior, then measure each model's NVT pressure at the reference density (LAMMPS).

The network learns the residual F_mapped − F_prior from forces alone, and the forces do not fix the
pressure: a network that could represent the ramp's small constant pair force would learn to undo
it. This measures how much of the correction survives a short, realistic training.

    python experiments/beyond_fm/pressure/delta_inherits.py --work $CGZOO_BEYOND_FM_DATA/press
(uses the water dataset and prior directories written by run.py in --work; outputs: delta_inherits.json/.md here)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EPOCHS, TRAIN_FRAMES, NVT_STEPS, EQUIL_STEPS = 10, 200, 15000, 3000  # 2 fs: 30 ps, the first 6 ps dropped
#: the zoo's pair_mlp, without bond awareness (1-bead water has no bonds), so LAMMPS runs it as tables
NETWORK = {"cutoff": 9.0, "n_rbf": 32, "hidden": [64, 64], "embedding_dim": 16}
#: label → (prior directory, pressure term weight of the training loss; 0: forces only)
PRIORS = {"plain FM": ("fm", 0.0), "pressure-refined (virial + MD)": ("virial_md", 0.0),
          "pressure-refined, trained with the pressure term (target: the prior's own, weight 10)": ("virial_md", 10.0)}


def cgzoo(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cgzoo", *args], check=True, cwd=ROOT)


def main() -> None:
    from cgzoo.generate.density import block_average
    from cgzoo.observables.trajectory import read_log

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    work = parser.parse_args().work
    data = work / "water.h5"
    results = {}
    for label, (prior, weight) in PRIORS.items():
        name = prior if weight == 0 else f"{prior}_pressure{weight:g}"
        train = work / "delta" / f"pair_mlp_{name}"
        if not list((train / "checkpoints").glob("best-*.ckpt")):
            cgzoo("fit", "--config", "models/pair_mlp.yaml", "--config", "models/modes/delta.yaml", "--data.data", str(data),
                  "--model.network_args", json.dumps(NETWORK), "--data.prior", str(work / "water" / prior), "--data.max_train_frames", str(TRAIN_FRAMES),
                  "--trainer.max_epochs", str(EPOCHS), "--trainer.default_root_dir", str(train),
                  "--model.pressure_bar", "prior", "--model.pressure_weight", str(weight),
                  "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false")
        ckpt = sorted((train / "checkpoints").glob("best-*.ckpt"))[0]
        runs = {"prior": work / "water" / f"{prior}_nvt", "delta": work / "delta" / f"{name}_nvt"}
        if not (runs["delta"] / "run.json").exists() or json.loads((runs["delta"] / "run.json").read_text())["status"] != "complete":
            cgzoo("simulate", "--model", str(ckpt), "--start", f"{data}@0", "--out", str(runs["delta"]), "--ensemble", "nvt",
                  "--steps", str(NVT_STEPS), "--timestep-fs", "2", "--save-every", "50", "--engine", "lammps",
                  "--threads", "1", "--quiet", "--overwrite")
        row = {}
        for kind, run in runs.items():
            log = read_log(run / "log.csv")
            p = block_average(log["pressure_bar"][log["step"] >= EQUIL_STEPS])
            row[kind] = {"pressure_bar": p.mean, "pressure_sem_bar": p.sem}
        row["checkpoint"] = str(ckpt)
        row["force_rmse_test"] = json.loads((runs["delta"] / "run.json").read_text()).get("force_rmse_test")
        results[label] = row
    (HERE / "delta_inherits.json").write_text(json.dumps(results, indent=1))
    lines = ["# Δ-models on a pressure-consistent prior: NVT pressure at the reference density (SPC/E 1-bead)", "",
             "Trained on forces alone, the network undoes the prior's pressure correction: forces do not fix the "
             "pressure. The pressure term of the loss (`--model.pressure_bar prior --model.pressure_weight W`: the "
             "network may add no net virial pressure on the reference frames) keeps it.", "",
             f"Δ pair_mlp (models/pair_mlp.yaml), {EPOCHS} epochs on {TRAIN_FRAMES} training frames; LAMMPS NVT "
             f"{NVT_STEPS * 2 / 1000:g} ps at 2 fs, first {EQUIL_STEPS * 2 / 1000:g} ps dropped; ± block SE. "
             "Target 1 bar.", "", "| prior under the network | prior alone (bar) | Δ-model (bar) | Δ test force RMSE (kcal/mol/Å) |", "|---|---|---|---|"]
    for label, row in results.items():
        lines.append(f"| {label} | {row['prior']['pressure_bar']:.0f} ± {row['prior']['pressure_sem_bar']:.0f} | "
                     f"{row['delta']['pressure_bar']:.0f} ± {row['delta']['pressure_sem_bar']:.0f} | "
                     f"{row['force_rmse_test']:.4f} |")
    (HERE / "delta_inherits.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
