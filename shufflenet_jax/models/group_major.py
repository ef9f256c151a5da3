"""ShuffleNet's units in a group-major activation layout (``pointwise_impl="groupmajor"``).

With the ``matmul`` implementation every grouped 1x1 convolution transposes its NHWC input
to (g, N*H*W, C/g), runs g GEMMs and transposes back; in the backward pass the same again.
Those transposes were half of the memory traffic of a training step on XLA:CPU (issue 7).
Here the activations stay as ``(g, N, H, W, C/g)`` from the first unit to the global pool:
channel ``j * (C/g) + k`` of the NHWC tensor sits at ``[j, ..., k]``. Then

* a grouped 1x1 conv is one batched matmul with no transpose;
* the channel shuffle is one transpose (``m % g == 0``) or one permutation copy;
* depthwise conv, BN, ReLU and the residual add are per channel, so they run in place, with
  the module's own parameters and running statistics reshaped (the NHWC channel order is
  the reshape of (g, C/g));
* only the three stride-2 units (concatenation boundaries do not align with groups) and the
  global pool convert.

The functions take the NHWC modules of :mod:`shufflenet_jax.models.shufflenet` and read
their parameters unchanged, so a checkpoint loads under any implementation, and the network
computes the same function (tests/test_shufflenet.py: float64 loss, gradients and updated BN
statistics equal to the ``lax`` reference).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from shufflenet_jax.models import layers, ops


def to_group_major(x: jax.Array, groups: int) -> jax.Array:
  """NHWC -> (g, N, H, W, C/g)."""
  n, h, w, c = x.shape
  return x.reshape(n, h, w, groups, c // groups).transpose(3, 0, 1, 2, 4)


def from_group_major(x: jax.Array) -> jax.Array:
  """(g, N, H, W, m) -> NHWC with channel ``j * m + k`` = ``x[j, ..., k]``."""
  g, n, h, w, m = x.shape
  return x.transpose(1, 2, 3, 0, 4).reshape(n, h, w, g * m)


def channel_shuffle(x: jax.Array) -> jax.Array:
  """:func:`ops.channel_shuffle` of a group-major tensor, result group-major.

  The shuffled NHWC channel ``o = k * g + j`` is input channel ``(j, k)``; it goes to
  ``[o // m, ..., o % m]``. When g divides m this is a single transpose:
  ``out[a, p, k' * g + j] = x[j, p, a * (m/g) + k']``.
  """
  g, n, h, w, m = x.shape
  if m % g == 0:
    y = x.reshape(g, n * h * w, g, m // g).transpose(2, 1, 3, 0)
    return y.reshape(g, n, h, w, m)
  return to_group_major(x.transpose(1, 2, 3, 4, 0).reshape(n, h, w, m * g), g)


def _cast(module, x, kernel):
  if module.dtype is not None:
    return x.astype(module.dtype), kernel.astype(module.dtype)
  return x, kernel


def pointwise_conv(conv: layers.PointwiseConv, x: jax.Array) -> jax.Array:
  """The grouped 1x1 conv ``conv`` of a group-major ``x`` with ``conv.groups`` groups:
  (g, N, H, W, c) x (g, c, d) -> (g, N, H, W, d), batched over g."""
  x, kernel = _cast(conv, x, conv.kernel[...])
  if x.shape[0] != conv.groups:
    raise ValueError(f"group-major input has {x.shape[0]} groups; the conv has {conv.groups}")
  wg = ops._group_major(kernel, conv.groups)  # (g, c, d)
  return jax.lax.dot_general(x, wg, (((4,), (1,)), ((0,), (0,))))


def depthwise_conv(conv: layers.DepthwiseConv, x: jax.Array) -> jax.Array:
  """The 3x3 depthwise conv ``conv`` of a group-major ``x``."""
  x, kernel = _cast(conv, x, conv.kernel[...])
  g, _, _, _, m = x.shape
  taps = kernel.reshape(3, 3, g, 1, 1, 1, m)  # (3, 3, 1, C) -> per tap, the layout's (g, m)
  if conv.impl == "lax":
    per_group = kernel.reshape(3, 3, 1, g, m).transpose(3, 0, 1, 2, 4)
    return jax.vmap(lambda xi, ki: ops._lax_conv(xi, ki, conv.stride, m))(x, per_group)
  # shift: the (g, N) leading axes are batch axes for the windows.
  if conv.impl == "shiftvjp":
    return ops.shift_conv(x, taps, conv.stride, 1)
  return ops._shift(x, taps, conv.stride)


def batch_norm(bn: nnx.BatchNorm, x: jax.Array, residual: jax.Array | None = None,
               relu: bool = False) -> jax.Array:
  """``bn`` (an NHWC BatchNorm over C = g * m channels) applied to a group-major ``x``, then
  ``+ residual`` and ReLU if asked: the same statistics, running-average update and
  normalization as ``bn(from_group_major(x))``, computed per (g, m) feature over the
  (N, H, W) axes (:func:`layers.batch_norm_act`)."""
  return layers.batch_norm_act(bn, x, residual, relu, feature_axes=(0, 4))


def squeeze_excite(se, y: jax.Array) -> jax.Array:
  """``SqueezeExcite`` on a group-major ``y`` (the gate is per image and channel)."""
  g, n, _, _, m = y.shape
  s = jnp.mean(y, axis=(2, 3)).transpose(1, 0, 2).reshape(n, g * m)
  s = jax.nn.sigmoid(se.expand(jax.nn.relu(se.reduce(s))))
  return y * s.reshape(n, g, m).transpose(1, 0, 2)[:, :, None, None, :].astype(y.dtype)


def avg_pool_3x3_s2(x: jax.Array, impl: str) -> jax.Array:
  """The stride-2 shortcut's average pool of a group-major ``x`` (group-major result)."""
  g, n = x.shape[:2]
  y = ops.pool_3x3_s2(x.reshape(g * n, *x.shape[2:]), "avg", impl)
  return y.reshape(g, n, *y.shape[1:])


def global_avg_pool(x: jax.Array) -> jax.Array:
  """Mean over H, W of a group-major ``x`` -> (N, C) in NHWC channel order."""
  g, n, _, _, m = x.shape
  return jnp.mean(x, axis=(2, 3)).transpose(1, 0, 2).reshape(n, g * m)
