#!/usr/bin/env bash
# The main job on the embedded default dataset (CG SPC/E water, 1 bead per molecule): inspect it,
# show its block split, export it for ASE, fit a force-matched and a Lennard-Jones prior on the
# training split, and compare their held-out force errors. Outputs go to $CGZOO_DEMO_OUT (runs/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=datasets/default/spce-water_1bead_com.h5
OUT=${CGZOO_DEMO_OUT:-runs/demo}
mkdir -p "$OUT"

cgzoo info "$DATA"
cgzoo split "$DATA" --gap 4
cgzoo convert "$DATA" "$OUT/spce-water_1bead_com.extxyz" --overwrite
cgzoo fit-prior --data "$DATA" --prior datasets/priors/fm_pair.yaml --out "$OUT/prior_fm" --export lammps gromacs --overwrite
cgzoo fit-prior --data "$DATA" --prior datasets/priors/lj.yaml --out "$OUT/prior_lj" --overwrite

python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("\nheld-out (test split) force RMSE, kcal/mol/Å per component")
print(f"{'prior':<28}{'test RMSE':>10}{'reference RMS':>15}")
for name, label in (("prior_lj", "Lennard-Jones (fitted)"), ("prior_fm", "force-matched spline")):
    err = json.loads((out / name / "report.json").read_text())["errors"]["test"]
    print(f"{label:<28}{err['force_rmse']:>10.4f}{err['reference_force_rms']:>15.4f}")
print(f"\nplots: {out}/prior_fm/plots, tables: {out}/prior_fm/tables")
PY
