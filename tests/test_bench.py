"""The training-speed benchmark: its PyTorch twin is the same network as ours (parameter
count and logits), and its command line rejects bad input. The speed figures themselves
come from `python -m benchmarks.bench_train` (results/bench_train.md), never from a test."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from shufflenet_jax.models import create_model

torch = pytest.importorskip("torch", reason="benchmark-only: pip install -r requirements-bench.txt")
from benchmarks import torch_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name,stem", [("shufflenet_0.25x_g3", "small"),
                                       ("shufflenet_0.5x_g8", "imagenet"),
                                       ("shufflenet_0.25x_g1", "small"),
                                       ("unit_vgg_like_13", "small"),
                                       ("unit_resnet_13", "imagenet"),
                                       ("unit_resnext_13", "small"),
                                       ("unit_xception_like_13", "small"),
                                       ("mobilenet_v1_0.25", "small")])
def test_torch_twin_is_the_same_network(name, stem):
  kw = dict(stem=stem, num_classes=10, in_channels=3)
  model = create_model(name, rngs=nnx.Rngs(0), **kw)
  x = np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype(np.float32)
  model.train()
  model(x)  # non-trivial BN statistics
  model.eval()
  net = torch_reference.load_from_jax(torch_reference.from_registry_name(name, **kw), model)
  n_jax = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert sum(p.numel() for p in net.parameters()) == n_jax
  net.eval()
  with torch.no_grad():
    ours = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  np.testing.assert_allclose(ours, np.asarray(model(x)), rtol=1e-4, atol=1e-4)


def test_torch_twin_refuses_what_it_does_not_model():
  with pytest.raises(ValueError, match="ShuffleNets, the Table 4 units and MobileNet v1 only"):
    torch_reference.from_registry_name("alexnet")


def test_cli_rejects_an_unknown_implementation():
  r = subprocess.run([sys.executable, "-m", "benchmarks.bench_train", "--impls=lax:fast",
                      "--no_torch"], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and "'lax:fast'" in r.stderr and "matmul:shift" in r.stderr
