"""Networks against the noise floor: Δ and ML-only pair_mlp scored against the restrained mean force, beside the prior.

Trains, per mapping, the zoo pair_mlp (bond-aware) in Δ mode on the force-matched prior and in ML-only
mode, with the same budget, then adds both to the mapping's main noise-floor output
(``cgzoo noise-floor --out DIR --model CKPT``: no new MD). The prior's score is already there.

    python experiments/beyond_fm/noise_floor/score_networks.py --data $CGZOO_BEYOND_FM_DATA
(outputs: networks.json, networks.md here; checkpoints under DATA/noise/train/)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EPOCHS, TRAIN_FRAMES = 15, 200
#: mapping → (main noise-floor run, prior spec fitted on the same dataset by run.py)
MAPPINGS = {"spce-water_1bead_com": "nf_spce-water_1bead_com_K1000_T5_M12_dt2",
            "hexane-ua_3bead_com": "nf_hexane-ua_3bead_com_K10000_T4_M8_dt1"}
NETWORK = {"cutoff": 9.0, "n_rbf": 32, "hidden": [64, 64], "embedding_dim": 16, "bond_aware": True}


def cgzoo(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cgzoo", *args], check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    noise = parser.parse_args().data / "noise"
    table = {}
    for mapping, run in MAPPINGS.items():
        checkpoints = {}
        for mode in ("delta", "ml_only"):
            root = noise / "train" / f"{mapping}_pair_mlp_{mode}"
            if not list((root / "checkpoints").glob("best-*.ckpt")):
                cgzoo("fit", "--config", "models/pair_mlp.yaml", "--config", f"models/modes/{mode}.yaml",
                      "--data.data", str(noise / f"{mapping}.h5"), "--model.network_args", json.dumps(NETWORK),
                      "--data.prior", str(noise / f"prior_{mapping}") if mode == "delta" else "none",
                      "--data.max_train_frames", str(TRAIN_FRAMES), "--trainer.max_epochs", str(EPOCHS),
                      "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                      "--trainer.enable_model_summary", "false")
            checkpoints[mode] = sorted((root / "checkpoints").glob("best-*.ckpt"))[0]
        cgzoo("noise-floor", "--out", str(noise / run), *(a for c in checkpoints.values() for a in ("--model", str(c))))
        result = json.loads((noise / run / "noise_floor.json").read_text())
        labels = {str(noise / f"prior_{mapping}"): "FM prior", **{str(c): f"pair_mlp {m}" for m, c in checkpoints.items()}}
        table[mapping] = {"floor": result["floor"]["all"],
                          "models": {labels[k]: v["all"] for k, v in result["models"].items() if k in labels}}
    (HERE / "networks.json").write_text(json.dumps(table, indent=1))
    lines = ["# Networks against the noise floor", "",
             f"pair_mlp (bond-aware, 9 Å), {EPOCHS} epochs on {TRAIN_FRAMES} training frames, Δ on the FM prior and "
             "ML only; scored at the main noise-floor runs' configurations. Excess: model MSE against the raw "
             "mapped forces minus the floor, as a fraction of Var F; ± bootstrap over configurations.", "",
             "| mapping | floor | model | R² vs raw | R² vs mean force | excess / Var F |", "|---|---|---|---|---|---|"]
    for mapping, row in table.items():
        for name, m in row["models"].items():
            lines.append(f"| {mapping} | {row['floor']['fraction']:.3f} | {name} | {m['r2_raw']:.3f} | "
                         f"{m['r2_mean']:.3f} ± {m['r2_mean_error']:.3f} | {m['excess_fraction']:.3f} |")
    (HERE / "networks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
