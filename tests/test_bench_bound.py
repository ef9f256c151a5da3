"""benchmarks/bench_bound.py: each stand-in replaces its layer with the same shapes, only
inside its block. The speeds come from the benchmark (results/bench_bound.md), not a test."""

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from benchmarks import bench_bound
from shufflenet_jax.models import create_model, layers, ops

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stride", [1, 2])
def test_free_depthwise_has_the_shape_of_the_conv(stride):
  x = jnp.ones((2, 7, 7, 6))
  k = jnp.ones((3, 3, 1, 6))
  assert (bench_bound._free_depthwise(x, k, stride).shape
          == ops.depthwise_conv(x, k, stride).shape)


def test_stand_ins_replace_the_layers_only_inside_their_block():
  model = create_model("shufflenet_0.25x_g3", rngs=nnx.Rngs(0), stem="small",
                       num_classes=10, in_channels=1)
  model.train()
  x = np.random.default_rng(0).standard_normal((4, 28, 28, 1)).astype(np.float32)
  originals = (layers.depthwise_conv, layers.batch_norm_act, ops.channel_shuffle)
  real = nnx.clone(model)(x)
  outputs = {}
  for variant in bench_bound.VARIANTS[1:]:
    with bench_bound.stand_ins(variant):
      outputs[variant] = nnx.clone(model)(x)
    assert (layers.depthwise_conv, layers.batch_norm_act, ops.channel_shuffle) == originals
  for variant, y in outputs.items():
    assert y.shape == real.shape
    assert not np.allclose(y, real), variant  # the stand-in was used
  np.testing.assert_array_equal(nnx.clone(model)(x), real)
  with pytest.raises(RuntimeError):
    with bench_bound.stand_ins("all"):
      raise RuntimeError("restored on errors too")
  assert (layers.depthwise_conv, layers.batch_norm_act, ops.channel_shuffle) == originals


def test_cli_rejects_models_without_the_layers():
  out = subprocess.run([sys.executable, "-m", "benchmarks.bench_bound", "--models=vgg16"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2
  assert "--models: vgg16 is not a ShuffleNet" in out.stderr
