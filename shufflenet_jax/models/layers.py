"""The Flax layers of the models: the grouped 1x1, grouped kxk and depthwise convolutions
with selectable implementations (``impl=``; the operations themselves are in
shufflenet_jax/models/ops.py), batch norm with its fused activation, the initializers, and
the plain conv / max-pool helpers the baselines share. Every implementation reads the same
parameter layout, so a checkpoint trained with one loads under any other.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from shufflenet_jax.catalog import DEPTHWISE_IMPLS, POINTWISE_IMPLS
from shufflenet_jax.models.ops import (_check_choice, depthwise_conv, grouped_conv,
                                       pointwise_conv)

def normal_init(std_of_fan_in):
  """A normal initializer with std = ``std_of_fan_in(fan_in)`` for HWIO / IO kernels.

  Outside a trace the numbers come from NumPy seeded by the key: ``jax.random`` would
  compile one XLA program per kernel shape, which made building a model take seconds.
  Under a trace (``jax.jit``, ``nnx.eval_shape``) it falls back to ``jax.random``.
  """
  def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    std = std_of_fan_in(math.prod(shape[:-1]))
    if isinstance(key, jax.core.Tracer):
      return jax.random.normal(key, shape, dtype) * std
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    values = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * std
    return jnp.asarray(values, dtype)
  return init


# He-normal on fan-in for convolutions (ReLU networks); the classifier starts small
# (std 0.01, as the official release) so the first steps see a loss near log(classes).
he_init = normal_init(lambda fan_in: math.sqrt(2.0 / fan_in))
classifier_init = normal_init(lambda fan_in: 0.01)
# The attribute names of the models' classifier layers (ShuffleNet, MobileNet and the other
# units: fc; AlexNet: fc8; the VGG-like classic baseline: fc3); train.py's
# ``classifier_lr_scale`` finds the classifier by these.
CLASSIFIER_NAMES = ("fc", "fc3", "fc8")


class PointwiseConv(nnx.Module):
  """Grouped 1x1 convolution without bias (paper Sec. 3.1 "pointwise group convolution")."""

  def __init__(self, in_channels: int, out_channels: int, *, groups: int = 1,
               impl: str = "lax", dtype=None, rngs: nnx.Rngs):
    _check_choice("pointwise_impl", impl, POINTWISE_IMPLS)
    if in_channels % groups or out_channels % groups:
      raise ValueError(
          f"groups={groups} must divide both in_channels={in_channels} and "
          f"out_channels={out_channels}")
    self.groups = groups
    self.impl = impl
    self.dtype = dtype
    self.kernel = nnx.Param(
        he_init(rngs.params(), (1, 1, in_channels // groups, out_channels), jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.kernel[...]
    if self.dtype is not None:
      x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    return pointwise_conv(x, kernel, self.groups, self.impl)


class GroupedConv(nnx.Module):
  """kxk grouped convolution without bias, padding k//2 (ResNeXt's 3x3). The kernel is
  ``nnx.Conv``'s (HWIO, ``kernel``), so checkpoints of either load under the other; ``impl``
  (a pointwise implementation) applies when ``groups > 1``, else XLA's dense conv is used."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
               stride: int = 1, groups: int = 1, impl: str = "lax", dtype=None,
               rngs: nnx.Rngs):
    _check_choice("pointwise_impl", impl, POINTWISE_IMPLS)
    if in_channels % groups or out_channels % groups:
      raise ValueError(f"groups={groups} must divide both in_channels={in_channels} and "
                       f"out_channels={out_channels}")
    self.stride, self.groups, self.dtype = stride, groups, dtype
    self.impl = impl if groups > 1 else "lax"
    self.kernel = nnx.Param(he_init(
        rngs.params(), (kernel_size, kernel_size, in_channels // groups, out_channels),
        jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.kernel[...]
    if self.dtype is not None:
      x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    return grouped_conv(x, kernel, self.stride, self.groups, self.impl)


class DepthwiseConv(nnx.Module):
  """3x3 depthwise convolution without bias, padding 1 (same as the official release)."""

  def __init__(self, channels: int, *, stride: int = 1, impl: str = "lax", dtype=None,
               rngs: nnx.Rngs):
    _check_choice("depthwise_impl", impl, DEPTHWISE_IMPLS)
    self.stride = stride
    self.impl = impl
    self.dtype = dtype
    self.kernel = nnx.Param(he_init(rngs.params(), (3, 3, 1, channels), jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.kernel[...]
    if self.dtype is not None:
      x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    return depthwise_conv(x, kernel, self.stride, self.impl)


def batch_norm(channels: int, dtype, rngs: nnx.Rngs) -> nnx.BatchNorm:
  # momentum 0.9 == PyTorch's momentum=0.1 (the official release); eps as in PyTorch.
  return nnx.BatchNorm(channels, momentum=0.9, epsilon=1e-5, dtype=dtype, rngs=rngs)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _bn_act(x, residual, scale, bias, axes, relu, eps):
  """Training-mode batch norm of ``x`` over ``axes`` [+ ``residual``] [-> ReLU]; returns
  (out, batch mean, batch variance). ``scale``/``bias`` broadcast against ``x``."""
  return _bn_act_fwd(x, residual, scale, bias, axes, relu, eps)[0]


def _bn_act_fwd(x, residual, scale, bias, axes, relu, eps):
  # flax's statistics (use_fast_variance): E[x^2] - E[x]^2, clipped at 0.
  mean = jnp.mean(x, axes, keepdims=True)
  var = jnp.maximum(0.0, jnp.mean(jnp.square(x), axes, keepdims=True) - jnp.square(mean))
  rstd = jax.lax.rsqrt(var + eps)
  y = (x - mean) * (rstd * scale) + bias
  if residual is not None:
    y = y + residual
  if relu:
    y = jnp.maximum(y, 0)
  return (y, mean, var), (x, y if relu else None, mean, rstd, scale, residual is not None)


def _bn_act_bwd(axes, relu, eps, res, cotangents):
  """Batch norm's gradient in two passes over the activations (the per-channel sums, then
  dx), with the ReLU mask read from the saved output: XLA's autodiff of the same forward
  materializes x - mean, the ReLU's select and each sum's operands separately."""
  x, out, mean, rstd, scale, has_residual = res
  g, d_mean, d_var = cotangents
  if relu:
    g = jnp.where(out > 0, g, 0)
  n = math.prod(x.shape[a] for a in axes)
  centered = x - mean
  xhat = centered * rstd
  sum_g = jnp.sum(g, axes, keepdims=True)
  sum_g_xhat = jnp.sum(g * xhat, axes, keepdims=True)
  dx = ((scale * rstd) * (g - sum_g / n - xhat * (sum_g_xhat / n))
        + d_mean / n + d_var * (2 / n) * centered)
  return dx, (g if has_residual else None), sum_g_xhat, sum_g


_bn_act.defvjp(_bn_act_fwd, _bn_act_bwd)


def batch_norm_act(bn: nnx.BatchNorm, x: jax.Array, residual: jax.Array | None = None,
                   relu: bool = False, feature_axes: tuple[int, ...] = (-1,)) -> jax.Array:
  """``bn(x)``, then ``+ residual`` and ReLU if asked, for ``x`` whose features (the
  module's C channels, in order) lie on ``feature_axes``: ``(-1,)`` for NHWC, ``(0, 4)``
  for the group-major (g, N, H, W, C/g) layout. Statistics over the other axes and the
  running-average update are flax's.

  In train mode on float32/float64 activations, normalization, residual add and ReLU are
  one custom-VJP function (:func:`_bn_act`) whose backward pass is the textbook batch-norm
  gradient; its outputs, gradients and statistics equal flax's BatchNorm followed by the
  same add and ReLU (tests/test_layers.py). Elsewhere (eval mode, bfloat16) it is flax's
  computation.
  """
  if bn.use_running_average is None:
    raise ValueError("BatchNorm.use_running_average is None: call model.train() or "
                     "model.eval() first")
  feature_axes = tuple(a % x.ndim for a in feature_axes)
  reduction_axes = tuple(a for a in range(x.ndim) if a not in feature_axes)
  x, mean, var, scale, bias = bn.promote_dtype(
      (x, bn.mean[...], bn.var[...], bn.scale[...], bn.bias[...]), dtype=bn.dtype)
  if not bn.use_running_average:
    if x.dtype in (jnp.float32, jnp.float64):
      shape = [x.shape[a] if a in feature_axes else 1 for a in range(x.ndim)]
      if residual is not None:
        residual = residual.astype(x.dtype)
      y, mean, var = _bn_act(x, residual, scale.reshape(shape), bias.reshape(shape),
                             reduction_axes, relu, bn.epsilon)
      _update_running_stats(bn, mean, var)
      return y
    mean, var = _batch_stats(x, reduction_axes, bn.use_fast_variance)
    _update_running_stats(bn, mean, var)
  y = _normalize(x, mean, var, scale, bias, feature_axes, bn.epsilon)
  if residual is not None:
    y = y + residual.astype(y.dtype)
  return jax.nn.relu(y) if relu else y


def _batch_stats(x: jax.Array, axes: tuple[int, ...], fast_variance: bool):
  """Per-feature mean and variance over ``axes``, in at least float32, as flax's
  BatchNorm computes them (fast: E[x^2] - E[x]^2 clipped at 0)."""
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  mean = x.mean(axes)
  if fast_variance:
    return mean, jnp.maximum(0.0, (x * x).mean(axes) - mean * mean)
  return mean, jnp.square(x - jnp.expand_dims(mean, axes)).mean(axes)


def _normalize(x: jax.Array, mean: jax.Array, var: jax.Array, scale: jax.Array,
               bias: jax.Array, feature_axes: tuple[int, ...], epsilon: float) -> jax.Array:
  """``(x - mean) * scale / sqrt(var + eps) + bias`` (statistics per feature, on
  ``feature_axes``), in flax's order of operations, cast back to ``x``'s dtype."""
  shape = [x.shape[a] if a in feature_axes else 1 for a in range(x.ndim)]
  y = x - mean.reshape(shape)
  y = y * (jax.lax.rsqrt(var.reshape(shape) + epsilon) * scale.reshape(shape))
  return (y + bias.reshape(shape)).astype(x.dtype)


def _update_running_stats(bn: nnx.BatchNorm, mean: jax.Array, var: jax.Array) -> None:
  # batch statistics (feature axes, in the module's channel order) -> running averages
  mean = jax.lax.stop_gradient(mean).reshape(-1)
  var = jax.lax.stop_gradient(var).reshape(-1)
  # set_value, not ``bn.mean[...] = ``: an indexed set compares the new value's sharding
  # with the old one's, and asking a tracer for its sharding builds an error message by
  # walking the whole jaxpr traced so far; with 48 BN layers that was a third of the train
  # step's tracing time (benchmarks/bench_compile.py).
  bn.mean.set_value(
      (bn.momentum * bn.mean[...] + (1 - bn.momentum) * mean).astype(bn.mean.dtype))
  bn.var.set_value(
      (bn.momentum * bn.var[...] + (1 - bn.momentum) * var).astype(bn.var.dtype))


def conv(cin: int, cout: int, k: int, *, stride: int = 1, bias: bool = True, padding=None,
         dtype=None, rngs: nnx.Rngs) -> nnx.Conv:
  """A k x k convolution with He initialization, padded to keep the size at stride 1 (or
  ``padding``): the plain convolution of the baselines."""
  pad = ((k // 2, k // 2),) * 2 if padding is None else padding
  return nnx.Conv(cin, cout, (k, k), strides=stride, padding=pad, use_bias=bias,
                  kernel_init=he_init, dtype=dtype, rngs=rngs)


def stem_features(net, x: jax.Array, pool=None) -> jax.Array:
  """A network's first layers, from its ``dtype``, ``conv1``, ``bn1`` and ``stem``:
  [cast to the compute dtype] -> conv1 -> BN -> ReLU [-> ``pool``, 3x3/2 max pooling by
  default, for the ``imagenet`` stem; none for ``small``]."""
  if net.dtype is not None:
    x = x.astype(net.dtype)
  x = jax.nn.relu(net.bn1(net.conv1(x)))
  if net.stem == "imagenet":
    x = (pool or max_pool)(x)
  return x


def max_pool(x: jax.Array, k: int = 3, s: int = 2, padding: str = "SAME") -> jax.Array:
  """k x k / s max pool; SAME pads like Caffe's ceil mode for these shapes."""
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, s, s, 1), padding)
