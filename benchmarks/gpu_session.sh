#!/usr/bin/env bash
# Everything this project runs on a lent GPU machine, in one device call that fits a 15-minute
# device budget, each part skipped once its output is committed:
#   1. benchmarks/gpu_train.sh (issue 29's item 4: 1x g3 at 224x224, batch 256, float32 and
#      bfloat16, JAX vs PyTorch vs the memory bound): until results/bench_train_gpu_*.md
#      are committed (TRAIN below);
#   2. benchmarks/profile_step.py on the same step in both dtypes (kernel times by JAX
#      operation): until results/gpu/profile_gpu_*.txt are committed (PROFILE below);
#   3. benchmarks/gpu_ablation.sh (the powered tables, Table 3 first; committed GPU records
#      are not trained again) until DEADLINE seconds after the start.
# The runs finished by then are kept in $WORK (default runs/gpu_work; on a still-warm
# machine the next call resumes them). What comes back fits the device tool's limits (at
# most 8 files, 2 folders deep): $OUT/gpu_session.log, $OUT/bench_train_gpu_<dtype>.md,
# $OUT/profile_gpu_<dtype>.txt, $OUT/ablation_records.tgz (records/<sweep>/<run id>/
# {result,config}.json).
# Device call (carry data and benchmarks/wheels; `make gpu-bundle` makes both):
#   WORK=/tmp/gpu_work benchmarks/gpu_session.sh       (timeout_s 600; DEADLINE default 540)
# then here: tar xzf <files_at>/ablation_records.tgz -C results/gpu/ and
# python -m experiments.tables --records results/gpu/records --out results/gpu; the bench
# tables go to results/, the profiles to results/gpu/.
# A CPU check: TRAIN=1 DEADLINE=120 TRAIN_FLAGS="--batch=2 --steps=1 --rounds=1 --warmup=0" \
#   PROFILE_FLAGS="--batch=2 --steps=1" ABLATION_FLAGS=--config.num_train_steps=2 \
#   PRESET=finding SWEEPS=ablation_shuffle OUT=/tmp/gs WORK=/tmp/gw benchmarks/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-runs/gpu}
WORK=${WORK:-runs/gpu_work}  # the ablation's workdir: checkpoints and runs, not sent back
DEADLINE=${DEADLINE:-540}
TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-280}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_session.log") 2>&1
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
echo "== $(date -u +%FT%TZ) on $(hostname); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
${PYTHON:-python3} -c "import jax, flax, optax, orbax.checkpoint as oc, torch; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, jax.devices())" || true
. benchmarks/gpu_env.sh  # $PY with ml_collections; copy_records
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.5}  # torch shares the GPU
# TRAIN=auto (default): the train-step benchmark only while its tables are not committed
# (results/bench_train_gpu_*.md); TRAIN=1 always, TRAIN=0 never.
TRAIN=${TRAIN:-auto}
if [ "$TRAIN" = auto ]; then
  TRAIN=1
  [ -f results/bench_train_gpu_float32.md ] && [ -f results/bench_train_gpu_bfloat16.md ] && TRAIN=0
fi
if [ "$TRAIN" = 1 ]; then
  # shellcheck disable=SC2086
  timeout --kill-after=10 "$TRAIN_TIMEOUT" benchmarks/gpu_train.sh --steps=20 --rounds=5 ${TRAIN_FLAGS:-}
  echo "== gpu_train.sh: rc $? at $(elapsed) s"
else
  echo "== gpu_train.sh: skipped (TRAIN=0, or its tables are committed; TRAIN=1 runs it again)"
fi
# PROFILE=auto (default): the profiles only while results/gpu/profile_gpu_*.txt are not
# committed (the profile_step_*.txt there are session 34's, from a parser that missed tuples).
PROFILE=${PROFILE:-auto}
if [ "$PROFILE" = auto ]; then
  PROFILE=1
  [ -f results/gpu/profile_gpu_float32.txt ] && [ -f results/gpu/profile_gpu_bfloat16.txt ] \
    && PROFILE=0
fi
if [ "$PROFILE" = 1 ]; then
  for dtype in float32 bfloat16; do
    # Command buffers (CUDA graphs) off: their kernels would all be named by the buffer's
    # thunk, not by the HLO instruction that launched them.
    # shellcheck disable=SC2086
    XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_command_buffer=" SHUFFLENET_NO_TCMALLOC=1 \
      timeout --kill-after=10 "${PROFILE_TIMEOUT:-150}" $PY -m benchmarks.profile_step \
      --shape=imagenet --batch=256 --dtype=$dtype --steps=5 --top=25 ${PROFILE_FLAGS:-} \
      > "$OUT/profile_gpu_$dtype.txt" 2>&1
    echo "== profile_step $dtype: rc $? at $(elapsed) s"; tail -n 40 "$OUT/profile_gpu_$dtype.txt"
  done
else
  echo "== profile_step: skipped (PROFILE=0, or results/gpu/profile_gpu_*.txt committed; PROFILE=1 runs it)"
fi
left=$(( DEADLINE - $(elapsed) ))
if [ "$left" -gt 30 ]; then
  # shellcheck disable=SC2086
  OUT=$WORK timeout --kill-after=10 "$left" benchmarks/gpu_ablation.sh ${ABLATION_FLAGS:-}
  echo "== gpu_ablation.sh: rc $? at $(elapsed) s (124: stopped at the deadline)"
else
  echo "== gpu_ablation.sh: skipped, ${left} s left"
fi
pack=$(mktemp -d)  # copy_records (gpu_env.sh): also the runs finished before a deadline's kill
n=0
for w in "$WORK"/*/; do
  [ -d "$w/runs" ] && n=$(( n + $(copy_records "$w" "$pack/records/$(basename "$w")") ))
done
[ "$n" -gt 0 ] && tar czf "$OUT/ablation_records.tgz" -C "$pack" records
rm -rf "$pack"
echo "== $n finished ablation runs packed; done in $(elapsed) s"
