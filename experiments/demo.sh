#!/usr/bin/env bash
# The main job on the embedded default dataset (CG SPC/E water, 1 bead per molecule):
#   1. inspect the data and its time-block split, export it for ASE;
#   2. fit a force-matched spline prior and a Lennard-Jones prior on the training split (tables, plots);
#   3. train SchNet on top of the force-matched prior (Δ) and SchNet alone (ML only), a few epochs each;
#   4. print the held-out (test split) force RMSE of prior only, ML only and Δ;
#   5. simulate each of the three (NVT at 4 fs: inside the NVE drift criterion of
#      experiments/benchmarks/RESULTS.md in every run, where 6 fs sits at the threshold; the prior
#      on LAMMPS, SchNet through ASE, both chosen by `--engine auto`) and evaluate them against the reference:
#      runs/demo/report/report.md with g(r), triplet angles, density, diffusion, plots.
# Outputs go to $CGZOO_DEMO_OUT (default runs/demo). About 15 minutes on 2 CPU cores (11 measured).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=datasets/default/spce-water_1bead_com.h5
OUT=${CGZOO_DEMO_OUT:-runs/demo}
EPOCHS=${CGZOO_DEMO_EPOCHS:-3}
MD_STEPS=${CGZOO_DEMO_MD_STEPS:-1000}
export WANDB_MODE=${WANDB_MODE:-offline}
# cgzoo runs under $PYTHON (`make demo` passes the project environment's), else .venv's if made, else python3 on PATH
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
cgzoo() { "$PYTHON" -m cgzoo "$@"; }
rm -rf "$OUT"
mkdir -p "$OUT"

cgzoo info "$DATA"
cgzoo split "$DATA" --gap 2
cgzoo convert "$DATA" "$OUT/spce-water_1bead_com.extxyz"
cgzoo fit-prior --data "$DATA" --prior datasets/priors/fm_pair.yaml --out "$OUT/prior_fm" --export lammps gromacs
cgzoo fit-prior --data "$DATA" --prior datasets/priors/lj.yaml --out "$OUT/prior_lj"

QUIET=(--trainer.enable_progress_bar false --trainer.enable_model_summary false)
for mode in delta ml_only; do
  root="$OUT/schnet_$mode"
  zoo=(--config models/schnet.yaml --config "models/modes/$mode.yaml")  # architecture config + mode config
  cgzoo fit "${zoo[@]}" --trainer.default_root_dir "$root" --trainer.max_epochs "$EPOCHS" \
    --data.max_train_frames 100 "${QUIET[@]}"
  cgzoo test "${zoo[@]}" --trainer.default_root_dir "$root" "${QUIET[@]}" \
    --ckpt_path "$(ls "$root"/checkpoints/best-*.ckpt)"
done
cgzoo test --config models/schnet.yaml --config models/modes/prior_only.yaml --trainer.default_root_dir "$OUT/prior_only" \
  "${QUIET[@]}"

"$PYTHON" experiments/demo_table.py "$OUT"

MD=(--start "$DATA@0" --ensemble nvt --steps "$MD_STEPS" --timestep-fs 4 --save-every 10 --quiet)
cgzoo simulate --model "$OUT/prior_fm" --out "$OUT/md_prior_only" "${MD[@]}"
for mode in delta ml_only; do
  # an unstable model is a result, not a crash: the guard's message is printed and the run is evaluated as such
  cgzoo simulate --model "$(ls "$OUT/schnet_$mode"/checkpoints/best-*.ckpt)" --out "$OUT/md_$mode" "${MD[@]}" || true
done
cgzoo evaluate --reference "$DATA" --run "prior only=$OUT/md_prior_only" --run "ML only=$OUT/md_ml_only" \
  --run "Δ=$OUT/md_delta" --out "$OUT/report" --equil-ps 0.4
cat "$OUT/report/report.md"
