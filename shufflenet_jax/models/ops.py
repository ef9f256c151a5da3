"""The pure operations behind the layers: channel shuffle, the grouped 1x1 / depthwise /
grouped kxk convolution implementations and their custom gradients, the stride-2 pools, and
the materialization barrier. No Flax modules here (shufflenet_jax/models/layers.py builds
them on these); every implementation computes exactly what the ``lax.conv_general_dilated``
reference computes (tests/test_layers.py checks outputs and gradients) and reads the same
parameter layout:

* grouped 1x1 conv kernel: ``(1, 1, in_channels // groups, out_channels)`` (HWIO, the
  layout ``lax`` uses with ``feature_group_count``; output channel ``o`` belongs to group
  ``o // (out_channels // groups)``);
* depthwise 3x3 kernel: ``(3, 3, 1, channels)``.

Why several implementations: XLA:CPU lowers the weight gradient of a grouped convolution
to a dense masked convolution, about ``groups`` times the work (docs/design.md section 7); a
group-major batched matmul avoids that.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from shufflenet_jax.catalog import DEPTHWISE_IMPLS, POINTWISE_IMPLS, POOL_IMPLS, SHUFFLE_ORDERS

_DIMS = ("NHWC", "HWIO", "NHWC")


def _check_choice(name: str, value, valid) -> None:
  if value not in valid:
    raise ValueError(
        f"{name}={value!r} is not valid; valid choices: {', '.join(map(str, valid))}")


def channel_shuffle(x: jax.Array, groups: int, order: str = "paper") -> jax.Array:
  """Channel shuffle (paper Sec. 3.1, Fig. 1c) on an NHWC tensor.

  ``paper``: the C channels are read as a (groups, C // groups) matrix, transposed to
  (C // groups, groups) and flattened, so output channel ``k * groups + j`` is input channel
  ``j * (C // groups) + k``: after the shuffle every group of the next grouped conv sees
  one channel from each group of the previous one.

  ``release``: the official code's (ShuffleNet-Series), which reads the channels as a
  (C // groups, groups) matrix: the inverse permutation, output channel ``j * (C // groups)
  + k`` is input channel ``k * groups + j``. The release's weights need it where the
  channels per group are not a multiple of ``groups`` (0.5x, 1x, 1.5x g8): there the two
  permutations connect different channels and no reordering of the weights makes them
  compute the same function (docs/model.md).
  """
  _check_choice("shuffle_order", order, SHUFFLE_ORDERS)
  *lead, c = x.shape
  if c % groups:
    raise ValueError(f"channel_shuffle: groups={groups} does not divide {c} channels")
  rows = groups if order == "paper" else c // groups
  return x.reshape(*lead, rows, c // rows).swapaxes(-1, -2).reshape(*lead, c)


def _group_major(kernel: jax.Array, groups: int) -> jax.Array:
  """(1, 1, c, g*d) HWIO kernel -> (g, c, d) per-group matrices."""
  _, _, c, out = kernel.shape
  return kernel.reshape(c, groups, out // groups).transpose(1, 0, 2)


def pointwise_conv(x: jax.Array, kernel: jax.Array, groups: int,
                   impl: str = "lax") -> jax.Array:
  """Grouped 1x1 convolution of NHWC ``x`` with an HWIO ``(1, 1, C/g, D)`` kernel."""
  _check_choice("pointwise_impl", impl, POINTWISE_IMPLS)
  n, h, w, cin = x.shape
  out = kernel.shape[-1]
  if impl == "lax":
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "VALID", dimension_numbers=_DIMS, feature_group_count=groups)
  if groups == 1:
    # Every matmul form is the same plain matmul, on 2-D operands: XLA:CPU gave the weight
    # gradient of the 4-D dot a transposed copy of the cotangent and a slower GEMM
    # (1.0x g8 trained 5% faster with this).
    return jnp.dot(x.reshape(n * h * w, cin), kernel[0, 0]).reshape(n, h, w, out)
  c = cin // groups
  wg = _group_major(kernel, groups)  # (g, c, d)
  if impl == "einsum":
    y = jnp.einsum("nhwgc,gcd->nhwgd", x.reshape(n, h, w, groups, c), wg)
    return y.reshape(n, h, w, out)
  if impl in ("matmul", "groupmajor"):  # groupmajor: see group_major.py for ShuffleNet
    # Group-major batched matmul: (g, M, c) @ (g, c, d); the batch dim leads, which XLA:CPU
    # turns into `groups` dense GEMMs for the forward pass and both gradients.
    xg = x.reshape(n * h * w, groups, c).transpose(1, 0, 2)
    y = jax.lax.dot_general(xg, wg, (((2,), (1,)), ((0,), (0,))))  # (g, M, d)
    return y.transpose(1, 0, 2).reshape(n, h, w, out)
  # blockdiag: one dense (C, D) matmul with a block-diagonal kernel (zeros off the blocks).
  eye = jnp.eye(groups, dtype=kernel.dtype)
  dense = jnp.einsum("gcd,gh->gchd", wg, eye).reshape(cin, out)
  return jnp.dot(x, dense)


def _taps(x: jax.Array, kernel_hw: tuple[int, int], stride: int):
  """For a kxk convolution with padding k//2 of ``x`` (..., H, W, C), every leading axis a
  batch axis: (i, j, the window of ``x`` that kernel tap (i, j) multiplies), each a strided
  slice of the padded input shaped like the output."""
  kh, kw = kernel_hw
  ph, pw = kh // 2, kw // 2
  lead = x.shape[:-3]
  h, w, c = x.shape[-3:]
  n = math.prod(lead)
  ho = (h + 2 * ph - kh) // stride + 1
  wo = (w + 2 * pw - kw) // stride + 1
  xp = jnp.pad(x.reshape(n, h, w, c), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  for i in range(kh):
    for j in range(kw):
      tap = jax.lax.slice(xp, (0, i, j, 0),
                          (n, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, c),
                          (1, stride, stride, 1))
      yield i, j, tap.reshape(*lead, ho, wo, c)


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int = 1,
                   impl: str = "lax") -> jax.Array:
  """3x3 depthwise convolution, padding 1, of NHWC ``x`` with a ``(3, 3, 1, C)`` kernel."""
  _check_choice("depthwise_impl", impl, DEPTHWISE_IMPLS)
  if impl == "lax":
    return _lax_conv(x, kernel, stride, x.shape[-1])
  # shift: the sum of kh*kw shifted, strided slices times a per-channel weight.
  if impl == "shiftvjp":
    return shift_conv(x, kernel[:, :, 0], stride, 0)
  return _shift(x, kernel[:, :, 0], stride)


def _shift(x, taps, stride):
  """The ``shift`` depthwise conv of ``x`` (..., H, W, C): every leading axis is a batch
  axis, and tap (i, j)'s weight ``taps[i, j]`` broadcasts against the output."""
  return _sum_over_taps(x, taps.shape[:2], stride, lambda i, j, tap: tap * taps[i, j])


# Images per slice of the batch in shift_conv's weight gradient: its windows stay in cache.
SHIFT_VJP_CHUNK = 4


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def shift_conv(x, taps, stride, batch_axis):
  """:func:`_shift` with a hand-written backward pass. Autodiff of the shifted-window sum
  keeps every window of ``x`` from the forward pass for the weight gradient: XLA:CPU
  writes kh*kw copies of each depthwise input to memory and holds them until the backward
  pass. Here the backward pass saves only ``x`` and recomputes the windows, a few images
  (``SHIFT_VJP_CHUNK``, along ``batch_axis``) at a time, so they never leave the cache."""
  return _shift(x, taps, stride)


def _shift_conv_fwd(x, taps, stride, batch_axis):
  return _shift(x, taps, stride), (x, taps)


def _shift_conv_bwd(stride, batch_axis, res, dy):
  x, taps = res
  _, vjp_x = jax.vjp(lambda x: _shift(x, taps, stride), x)
  (dx,) = vjp_x(dy)
  n = x.shape[batch_axis]
  chunk = math.gcd(n, SHIFT_VJP_CHUNK)
  wshape = taps.shape[2:]
  padded = (1,) * (dy.ndim - len(wshape)) + wshape
  axes = tuple(a for a, size in enumerate(padded) if size == 1)
  acc_dtype = jnp.promote_types(taps.dtype, jnp.float32)  # bfloat16 sums in float32

  def add_chunk(k, acc):
    xc = jax.lax.dynamic_slice_in_dim(x, k * chunk, chunk, batch_axis)
    dyc = jax.lax.dynamic_slice_in_dim(dy, k * chunk, chunk, batch_axis)
    grads = [jnp.sum(dyc * tap, axis=axes, dtype=acc_dtype)
             for _, _, tap in _taps(xc, taps.shape[:2], stride)]
    return acc + jnp.stack(grads).reshape(taps.shape)

  dtaps = jax.lax.fori_loop(0, n // chunk, add_chunk, jnp.zeros(taps.shape, acc_dtype))
  return dx, dtaps.astype(taps.dtype)


shift_conv.defvjp(_shift_conv_fwd, _shift_conv_bwd)


def grouped_conv(x: jax.Array, kernel: jax.Array, stride: int = 1, groups: int = 1,
                 impl: str = "lax") -> jax.Array:
  """kxk grouped convolution, padding k//2, of NHWC ``x`` with an HWIO
  ``(k, k, C/groups, D)`` kernel (ResNeXt's 3x3). ``impl`` is a pointwise implementation:
  ``lax`` is XLA's grouped convolution; ``matmul`` stacks the k*k taps' windows per group
  (im2col) and runs one batched GEMM of depth k*k*C/groups per group; any other sums, over
  the taps, the grouped 1x1 convolution of the tap's window (:func:`pointwise_conv` with
  that ``impl``). All avoid XLA:CPU's dense masked weight gradient of grouped convolutions;
  im2col trains ResNeXt's cardinality-16 3x3 at 14x14 3x faster than the sum over taps on
  a 2-core CPU (fwd + both gradients, batch 128, 48 channels: 61 vs 180 ms; XLA's 1.8 s)."""
  _check_choice("pointwise_impl", impl, POINTWISE_IMPLS)
  if impl == "lax":
    return _lax_conv(x, kernel, stride, groups)
  if impl == "matmul":
    return _im2col_conv(x, kernel, stride, groups)
  return _sum_over_taps(x, kernel.shape[:2], stride, lambda i, j, tap: pointwise_conv(
      tap, kernel[i:i + 1, j:j + 1], groups, impl))


def _im2col_conv(x, kernel, stride, groups):
  """kxk grouped convolution as a batched GEMM: (g, pixels, k*k*C/g) @ (g, k*k*C/g, D/g)."""
  kh, kw, cg, d = kernel.shape
  windows = jnp.stack([tap for _, _, tap in _taps(x, (kh, kw), stride)], axis=-2)
  out_shape = (*windows.shape[:-2], d)  # (..., Ho, Wo, D)
  m, dg = math.prod(windows.shape[:-2]), d // groups
  if groups == 1:
    out = windows.reshape(m, kh * kw * cg) @ kernel.reshape(kh * kw * cg, d)
    return out.reshape(out_shape)
  cols = windows.reshape(m, kh * kw, groups, cg).transpose(2, 0, 1, 3)
  k = kernel.reshape(kh * kw, cg, groups, dg).transpose(2, 0, 1, 3)
  out = jnp.einsum("gmk,gkd->gmd", cols.reshape(groups, m, kh * kw * cg),
                   k.reshape(groups, kh * kw * cg, dg))
  return out.transpose(1, 0, 2).reshape(out_shape)


def _sum_over_taps(x, kernel_hw, stride, term):
  """The sum over the kernel's taps (i, j) of ``term(i, j, window)`` (see :func:`_taps`)."""
  out = None
  for i, j, tap in _taps(x, kernel_hw, stride):
    t = term(i, j, tap)
    out = t if out is None else out + t
  return out


def _lax_conv(x, kernel, stride, groups):
  kh, kw = kernel.shape[:2]
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), ((kh // 2, kh // 2), (kw // 2, kw // 2)),
      dimension_numbers=_DIMS, feature_group_count=groups)


def pool_3x3_s2(x: jax.Array, kind: str, impl: str = "window") -> jax.Array:
  """3x3 stride-2 pooling with padding 1 on each side (as the official release).

  The padding is an explicit ``jnp.pad`` followed by a VALID window, which exports to a
  TFLite PAD + pool that XNNPACK accepts (docs/design.md section 6). Average pooling divides by 9
  everywhere (PyTorch's ``count_include_pad=True``). Max pooling pads with zeros, which is
  exact because it only ever follows a ReLU.

  ``impl="depthwise"`` computes the average pool as a depthwise convolution with constant
  weights 1/9 (the same numbers): int8 TFLite models need it, because XNNPACK does not take
  a quantized AVERAGE_POOL_2D but does take a quantized DEPTHWISE_CONV_2D
  (shufflenet_jax/export/convert.py, export_overrides).

  ``impl="shift"`` sums the nine shifted, strided windows times 1/9 (:func:`_shift`, the
  same numbers up to float rounding) and has a hand-written separable gradient. XLA:CPU
  computes the gradient of ``window`` as a reduce-window over the dilated cotangent, which
  was 6% of a 1.0x g3 training step (benchmarks/profile_step.py); ``auto`` trains with
  ``shift`` on CPU (results/bench_train.md: 0.92x -> 0.96x PyTorch for 1.0x g3).
  """
  _check_choice("pool_impl", impl, POOL_IMPLS)
  if impl == "shift" and kind == "avg":
    return _avg_pool_shift(x)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
  if kind == "avg":
    if impl == "depthwise":
      c = x.shape[-1]
      kernel = jnp.full((3, 3, 1, c), 1 / 9, x.dtype)
      return jax.lax.conv_general_dilated(xp, kernel, (2, 2), "VALID", dimension_numbers=_DIMS,
                                          feature_group_count=c)
    # Python-scalar init values let JAX see a sum / max monoid, which it can differentiate.
    return jax.lax.reduce_window(xp, 0.0, jax.lax.add, window, strides, "VALID") / 9
  if kind == "max":
    return jax.lax.reduce_window(xp, -jnp.inf, jax.lax.max, window, strides, "VALID")
  raise ValueError(f"pool kind={kind!r}; valid: avg, max")


@jax.custom_vjp
def _avg_pool_shift(x):
  return _shift(x, jnp.full((3, 3), 1 / 9, x.dtype), 2)


def _avg_pool_shift_fwd(x):
  return _avg_pool_shift(x), x.shape


def _avg_pool_shift_bwd(shape, dy):
  # Separable: first along H, then along W (autodiff's sum of nine strided pads of dy made
  # XLA:CPU recompute the pooled values inside the fused gradient).
  t = _window_sum_grad(dy / 9, dy.ndim - 3, shape[-3])
  return (_window_sum_grad(t, dy.ndim - 2, shape[-2]),)


def _window_sum_grad(t, axis, size):
  """The gradient of 3-wide, stride-2 window sums (padding 1) along ``axis`` of an input of
  length ``size``, given the windows' cotangent ``t``: input 2i gets window i's, input
  2i+1 windows i's and i+1's."""
  nxt = jnp.concatenate([jax.lax.slice_in_dim(t, 1, None, axis=axis),
                         jnp.zeros_like(jax.lax.slice_in_dim(t, 0, 1, axis=axis))], axis)
  both = jnp.stack([t, t + nxt], axis + 1)
  shape = list(t.shape)
  shape[axis] *= 2
  return jax.lax.slice_in_dim(both.reshape(shape), 0, size, axis=axis)


_avg_pool_shift.defvjp(_avg_pool_shift_fwd, _avg_pool_shift_bwd)


def _through_loop(x: jax.Array) -> jax.Array:
  """``x``, passed through a one-trip while loop that XLA can neither unroll nor skip."""
  first = (0,) * x.ndim
  # Always 1, but XLA cannot tell: the count depends on the data.
  trips = jnp.minimum(jnp.abs(x[first]).astype(jnp.int32), 0) + 1

  def body(carry):
    # Rewrites v[first] with itself (i is 0, trips at most 1), so that to XLA v is not
    # loop-invariant, which it would hoist out of the loop.
    i, v = carry
    keep = jax.lax.dynamic_slice(v, first, (1,) * v.ndim)
    return i + 1, jax.lax.dynamic_update_slice(v, jnp.where(i > 100, 0, keep), first)
  return jax.lax.while_loop(lambda carry: carry[0] < trips, body, (jnp.int32(0), x))[1]


@jax.custom_vjp
def materialize(x: jax.Array) -> jax.Array:
  """``x`` itself, stored in memory once: every consumer then reads it.

  XLA:CPU fuses an elementwise producer into each of its consumers, recomputing it there;
  for a chain of residual units (BN + add + ReLU of each unit's output feeding the next)
  every consumer re-ran the whole chain back to the last stored tensor: the fusion that
  transposed a stage-2 unit's output for the next grouped conv read 16 operands, three
  units deep. ``optimization_barrier`` does not stop this on CPU (XLA removes it before
  fusion); a while loop does. The gradient is the identity. ShuffleNet stores each unit's
  output this way when ``materialize_units`` (CPU ``auto``): 0.92x -> 1.02x PyTorch's
  training throughput for 1.0x g3 at the proxy shape (results/bench_train.md). Not for
  export: TFLite would get a WHILE op (shufflenet_jax/export/convert.py turns it off).
  """
  return _through_loop(x)


materialize.defvjp(lambda x: (_through_loop(x), None), lambda _, g: (g,))
