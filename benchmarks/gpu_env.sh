# Sourced by the GPU scripts (gpu_ablation.sh, gpu_train.sh): what the GPU image lacks (it
# has jax, flax, optax, orbax and torch, no TensorFlow or network), from the wheels that
# `make gpu-bundle` put in benchmarks/wheels/; and copy_records, which both the ablation and
# gpu_session.sh use to collect finished runs.
PY=${PYTHON:-python3}

copy_records() {  # WORKDIR DEST: each finished run's result.json + config.json -> DEST/<run id>/
  local d n=0
  for d in "$1"/runs/*/; do
    [ -f "$d/result.json" ] || continue
    mkdir -p "$2/$(basename "$d")" && cp "$d/result.json" "$d/config.json" "$2/$(basename "$d")/"
    n=$((n + 1))
  done
  echo "$n"
}
if ! $PY -c "import ml_collections" 2>/dev/null; then
  $PY -m pip install -q --no-index --find-links benchmarks/wheels ml_collections
fi
