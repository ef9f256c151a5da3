# Sourced by the GPU scripts (gpu_ablation.sh, gpu_train.sh): what the GPU image lacks (it
# has jax, flax, optax, orbax and torch, no TensorFlow or network), from the wheels that
# `make gpu-bundle` put in benchmarks/wheels/.
PY=${PYTHON:-python3}
if ! $PY -c "import ml_collections" 2>/dev/null; then
  $PY -m pip install -q --no-index --find-links benchmarks/wheels ml_collections
fi
