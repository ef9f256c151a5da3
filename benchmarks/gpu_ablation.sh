#!/usr/bin/env bash
# The powered tables on a GPU machine, sweep after sweep (SWEEPS; Table 3 first), seeds vmapped
# 6 per program, Fashion-MNIST held on the device: no TensorFlow needed there. A GPU session
# drains this queue as far as its time goes; the next one resumes from the committed records.
#
# Prepare on a machine with the project's venv (network for the wheels, the IDX files):
#   make gpu-bundle        # data/fashion_mnist.npz + benchmarks/wheels/ (ml_collections)
# then run this script on the GPU machine from the repository root (the device tool:
# carry data/ and benchmarks/wheels/). Records land in $OUT/records/<sweep>/ (default $OUT:
# runs/gpu), each naming the GPU in its device field; copy them into
# results/gpu/records/<sweep>/ and rebuild the tables with
#   python -m experiments.tables --records results/gpu/records --out results/gpu
#
# Budget: PRESET (default power: one epoch per run) and the extra flags in "$@"; a CPU
# check of the script: PRESET=finding SWEEPS=ablation_shuffle benchmarks/gpu_ablation.sh \
#   --config.num_train_steps=2
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
PRESET=${PRESET:-power}
. benchmarks/gpu_env.sh  # $PY, ml_collections
SWEEPS=${SWEEPS:-ablation_shuffle ablation_groups compare_mobilenet compare_units ablation_width ablation_depth}
for sweep in $SWEEPS; do
  test -f "configs/$sweep.py" || {
    echo "error: SWEEPS names '$sweep'; valid:" $(cd configs && ls ablation_*.py compare_*.py | sed 's/[.]py$//') >&2
    exit 2; }
done
test -f data/fashion_mnist.npz || { echo "error: data/fashion_mnist.npz is missing (make gpu-bundle)" >&2; exit 2; }
start=$(date +%s)
for sweep in $SWEEPS; do
  # Runs a GPU session already committed (results/gpu/records/<sweep>/, same preset) are not
  # trained again: copied into the workdir, the runner skips them.
  mkdir -p "$OUT/$sweep/runs"
  for d in results/gpu/records/"$sweep"/*/; do
    [ -f "$d/config.json" ] && grep -q "\"preset\": \"$PRESET\"" "$d/config.json" || continue
    [ -d "$OUT/$sweep/runs/$(basename "$d")" ] || cp -r "$d" "$OUT/$sweep/runs/"
  done
  echo "== $sweep ($PRESET) at $(( $(date +%s) - start )) s"
  # --reuse: a run an earlier sweep of this queue recorded (Table 3's g3 and g8 rows are
  # Table 2's too) is copied in, not trained again.
  mkdir -p "$OUT/records"
  SHUFFLENET_NO_TCMALLOC=1 $PY main.py --config=configs/$sweep.py:$PRESET \
    --workdir="$OUT/$sweep" --reuse="$OUT/records" --config.data_on_device=True \
    --config.seeds_per_program=6 --config.data_dir="$PWD/data" \
    --config.wandb.mode=disabled "$@"
  copy_records "$OUT/$sweep" "$OUT/records/$sweep" >/dev/null
done
echo "done in $(( $(date +%s) - start )) s; records in $OUT/records/"
