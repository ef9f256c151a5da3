import os
import sys
from pathlib import Path

# Tests run on the CPU in float32 with exact matmuls, whatever machine they are on.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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
