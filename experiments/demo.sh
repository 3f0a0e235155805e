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
# Outputs go to $CGZOO_DEMO_OUT (default runs/demo). A second run reuses every step an earlier run finished with the
# same command (it says "reusing …") and redoes the rest; `experiments/demo.sh --fresh` (or DEMO_FRESH=1) starts over.
# The fits show Lightning's progress bar and simulate its own. 10-15 minutes on 2 idle CPU cores (9.4 and 13.8
# measured in fresh clones with make demo, installing included: README).
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
if [[ "${1:-}" == "--fresh" || "${DEMO_FRESH:-0}" == 1 ]]; then
  echo "== starting over: removing $OUT"
  rm -rf "$OUT"
fi
mkdir -p "$OUT/.done"

# step NAME OUTPUT COMMAND…: run COMMAND, then record it in $OUT/.done/NAME. It is skipped ("reusing") when an earlier
# run recorded the same command, OUTPUT (a path, or - for none) is there and no step before it had to run again; before
# running, an OUTPUT left by an unfinished or different earlier attempt is removed, and said so.
RERUN=0
step() {
  local name=$1 output=$2; shift 2
  local marker="$OUT/.done/$name" command="$*"
  if [[ $RERUN == 0 && -f "$marker" && "$(cat "$marker")" == "$command" && ( "$output" == - || -e "$output" ) ]]; then
    if [[ "$output" == - ]]; then echo "== $name: reusing its result from an earlier run"
    else echo "== $name: reusing $output from an earlier run"; fi
    return 0
  fi
  local why="its earlier run did not finish or had another command"
  if [[ $RERUN == 1 ]]; then why="a step before it ran again"; fi
  RERUN=1
  rm -f "$marker"
  if [[ "$output" != - && -e "$output" ]]; then
    echo "== $name: removing $output ($why)"
    rm -rf "$output"
  fi
  echo "== $name"
  "$@"
  echo "$command" > "$marker"
}

# simulate that counts an unstable model as a result, not a crash: the guard's message is printed, run.json written,
# and the run is evaluated as such
simulate_run() {
  local out=$1; shift
  cgzoo simulate --out "$out" "$@" || [[ -f "$out/run.json" ]]
}

cgzoo info "$DATA"
cgzoo split "$DATA"
step convert "$OUT/spce-water_1bead_com.extxyz" cgzoo convert "$DATA" "$OUT/spce-water_1bead_com.extxyz"
step prior_fm "$OUT/prior_fm" \
  cgzoo fit-prior --data "$DATA" --prior datasets/priors/fm_pair.yaml --out "$OUT/prior_fm" --export lammps gromacs
step prior_lj "$OUT/prior_lj" cgzoo fit-prior --data "$DATA" --prior datasets/priors/lj.yaml --out "$OUT/prior_lj"

PRIOR=(--data.prior "$OUT/prior_fm/prior.json")  # the prior fitted above, not fitted again
for mode in delta ml_only; do
  root="$OUT/schnet_$mode"
  zoo=(--config models/schnet.yaml --config "models/modes/$mode.yaml")  # architecture config + mode config
  if [[ $mode == delta ]]; then zoo+=("${PRIOR[@]}"); fi
  step "fit_$mode" "$root" cgzoo fit "${zoo[@]}" --trainer.default_root_dir "$root" --trainer.max_epochs "$EPOCHS" \
    --data.max_train_frames 100 --trainer.enable_model_summary false
  step "test_$mode" - cgzoo test "${zoo[@]}" --trainer.default_root_dir "$root" --trainer.enable_model_summary false \
    --ckpt_path "$(ls "$root"/checkpoints/best-*.ckpt)"
done
step test_prior_only "$OUT/prior_only" cgzoo test --config models/schnet.yaml --config models/modes/prior_only.yaml \
  "${PRIOR[@]}" --trainer.default_root_dir "$OUT/prior_only" --trainer.enable_model_summary false

"$PYTHON" experiments/demo_table.py "$OUT"

MD=(--start "$DATA@0" --ensemble nvt --steps "$MD_STEPS" --timestep-fs 4 --save-every 10)
step md_prior_only "$OUT/md_prior_only" simulate_run "$OUT/md_prior_only" --model "$OUT/prior_fm" "${MD[@]}"
for mode in delta ml_only; do
  step "md_$mode" "$OUT/md_$mode" \
    simulate_run "$OUT/md_$mode" --model "$(ls "$OUT/schnet_$mode"/checkpoints/best-*.ckpt)" "${MD[@]}"
done
step evaluate "$OUT/report" cgzoo evaluate --reference "$DATA" --run "prior only=$OUT/md_prior_only" \
  --run "ML only=$OUT/md_ml_only" --run "Δ=$OUT/md_delta" --out "$OUT/report" --equil-ps 0.4
cat "$OUT/report/report.md"
