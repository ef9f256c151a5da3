"""The paper's baselines in the same registry: complexity against their own papers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from shufflenet_jax import complexity
from shufflenet_jax.models import create_model, layers

# MobileNet v1 paper, Table 6 / 7: MFLOPs (multiply-adds) and millions of parameters.
MOBILENET = {1.0: (569, 4.2), 0.75: (325, 2.6), 0.5: (149, 1.3), 0.25: (41, 0.5)}


@pytest.mark.parametrize("alpha", sorted(MOBILENET))
def test_mobilenet_v1_complexity(alpha):
  rec = complexity.model_complexity(f"mobilenet_v1_{alpha}")
  mflops, params_m = MOBILENET[alpha]
  assert abs(rec["mflops"] / mflops - 1) < 0.03
  assert round(rec["params"] / 1e6, 1) == params_m


def test_mobilenet_small_stem_and_bad_alpha():
  model = create_model("mobilenet_v1_0.25", stem="small", num_classes=10, in_channels=1)
  model.eval()
  assert nnx.jit(lambda m, x: m(x))(model, jnp.zeros((2, 28, 28, 1))).shape == (2, 10)
  with pytest.raises(ValueError, match=r"alpha=0.6.*1.0, 0.75, 0.5, 0.25"):
    create_model("mobilenet_v1_1.0", alpha=0.6)


def test_alexnet_complexity_as_the_paper_counts_it():
  # Paper Table 6: ~720 MFLOPs; 61 M parameters (Krizhevsky et al.).
  rec = complexity.model_complexity("alexnet")
  assert abs(rec["mflops"] / 720 - 1) < 0.03
  assert rec["params"] == 60_965_224 and round(rec["params"] / 1e6) == 61


def test_alexnet_runs_fully_convolutionally_and_on_small_images():
  model = create_model("alexnet", lrn=False)
  model.eval()
  # 480x640: fc6 (a 6x6 conv) slides over a 14x19 map; the class map is averaged.
  assert nnx.eval_shape(lambda: model(jnp.zeros((1, 480, 640, 3)))).shape == (1, 1000)
  small = create_model("alexnet", stem="small", num_classes=10, in_channels=1)
  small.eval()
  assert nnx.jit(lambda m, x: m(x))(small, jnp.zeros((2, 28, 28, 1))).shape == (2, 10)
  with pytest.raises(ValueError, match="stem='tiny'.*imagenet, small"):
    create_model("alexnet", stem="tiny")


def test_local_response_norm_matches_the_formula():
  from shufflenet_jax.models.alexnet import local_response_norm
  x = np.random.default_rng(0).normal(size=(1, 2, 3, 7)).astype(np.float32) * 10
  got = np.asarray(local_response_norm(jnp.asarray(x)))
  want = np.empty_like(x)
  for c in range(7):
    s = (x[..., max(0, c - 2):c + 3] ** 2).sum(-1)
    want[..., c] = x[..., c] / (2.0 + 1e-4 / 5 * s) ** 0.75
  np.testing.assert_allclose(got, want, rtol=1e-5)


# Their own papers: multiply-adds at 224x224 (MFLOPs) and millions of parameters.
CLASSICS = {"vgg16": (15300, 138), "googlenet": (1500, 6.8), "resnet50": (3800, 25.6)}


# GoogLeNet's 1.5 G is the sum of its paper's Table 1, which lists conv1 (7x7/2, 64 out, at
# 112x112 = 118.0 M multiply-adds) as 34 M; every other layer of ours matches that table.
GOOGLENET_CONV1 = (112 * 112 * 64 * 7 * 7 * 3 / 1e6, 34)  # (ours, its table's)


@pytest.mark.parametrize("name", sorted(CLASSICS))
def test_classic_baselines_complexity(name):
  rec = complexity.model_complexity(name)
  mflops, params_m = CLASSICS[name]
  ours = rec["mflops"]
  if name == "googlenet":
    ours, mflops = ours - GOOGLENET_CONV1[0], mflops - GOOGLENET_CONV1[1]
  assert abs(ours / mflops - 1) < 0.03, rec["mflops"]
  # GoogLeNet: 6.8 M in its paper's count; the 9 modules + FC as specified have 7.0 M.
  assert abs(rec["params"] / 1e6 - params_m) / params_m < 0.035, rec["params"]


def test_table4_unit_widths_fit_the_papers_complexity_levels():
  from shufflenet_jax import fit_units, paper
  from shufflenet_jax.models import units
  for cell in paper.table4_cells():
    if cell["kind"] == "shufflenet":
      continue
    width = units.FITTED_WIDTHS[(cell["kind"], cell["level"])]
    assert abs(fit_units.mflops(cell["kind"], width) / cell["level"] - 1) < 0.03, cell
  # The stored width is the closest on its grid (one case; `python -m
  # shufflenet_jax.fit_units` refits all): its neighbours land farther from 38.
  w, q = units.FITTED_WIDTHS[("resnet", 38)], units.QUANTUM["resnet"]
  miss = {v: abs(fit_units.mflops("resnet", v) - 38) for v in (w - q, w, w + q)}
  assert miss[w] == min(miss.values()), miss


def test_units_run_on_small_images_and_refuse_bad_arguments():
  for kind in ("vgg_like", "resnet", "xception_like", "resnext"):
    model = create_model(f"unit_{kind}_13", stem="small", num_classes=10, in_channels=1)
    model.eval()
    assert nnx.jit(lambda m, x: m(x))(model, jnp.zeros((2, 28, 28, 1))).shape == (2, 10)
  with pytest.raises(ValueError, match="unit kind='densenet'.*vgg_like, resnet"):
    create_model("unit_resnet_38", kind="densenet")
  with pytest.raises(ValueError, match="width=2; must be an integer >= 4 for resnext"):
    create_model("unit_resnext_38", width=2)


def _plain_bn_act(bn, x, residual=None, relu=False, feature_axes=(-1,)):
  """flax's BatchNorm, then the add and ReLU: what layers.batch_norm_act must equal."""
  y = bn(x) if residual is None else bn(x) + residual
  return jax.nn.relu(y) if relu else y


def _unit(kind, cin, cout, stride, **kw):
  from shufflenet_jax.models import units
  cls = units.VGGLikeUnit if kind == "vgg_like" else units.BottleneckUnit
  return lambda: cls(cin, cout, stride, dtype=jnp.float64, rngs=nnx.Rngs(0), **kw), cin


@pytest.mark.parametrize("build, cin", [
    _unit("vgg_like", 3, 8, 2),
    _unit("resnet", 8, 16, 2, mid=4),  # the 1x1 projection shortcut
    _unit("resnext", 16, 16, 1, mid=16, groups=16, pointwise_impl="matmul"),  # identity
    (lambda: create_model("mobilenet_v1_0.25", rngs=nnx.Rngs(0), stem="small",
                          in_channels=3, num_classes=10, dtype=jnp.float64), 3),
], ids=["vgg_like", "resnet_projection", "resnext_identity", "mobilenet_v1_0.25"])
def test_fused_bn_relu_trains_as_flax_batchnorm(build, cin, monkeypatch):
  """The baselines' BN + ReLU (+ residual) run as layers.batch_norm_act's custom VJP: in
  float64 the output, every parameter gradient and the updated BN statistics equal flax's
  BatchNorm followed by the add and jax.nn.relu (swapped in as the reference)."""
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(0), (4, 8, 8, cin), jnp.float64)

    def train_once():
      module = build()
      # float64 parameters and statistics too: flax's BatchNorm would write its float64
      # running averages into float32 ones (a FutureWarning now, an error in later JAX)
      nnx.update(module, jax.tree.map(lambda v: v.astype(jnp.float64), nnx.state(module)))
      module.train()
      value, grads = nnx.jit(nnx.value_and_grad(lambda m: jnp.sum(jnp.sin(m(x)))))(module)
      return value, grads, nnx.state(module, nnx.BatchStat)

    fused = train_once()
    monkeypatch.setattr(layers, "batch_norm_act", _plain_bn_act)
    plain = train_once()
  assert abs(float(fused[0]) - float(plain[0])) < 1e-9
  for tree_f, tree_p in zip(fused[1:], plain[1:]):
    for a, b in zip(jax.tree.leaves(tree_f), jax.tree.leaves(tree_p), strict=True):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-11)
