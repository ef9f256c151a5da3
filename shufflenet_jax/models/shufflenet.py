"""ShuffleNet v1 (Zhang, Zhou, Lin, Sun, CVPR 2018) as Flax NNX modules.

Architecture (paper Table 1, docs/design.md section 3): conv1 3x3 s2 (24 ch) + BN + ReLU ->
max pool 3x3 s2 -> stages 2/3/4 of 4/8/4 ShuffleNet units (the first unit of each stage
has stride 2) -> global average pool -> FC with bias.

The ``small`` stem (for 28x28 / 32x32 proxy data) makes conv1 stride 1 and drops the max
pool; nothing else changes.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from shufflenet_jax.catalog import (CONCAT_ORDERS, DEPTHS, GROUPS,  # the paper's grid
                                    SHUFFLE_ORDERS, WIDTHS)
from shufflenet_jax.models import group_major as gm
from shufflenet_jax.models import layers, ops

STEMS = ("imagenet", "small")

# Paper Table 1: output channels of stages 2, 3, 4 at width 1x, per group count.
STAGE_CHANNELS_1X = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# Units per stage (the first has stride 2). Shallow (Table 5): half the units, 26 layers.
STAGE_REPEATS = {"standard": (4, 8, 4), "shallow": (2, 4, 2)}
# Shallow networks are widened by this factor so that 0.5x shallow g3 lands at the paper's
# ~40 MFLOPs (Table 5): stages 180/360/720, conv1 12 -> 41.6 MFLOPs.
SHALLOW_WIDEN = 1.5
SE_REDUCTION = 16


def _validate(groups, width, depth) -> None:
  if groups not in GROUPS:
    raise ValueError(f"groups={groups!r} is not one of the paper's group counts; "
                     f"valid groups: {', '.join(map(str, GROUPS))}")
  if width not in WIDTHS:
    raise ValueError(f"width={width!r} is not one of the paper's width factors; "
                     f"valid widths: {', '.join(map(str, WIDTHS))}")
  if depth not in DEPTHS:
    raise ValueError(f"depth={depth!r}; valid depths: {', '.join(DEPTHS)}")


def stage_channels(groups: int, width: float, depth: str = "standard") -> tuple[int, ...]:
  """Output channels of stages 2-4: ceil(w * s / (4g)) * 4g (the official release's rule).

  Multiples of 4g keep the bottleneck (stage_out // 4) divisible by g.
  """
  _validate(groups, width, depth)
  scale = width * (SHALLOW_WIDEN if depth == "shallow" else 1.0)
  q = 4 * groups
  return tuple(math.ceil(w * scale / q) * q for w in STAGE_CHANNELS_1X[groups])


def stem_channels(groups: int, width: float) -> int:
  """conv1 output channels: 24 at 1x and 1.5x, 48 at 2x, g * ceil(24 s / g) below 1x."""
  _validate(groups, width, "standard")
  if width < 1.0:
    return groups * math.ceil(24 * width / groups)
  return 48 if width >= 2.0 else 24


class SqueezeExcite(nnx.Module):
  """Squeeze-and-excitation (Hu et al.) on a unit's branch output, reduction 16."""

  def __init__(self, channels: int, *, dtype=None, rngs: nnx.Rngs):
    hidden = max(1, channels // SE_REDUCTION)
    kw = dict(kernel_init=layers.he_init, dtype=dtype, rngs=rngs)
    self.reduce = nnx.Linear(channels, hidden, **kw)
    self.expand = nnx.Linear(hidden, channels, **kw)

  def __call__(self, x: jax.Array) -> jax.Array:
    s = jnp.mean(x, axis=(1, 2))
    s = jax.nn.sigmoid(self.expand(jax.nn.relu(self.reduce(s))))
    return x * s[:, None, None, :].astype(x.dtype)


class ShuffleUnit(nnx.Module):
  """ShuffleNet unit (paper Fig. 2b, stride 1; Fig. 2c, stride 2).

  Branch: 1x1 group conv -> BN -> ReLU -> channel shuffle -> 3x3 depthwise conv (stride)
  -> BN -> 1x1 group conv -> BN [-> SE]. Stride 1 adds the input, stride 2 concatenates a
  3x3 s2 average pool of the input (so the branch makes out - in channels); then ReLU.
  """

  def __init__(self, in_channels: int, out_channels: int, *, stride: int, groups: int,
               group_first_conv: bool = True, shuffle: bool = True, shuffle_order: str = "paper",
               concat_order: str = "shortcut_first", se: bool = False,
               zero_init_residual: bool = False, pointwise_impl: str = "lax", depthwise_impl: str = "lax",
               pool_impl: str = "window", dtype=None, rngs: nnx.Rngs):
    if stride not in (1, 2):
      raise ValueError(f"stride={stride}; valid: 1, 2")
    if stride == 1 and in_channels != out_channels:
      raise ValueError(f"a stride-1 unit needs in_channels == out_channels, got "
                       f"{in_channels} -> {out_channels}")
    mid = out_channels // 4
    branch_out = out_channels - in_channels if stride == 2 else out_channels
    self.stride = stride
    self.groups = groups
    self.shuffle = shuffle
    self.shuffle_order = shuffle_order
    self.concat_order = concat_order
    self.pool_impl = pool_impl
    pw = dict(impl=pointwise_impl, dtype=dtype, rngs=rngs)
    self.conv1 = layers.PointwiseConv(in_channels, mid,
                                      groups=groups if group_first_conv else 1, **pw)
    self.bn1 = layers.batch_norm(mid, dtype, rngs)
    self.dwconv = layers.DepthwiseConv(mid, stride=stride, impl=depthwise_impl, dtype=dtype,
                                       rngs=rngs)
    self.bn2 = layers.batch_norm(mid, dtype, rngs)
    self.conv2 = layers.PointwiseConv(mid, branch_out, groups=groups, **pw)
    self.bn3 = layers.batch_norm(branch_out, dtype, rngs)
    if zero_init_residual and stride == 1:
      self.bn3.scale[...] = jnp.zeros_like(self.bn3.scale[...])  # the unit starts as identity
    self.se = SqueezeExcite(branch_out, dtype=dtype, rngs=rngs) if se else None

  def expand(self, x: jax.Array) -> jax.Array:
    """1x1 group conv -> BN -> ReLU -> channel shuffle: the depthwise conv's input."""
    y = layers.batch_norm_act(self.bn1, self.conv1(x), relu=True)
    if self.shuffle and self.groups > 1:
      y = ops.channel_shuffle(y, self.groups, self.shuffle_order)
    return y

  def depthwise(self, y: jax.Array) -> jax.Array:
    """3x3 depthwise conv -> BN: the second 1x1 group conv's input."""
    return layers.batch_norm_act(self.bn2, self.dwconv(y))

  def finish(self, x: jax.Array, z: jax.Array, bn_act, se) -> jax.Array:
    """The branch's last BN of the second conv's output ``z`` [-> SE ``se``], then for
    stride 1 the residual add of ``x`` and ReLU (the unit's output), for stride 2 the
    branch's ReLU. ``bn_act`` is :func:`layers.batch_norm_act` or its group-major form:
    BN, add and ReLU in one function."""
    if se is not None:
      y = se(bn_act(self.bn3, z))
      return jax.nn.relu(x.astype(y.dtype) + y if self.stride == 1 else y)
    return bn_act(self.bn3, z, residual=x if self.stride == 1 else None, relu=True)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.finish(x, self.conv2(self.depthwise(self.expand(x))), layers.batch_norm_act,
                    self.se)
    if self.stride == 1:
      return y
    shortcut = ops.pool_3x3_s2(x.astype(y.dtype), "avg", self.pool_impl)
    # relu(concat(a, b)) as concat(relu(a), relu(b)): the same numbers, but each ReLU
    # fuses into the op before it in TFLite (a quantized standalone RELU is not delegated).
    parts = [jax.nn.relu(shortcut), y]
    return jnp.concatenate(parts if self.concat_order == "shortcut_first" else parts[::-1],
                           axis=-1)

  def call_group_major(self, x: jax.Array) -> jax.Array:
    """:meth:`__call__` on group-major activations (models/group_major.py): ``x`` is
    (g, N, H, W, C/g), or NHWC for the network's first unit; the result is group-major."""
    g = self.groups
    if x.ndim == 4:  # the stem's output: the first conv is not grouped
      y = jax.nn.relu(self.bn1(self.conv1(x)))
      if self.shuffle and g > 1:
        y = ops.channel_shuffle(y, g)
      y = gm.to_group_major(y, g)
    else:
      y = gm.batch_norm(self.bn1, gm.pointwise_conv(self.conv1, x), relu=True)
      if self.shuffle and g > 1:
        y = gm.channel_shuffle(y)
    y = gm.batch_norm(self.bn2, gm.depthwise_conv(self.dwconv, y))
    se = None if self.se is None else functools.partial(gm.squeeze_excite, self.se)
    y = self.finish(x, gm.pointwise_conv(self.conv2, y), gm.batch_norm, se)
    if self.stride == 1:
      return y
    x = x.astype(y.dtype)
    if x.ndim == 4:
      shortcut = ops.pool_3x3_s2(x, "avg", self.pool_impl)
    else:
      shortcut = gm.from_group_major(gm.avg_pool_3x3_s2(x, self.pool_impl))
    out = jnp.concatenate([jax.nn.relu(shortcut), gm.from_group_major(y)], -1)
    return gm.to_group_major(out, g)  # group boundaries differ from the concat's


class ShuffleNet(nnx.Module):
  """ShuffleNet v1.

  Args:
    groups: g, the group count of the 1x1 convolutions (1, 2, 3, 4, 8).
    width: s, the width factor (0.25, 0.5, 1.0, 1.5, 2.0).
    shuffle: channel shuffle on/off (Table 3); off removes the shuffle and nothing else.
    shuffle_order: ``paper`` (the paper's permutation) or ``release`` (the official code's,
      its inverse: what its ImageNet weights need; ops.channel_shuffle).
    classifier_bias: the classifier's bias (the paper's FC; the release has none: 1000
      fewer parameters).
    concat_order: a stride-2 unit's output channels, ``shortcut_first`` (the paper's and
      the release's) or ``branch_first`` (osmr/imgclsmob's weights).
    depth: ``standard`` (4/8/4 units) or ``shallow`` (2/4/2 units, widened, Table 5).
    se: squeeze-excitation on every unit's branch (Table 5 "with SE").
    stem: ``imagenet`` (conv1 stride 2 + max pool) or ``small`` (conv1 stride 1, no pool).
    zero_init_residual: start every stride-1 unit's last BN scale at 0, so each residual
      unit begins as the identity (Goyal et al. 2017); not in the paper, off by default.
    num_classes, in_channels: classifier size and input channels.
    pointwise_impl, depthwise_impl: implementation of the two convolutions (layers.py);
      ``groupmajor`` runs the units on (g, N, H, W, C/g) activations (group_major.py).
    pool_impl: the stride-2 units' average pool: ``window``, ``depthwise`` (int8 export) or
      ``shift`` (the fastest to train on CPU); ops.pool_3x3_s2.
    materialize_units: store every unit's output in memory once (ops.materialize), so
      XLA:CPU does not recompute the chain of residual units in each consumer; no effect
      on the numbers.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32.
  """

  def __init__(self, *, groups: int = 3, width: float = 1.0, shuffle: bool = True,
               shuffle_order: str = "paper", classifier_bias: bool = True,
               concat_order: str = "shortcut_first", depth: str = "standard", se: bool = False, stem: str = "imagenet",
               zero_init_residual: bool = False,
               num_classes: int = 1000, in_channels: int = 3,
               pointwise_impl: str = "lax", depthwise_impl: str = "lax",
               pool_impl: str = "window", materialize_units: bool = False, dtype=None,
               rngs: nnx.Rngs):
    _validate(groups, width, depth)
    if stem not in STEMS:
      raise ValueError(f"stem={stem!r}; valid stems: {', '.join(STEMS)}")
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; must be a positive integer")
    ops._check_choice("shuffle_order", shuffle_order, SHUFFLE_ORDERS)
    ops._check_choice("concat_order", concat_order, CONCAT_ORDERS)
    for name, value, default in (("shuffle_order", shuffle_order, "paper"),
                                 ("concat_order", concat_order, "shortcut_first")):
      if value != default and pointwise_impl == "groupmajor":
        raise ValueError(f"{name}={value!r} needs a pointwise_impl other than 'groupmajor' "
                         f"(its layout implements {default!r} only)")
    self.groups, self.width, self.shuffle, self.depth, self.se = groups, width, shuffle, depth, se
    self.shuffle_order, self.concat_order = shuffle_order, concat_order
    self.stem = stem
    self.dtype = dtype
    self.group_major = pointwise_impl == "groupmajor"
    self.materialize_units = materialize_units
    conv1 = stem_channels(groups, width)
    self.stage_channels = stage_channels(groups, width, depth)
    self.conv1 = nnx.Conv(in_channels, conv1, (3, 3), strides=2 if stem == "imagenet" else 1,
                          padding=((1, 1), (1, 1)), use_bias=False, kernel_init=layers.he_init,
                          dtype=dtype, rngs=rngs)
    self.bn1 = layers.batch_norm(conv1, dtype, rngs)
    unit_kw = dict(groups=groups, shuffle=shuffle, shuffle_order=shuffle_order,
                   concat_order=concat_order, se=se, zero_init_residual=zero_init_residual,
                   pointwise_impl=pointwise_impl,
                   depthwise_impl=depthwise_impl, pool_impl=pool_impl, dtype=dtype, rngs=rngs)
    units = []
    c_in = conv1
    for stage, (c_out, repeats) in enumerate(zip(self.stage_channels, STAGE_REPEATS[depth])):
      for i in range(repeats):
        # Stage 2's first pointwise conv is not grouped: its input has only conv1's channels.
        units.append(ShuffleUnit(c_in, c_out, stride=2 if i == 0 else 1,
                                 group_first_conv=not (stage == 0 and i == 0), **unit_kw))
        c_in = c_out
    self.units = nnx.List(units)
    self.fc = nnx.Linear(c_in, num_classes, use_bias=classifier_bias,
                         kernel_init=layers.classifier_init, dtype=dtype, rngs=rngs)

  def stem_features(self, x: jax.Array) -> jax.Array:
    """conv1 -> BN -> ReLU [-> max pool, padded as the release]: the first unit's input."""
    return layers.stem_features(self, x, pool=lambda y: ops.pool_3x3_s2(y, "max"))

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.stem_features(x)
    for unit in self.units:
      x = unit.call_group_major(x) if self.group_major else unit(x)
      if self.materialize_units:
        x = ops.materialize(x)
    x = gm.global_avg_pool(x) if self.group_major else jnp.mean(x, axis=(1, 2))
    return self.fc(x).astype(jnp.float32)
