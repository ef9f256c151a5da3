"""The ShuffleNet model: shapes, the shuffle switch, BN modes, implementation equivalence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from shufflenet_jax.models import create_model, ops, shufflenet


@nnx.jit
def forward(model, x):
  return model(x)


def test_output_shape_imagenet_stem_224():
  model = create_model("shufflenet_1.0x_g3")
  model.eval()
  assert forward(model, jnp.zeros((2, 224, 224, 3))).shape == (2, 1000)


@pytest.mark.parametrize("name", ["shufflenet_0.5x_g8", "shufflenet_0.25x_g1_shallow_se"])
def test_output_shape_small_stem_28(name):
  model = create_model(name, stem="small", num_classes=10, in_channels=1)
  model.eval()
  assert forward(model, jnp.zeros((3, 28, 28, 1))).shape == (3, 10)


def test_stage_widths_follow_the_paper():
  assert shufflenet.stage_channels(3, 1.0) == (240, 480, 960)
  assert shufflenet.stage_channels(8, 0.5) == (192, 384, 768)
  assert shufflenet.stage_channels(3, 0.5, "shallow") == (180, 360, 720)
  assert shufflenet.stem_channels(3, 0.5) == 12
  assert shufflenet.stem_channels(8, 0.25) == 8
  assert shufflenet.stem_channels(3, 2.0) == 48
  model = nnx.eval_shape(lambda: create_model("shufflenet_1.0x_g3"))
  assert len(model.units) == 16
  assert len(nnx.eval_shape(lambda: create_model("shufflenet_0.5x_g3_shallow")).units) == 8


def _copy_params(src, dst):
  nnx.update(dst, nnx.state(src))


def test_noshuffle_changes_only_the_shuffle(monkeypatch):
  kw = dict(stem="small", num_classes=10, in_channels=1)
  on = create_model("shufflenet_0.25x_g3", **kw)
  off = create_model("shufflenet_0.25x_g3_noshuffle", **kw)
  # Same parameter tree, same shapes.
  shapes = lambda m: jax.tree.map(jnp.shape, nnx.state(m))
  assert shapes(on) == shapes(off)
  _copy_params(on, off)
  on.eval(); off.eval()
  x = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
  assert not np.allclose(forward(on, x), forward(off, x), atol=1e-4)  # the shuffle does something
  # ... and it is the only difference: with the shuffle made the identity, they agree.
  monkeypatch.setattr(ops, "channel_shuffle", lambda x, g, order="paper": x)
  np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(on, x), forward(off, x), rtol=1e-6,
                             atol=1e-6)


def test_batchnorm_train_and_eval_modes():
  model = create_model("shufflenet_tiny")
  x = jax.random.normal(jax.random.key(1), (8, 28, 28, 1))
  mean0 = model.bn1.mean[...].copy()
  model.train()
  y_train = forward(model, x)
  mean1 = model.bn1.mean[...].copy()
  assert not np.allclose(mean0, mean1)  # train mode updates running statistics
  model.eval()
  y_eval1 = forward(model, x)
  np.testing.assert_array_equal(model.bn1.mean[...], mean1)  # eval mode does not
  np.testing.assert_array_equal(y_eval1, forward(model, x))
  assert not np.allclose(y_train, y_eval1, atol=1e-3)


def _loss_and_grads(model, x):
  return nnx.jit(lambda m: nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(m))(model)


def _max_grad_err(g_alt, g_ref):
  leaves_ref, leaves_alt = jax.tree.leaves(g_ref), jax.tree.leaves(g_alt)
  scale = max(float(jnp.max(jnp.abs(b))) for b in leaves_ref)
  return max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(leaves_alt, leaves_ref)) / scale


# Each implementation is checked alone in test_layers.py; here composed in the network. The
# group-major cases cover both of its shuffle paths (0.25x g8: m % g != 0; 0.5x g3 shallow:
# m = 15, one transpose), SE, g = 1, every depthwise implementation and BN's two modes; the
# shallow ones (half the compile time) are checked in float64 train mode only. The
# CPU defaults (shift pool, stored unit outputs) run in the last two.
CPU_EXTRAS = dict(pool_impl="shift", materialize_units=True)


@pytest.mark.parametrize("name,pointwise,depthwise,extra", [
    ("shufflenet_0.25x_g8", "matmul", "shift", {}),
    ("shufflenet_0.25x_g8", "groupmajor", "shift", {}),
    ("shufflenet_0.5x_g3_shallow_se", "groupmajor", "lax", {}),
    ("shufflenet_0.25x_g1_shallow", "groupmajor", "shiftvjp", CPU_EXTRAS),
    ("shufflenet_0.25x_g8_shallow", "matmul", "shiftvjp", CPU_EXTRAS),
])
def test_model_implementations_agree(name, pointwise, depthwise, extra):
  """The whole network, forward and backward, is the same function under every
  implementation: in float64 the loss, the gradients and the updated BN statistics agree
  to 1e-10 in BN's train mode (in float32 train mode, BN on 4 images of 4x4 amplifies
  summation-order noise to ~1e-3, so float32 is checked in eval mode, to 1e-5)."""
  kw = dict(stem="small", num_classes=10, in_channels=1)
  ref = create_model(name, **kw)
  alt = create_model(name, pointwise_impl=pointwise, depthwise_impl=depthwise, **extra, **kw)
  _copy_params(ref, alt)
  x = jax.random.normal(jax.random.key(2), (4, 28, 28, 1))
  if "shallow" not in name:
    ref.eval(); alt.eval()
    (l_ref, g_ref), (l_alt, g_alt) = _loss_and_grads(ref, x), _loss_and_grads(alt, x)
    np.testing.assert_allclose(l_alt, l_ref, rtol=1e-5)
    assert _max_grad_err(g_alt, g_ref) < 1e-5
  with jax.enable_x64(True):
    ref.train(); alt.train()
    for m in (ref, alt):
      nnx.update(m, jax.tree.map(lambda a: a.astype(jnp.float64), nnx.state(m)))
    x64 = x.astype(jnp.float64)
    (l_ref, g_ref), (l_alt, g_alt) = _loss_and_grads(ref, x64), _loss_and_grads(alt, x64)
    np.testing.assert_allclose(l_alt, l_ref, rtol=1e-12)
    assert _max_grad_err(g_alt, g_ref) < 1e-10
    stats = lambda m: jax.tree.leaves(nnx.state(m, nnx.BatchStat))
    for a, b in zip(stats(alt), stats(ref), strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(groups=5), r"groups=5 .*valid groups: 1, 2, 3, 4, 8"),
    (dict(groups=7), r"groups=7 .*valid groups: 1, 2, 3, 4, 8"),
    (dict(width=0.3), r"width=0.3 .*valid widths: 0.25, 0.5, 1.0, 1.5, 2.0"),
    (dict(depth="deep"), r"depth='deep'.*standard, shallow"),
    (dict(stem="tiny"), r"stem='tiny'.*imagenet, small"),
    (dict(num_classes=0), r"num_classes=0"),
])
def test_bad_model_arguments_raise_value_error(kwargs, match):
  with pytest.raises(ValueError, match=match):
    create_model("shufflenet_1.0x_g3", **kwargs)


def test_unknown_name_and_argument():
  with pytest.raises(ValueError, match=r"unknown model name 'shufflenet_1.0x_g5'.*did you mean"):
    create_model("shufflenet_1.0x_g5")
  with pytest.raises(ValueError, match=r"unknown argument\(s\) colour"):
    create_model("shufflenet_1.0x_g3", colour="red")


def test_zero_init_residual_starts_every_stride1_unit_as_the_identity():
  from configs import default, imagenet, sweeps
  from shufflenet_jax import plan as run_plan
  model = create_model("shufflenet_0.25x_g3", rngs=nnx.Rngs(0), stem="small", num_classes=10,
                       in_channels=1, zero_init_residual=True)
  model.eval()
  x = model.stem_features(jax.random.normal(jax.random.key(1), (2, 28, 28, 1)))
  for unit in model.units:
    y = unit(x)
    if unit.stride == 1:
      assert jnp.array_equal(y, x)  # x >= 0 (after a ReLU) and the branch adds exactly 0
    else:
      assert float(jnp.abs(y[..., x.shape[-1]:]).max()) > 0  # the concatenated branch is live
    x = y
  plain = create_model("shufflenet_0.25x_g3", rngs=nnx.Rngs(0))
  assert float(jnp.abs(plain.units[1].bn3.scale[...]).min()) == 1.0
  # A config switch, off by default (the paper's init), passed to the models that take it.
  c = default.get_config("quick")
  assert "zero_init_residual" not in run_plan.model_kwargs(c)
  c.zero_init_residual = True
  assert run_plan.model_kwargs(c)["zero_init_residual"] is True
  c.model = "mobilenet_v1_0.25"
  assert "zero_init_residual" not in run_plan.model_kwargs(c)
  assert imagenet.get_config().zero_init_residual is False
  # The sweeps' Fashion-MNIST presets take it (same init at every grid point), ImageNet not.
  assert sweeps.sweep_config("t", {}, "proxy").zero_init_residual is True
  assert sweeps.sweep_config("t", {}, "imagenet").zero_init_residual is False


@pytest.mark.parametrize("name", ["shufflenet_0.25x_g3_se", "mobilenet_v1_0.25",
                                  "unit_resnext_13", "unit_xception_like_13", "googlenet"])
def test_a_key_stream_builds_the_parameters_nnx_rngs_builds(name):
  """registry.KeyStream(seed) (the keys counted in Python, fast under a trace) draws the
  keys nnx.Rngs(seed) draws: every variable of the model is equal, for each model family
  the training and the complexity count build."""
  from shufflenet_jax.models import registry
  ours, flax_rngs = (nnx.state(create_model(name, rngs=r)) for r in
                     (registry.KeyStream(7), nnx.Rngs(7)))
  a, b = jax.tree.leaves_with_path(ours), jax.tree.leaves_with_path(flax_rngs)
  assert [p for p, _ in a] == [p for p, _ in b] and len(a) > 20
  for (path, x), (_, y) in zip(a, b):
    np.testing.assert_array_equal(x, y, err_msg=str(path))
  different = nnx.state(create_model(name, rngs=registry.KeyStream(8)), nnx.Param)
  assert not all(np.array_equal(x, y) for x, y in zip(
      jax.tree.leaves(different), jax.tree.leaves(nnx.state(create_model(name), nnx.Param))))
