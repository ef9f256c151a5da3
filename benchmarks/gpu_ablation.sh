#!/usr/bin/env bash
# The powered Table 3 (shuffle vs no shuffle, 6 rows x 6 seeds) on a GPU machine, seeds
# vmapped 6 per program, Fashion-MNIST held on the device: no TensorFlow needed there.
#
# Prepare on a machine with the project's venv (network for the wheels, the IDX files):
#   make gpu-bundle        # data/fashion_mnist.npz + benchmarks/wheels/ (ml_collections)
# then run this script on the GPU machine from the repository root (the device tool:
# carry data/ and benchmarks/wheels/). Records land in $OUT/records/ablation_shuffle/
# (default $OUT: runs/gpu), each naming the GPU in its device field; copy them into
# results/gpu/records/ablation_shuffle/ and rebuild the table with
#   python -m experiments.tables --records results/gpu/records --out results/gpu
#
# Budget: PRESET (default power: one epoch per run) and the extra flags in "$@"; a CPU
# check of the script: PRESET=finding benchmarks/gpu_ablation.sh --config.num_train_steps=2
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
PRESET=${PRESET:-power}
. benchmarks/gpu_env.sh  # $PY, ml_collections
test -f data/fashion_mnist.npz || { echo "error: data/fashion_mnist.npz is missing (make gpu-bundle)" >&2; exit 2; }
start=$(date +%s)
# Runs a GPU session already committed (results/gpu/records/, same preset) are not trained
# again: copied into the workdir, the runner skips them.
mkdir -p "$OUT/ablation_shuffle/runs"
for d in results/gpu/records/ablation_shuffle/*/; do
  [ -f "$d/config.json" ] && grep -q "\"preset\": \"$PRESET\"" "$d/config.json" || continue
  [ -d "$OUT/ablation_shuffle/runs/$(basename "$d")" ] || cp -r "$d" "$OUT/ablation_shuffle/runs/"
done
SHUFFLENET_NO_TCMALLOC=1 $PY main.py --config=configs/ablation_shuffle.py:$PRESET \
  --workdir="$OUT/ablation_shuffle" --config.data_on_device=True \
  --config.seeds_per_program=6 --config.data_dir="$PWD/data" \
  --config.wandb.mode=disabled "$@"
copy_records "$OUT/ablation_shuffle" "$OUT/records/ablation_shuffle" >/dev/null
echo "done in $(( $(date +%s) - start )) s; records in $OUT/records/ablation_shuffle"
