#!/usr/bin/env bash
# The train step on a GPU (issue 29's item 4): ShuffleNet 1x g3 at 224x224x3, batch 256, in
# float32 and in bfloat16, JAX against PyTorch (the GPU image has torch; channels_last,
# AMP for bfloat16) and against the step's memory bound (its bytes accessed at the GPU's
# measured copy bandwidth): two runs of benchmarks/bench_train.py, a few minutes of device
# time. No TensorFlow needed.
#
# Prepare with `make gpu-bundle` (benchmarks/wheels/: ml_collections), run from the repository
# root on the GPU machine (the device tool: carry benchmarks/wheels/). Tables land in
# $OUT/bench_train_gpu_<dtype>.md (default $OUT: runs/gpu); commit them under results/.
# MODELS (default shufflenet_1.0x_g3) and extra bench_train flags in "$@"; a CPU check:
#   OUT=/tmp/gpuchk benchmarks/gpu_train.sh --batch=2 --steps=1 --rounds=1 --warmup=0
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
. benchmarks/gpu_env.sh  # $PY, ml_collections
mkdir -p "$OUT"
start=$(date +%s)
for dtype in float32 bfloat16; do
  SHUFFLENET_NO_TCMALLOC=1 $PY -m benchmarks.bench_train --shape=imagenet \
    --models="${MODELS:-shufflenet_1.0x_g3}" --impls=auto --dtype=$dtype --bound --no_eval \
    --out="$OUT/bench_train_gpu_$dtype.md" "$@"
done
echo "done in $(( $(date +%s) - start )) s; tables in $OUT"
