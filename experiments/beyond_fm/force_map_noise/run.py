"""The optimized force map against the noise floor: does it lower the irreducible noise, keep the mean force, and help models?

For hexane 2- and 3-bead COM, ``cgzoo noise-floor`` is run with ``--force-map optimized`` at the
settings of the basic main runs of ``experiments/beyond_fm/noise_floor`` (K = 10⁴ kcal/mol/Å², 1 fs,
4 ps, M = 8, the same evenly spaced frames), and the force-matched priors fitted on basic and on
optimized datasets (``experiments/beyond_fm/force_map``) are scored against both mean forces.
Inputs (``--data``): the noise-floor and force-map experiments' data directories. Outputs here:
``results.json`` and ``results.md``. Re-running resumes finished configurations.

    python experiments/beyond_fm/force_map_noise/run.py --data $CGZOO_BEYOND_FM_DATA
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MAPPINGS = ("hexane-ua_2bead_com", "hexane-ua_3bead_com")
RUN = "K10000_T4_M8_dt1"
SETTINGS = ["--configs", "8", "--ps", "4", "--stiffness", "10000", "--timestep-fs", "1", "--threads", "1"]


def cgzoo(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cgzoo", *args], check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="root of the beyond_fm data (atom/, noise/, fmap/)")
    data = parser.parse_args().data
    rows = {}
    for mapping in MAPPINGS:
        priors = [str(data / "fmap" / f"prior_{mapping}_{kind}") for kind in ("basic", "optimized")]
        models = [a for p in priors for a in ("--model", p)]
        outs = {"basic": data / "noise" / f"nf_{mapping}_{RUN}", "optimized": data / "combined" / f"nf_{mapping}_optimized_{RUN}"}
        cgzoo("noise-floor", "--source", str(data / "atom" / "hexane-ua"), "--mapping",
              str(ROOT / "datasets" / "mappings" / f"{mapping}.yaml"), "--out", str(outs["optimized"]), *SETTINGS,
              "--force-map", "optimized", *models)
        if not outs["basic"].exists():
            cgzoo("noise-floor", "--source", str(data / "atom" / "hexane-ua"), "--mapping",
                  str(ROOT / "datasets" / "mappings" / f"{mapping}.yaml"), "--out", str(outs["basic"]), *SETTINGS)
        cgzoo("noise-floor", "--out", str(outs["basic"]), *models)
        rows[mapping] = {kind: json.loads((out / "noise_floor.json").read_text()) for kind, out in outs.items()}
    (HERE / "results.json").write_text(json.dumps(
        {m: {k: {"floor": v["floor"], "models": v["models"]} for k, v in r.items()} for m, r in rows.items()}, indent=1))
    lines = ["# Optimized force map and the noise floor (hexane, K = 10⁴, 4 ps, M = 8)", "",
             "Variances per Cartesian component, (kcal/mol/Å)². Total: Var F of the map's forces over the run; noise: "
             "the floor's fluctuation around the mean force; mean-force variance = total − noise (the same for every "
             "consistent map, up to the errors). Priors are the force-matched fm_full priors fitted on 796 training "
             "frames of the basic or the optimized dataset; R² against the mean force of that map's restrained runs.",
             "", "| mapping | force map | total | noise | mean-force variance | floor (fraction) | R² ceiling "
             "| prior (basic data) R² vs mean force | prior (optimized data) R² vs mean force |",
             "|---|---|---|---|---|---|---|---|---|"]
    for mapping, kinds in rows.items():
        for kind, result in kinds.items():
            f = result["floor"]["all"]
            r2 = [result["models"][name]["all"] for name in sorted(result["models"]) if "fmap" in name]
            lines.append(f"| {mapping} | {kind} | {f['total_variance']:.1f} | {f['floor_mse']:.1f} | "
                         f"{f['total_variance'] - f['floor_mse']:.1f} | {f['fraction']:.3f} ± {f['fraction_error']:.3f} | "
                         f"{1 - f['fraction']:.3f} | " + " | ".join(f"{m['r2_mean']:.3f} ± {m['r2_mean_error']:.3f}" for m in r2)
                         + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
