#!/usr/bin/env bash
# The main job on the embedded default dataset (CG SPC/E water, 1 bead per molecule):
#   1. inspect the data and its time-block split, export it for ASE;
#   2. fit a force-matched spline prior and a Lennard-Jones prior on the training split (tables, plots);
#   3. train SchNet on top of the force-matched prior (Δ) and SchNet alone (ML only), a few epochs each;
#   4. print the held-out (test split) force RMSE of prior only, ML only and Δ.
# Outputs go to $CGZOO_DEMO_OUT (default runs/demo). About 10 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=datasets/default/spce-water_1bead_com.h5
OUT=${CGZOO_DEMO_OUT:-runs/demo}
EPOCHS=${CGZOO_DEMO_EPOCHS:-3}
export WANDB_MODE=${WANDB_MODE:-offline}
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
  cgzoo fit --config "models/schnet_$mode.yaml" --trainer.default_root_dir "$root" --trainer.max_epochs "$EPOCHS" \
    --data.max_train_frames 100 "${QUIET[@]}"
  cgzoo test --config "models/schnet_$mode.yaml" --trainer.default_root_dir "$root" "${QUIET[@]}" \
    --ckpt_path "$(ls "$root"/checkpoints/best-*.ckpt)"
done
cgzoo test --config models/schnet_prior_only.yaml --trainer.default_root_dir "$OUT/prior_only" "${QUIET[@]}"

python experiments/demo_table.py "$OUT"
