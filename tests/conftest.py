import atexit
import os
import shutil
import tempfile

# Tests run on the CPU in float32 with exact matmuls, whatever machine they are on.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

# One persistent XLA compilation cache per test session, in a fresh temporary directory
# that is removed at the end (nothing carries over between sessions). The sweep, resume and
# kill tests run the same tiny programs in several processes (main.py subprocesses inherit
# the variable); compiling each program once took the two-workers sweep test from ~250 s
# to ~170 s on 2 cores.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="shufflenet-jax-test-xla-cache-")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fmnist_run(tmp_path_factory):
  """(workdir, result): 0.25x g3 trained 150 steps of batch 128 (a third of an epoch) on the
  real Fashion-MNIST, evaluated on the first 2000 test images. Shared by the accuracy-floor
  test and the int8-agreement test, so it trains once per session."""
  from shufflenet_jax import train
  from tests.tiny import tiny_config
  workdir = tmp_path_factory.mktemp("fmnist_run")
  c = tiny_config(model="shufflenet_0.25x_g3", batch_size=128, num_train_steps=150,
                  train_split="train", eval_split="test[:2000]", shuffle_buffer=10000,
                  checkpoint_every_steps=1000, log_every_steps=50, learning_rate=0.4,
                  warmup_steps=20, eval_batch_size=500)
  return workdir, train.train_and_evaluate(c, workdir)
