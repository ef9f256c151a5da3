"""Paper Table 4: other structure units dropped into the ShuffleNet skeleton.

Same stem (conv1 3x3/2, 24 channels scaled down below 1x as ShuffleNet's, + max pool
3x3/2, or the ``small`` stem), three
stages of 4 / 8 / 4 units whose first unit has stride 2, output channels (w/4, w/2, w) for
a stage-4 width w, global average pool, FC. The units (paper Sec. 4.2):

* ``vgg_like``: two 3x3 convs, BN + ReLU after each (stride on the first); no shortcut.
* ``resnet``: bottleneck 1x1 -> 3x3 -> 1x1 with bottleneck ratio 1:4, BN after each,
  identity shortcut (a 1x1 projection + BN where the shape changes).
* ``xception_like``: the ShuffleNet unit with ungrouped pointwise convs and no shuffle
  (1x1 -> BN -> ReLU -> 3x3 depthwise -> BN -> 1x1 -> BN; add, or concat a 3x3/2 average
  pool in stride-2 units).
* ``resnext``: bottleneck with a grouped 3x3 conv of cardinality 16, bottleneck ratio 1:2.

The widths are fitted to the paper's complexity levels of 140, 38 and 13 MFLOPs at
224x224 (:data:`FITTED_WIDTHS`, found by shufflenet_jax/fit_units.py: the valid w whose count is
closest to the level; ``python -m shufflenet_jax.fit_units`` refits and prints them).
Valid widths keep every stage's channels a multiple of the unit's quantum (4 for the
bottleneck units, so ``resnet``'s 1:4 bottleneck is whole); ``resnext``'s 1:2 bottleneck
is rounded up to a multiple of the cardinality.
Registry names: ``unit_{kind}_{level}``, e.g. ``unit_resnet_38``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from shufflenet_jax.models import layers, ops, registry
from shufflenet_jax.models.shufflenet import STAGE_REPEATS, STEMS, ShuffleUnit

KINDS = ("vgg_like", "resnet", "xception_like", "resnext")
LEVELS = (140, 38, 13)  # MFLOPs, paper Table 4
CARDINALITY = 16
STEM_CHANNELS = 24      # at and above ShuffleNet 1x g1's stage-4 width (576) ...
STEM_REFERENCE_WIDTH = 576  # ... and scaled with the width below it, as ShuffleNet's stem
# Every stage's output channels are a multiple of this (see the module docstring).
QUANTUM = {"vgg_like": 1, "resnet": 4, "xception_like": 4, "resnext": 4}
# Stage-4 width w fitted by fit_units.fit_width to each level (the paper's at 38 MFLOPs: 50 / 192 /
# 288 / 192 for vgg_like / resnet / xception_like / resnext).
FITTED_WIDTHS = {  # MFLOPs at 224x224 (stage channels)
    ("vgg_like", 140): 102,       # 141.7 (26, 51, 102)
    ("vgg_like", 38): 53,         # 37.5 (13, 26, 53)
    ("vgg_like", 13): 30,         # 13.1 (8, 15, 30)
    ("resnet", 140): 384,         # 140.1 (96, 192, 384)
    ("resnet", 38): 196,          # 37.2 (48, 96, 196)
    ("resnet", 13): 108,          # 13.0 (28, 56, 108)
    ("xception_like", 140): 568,  # 140.3 (144, 284, 568)
    ("xception_like", 38): 284,   # 38.3 (72, 144, 284)
    ("xception_like", 13): 156,   # 13.2 (40, 80, 156)
    ("resnext", 140): 356,        # 140.6 (88, 176, 356)
    ("resnext", 38): 168,         # 37.2 (40, 84, 168)
    ("resnext", 13): 92,          # 13.0 (24, 48, 92)
}


def stage_widths(kind: str, width: int) -> tuple[int, int, int]:
  q = QUANTUM[kind]
  return tuple(max(q, round(width * f / q) * q) for f in (0.25, 0.5, 1.0))


def stem_width(width: int) -> int:
  """conv1 channels: 24, scaled down with the width below 576 (ShuffleNet's rule at g1:
  24 * s rounded up), so a narrow net is not dominated by its stem."""
  return min(STEM_CHANNELS, math.ceil(STEM_CHANNELS * width / STEM_REFERENCE_WIDTH))


class VGGLikeUnit(nnx.Module):

  def __init__(self, cin, cout, stride, *, dtype, rngs):
    kw = dict(dtype=dtype, rngs=rngs)
    self.conv1, self.bn1 = layers.conv(cin, cout, 3, stride=stride, bias=False, **kw), layers.batch_norm(cout, dtype, rngs)
    self.conv2, self.bn2 = layers.conv(cout, cout, 3, bias=False, **kw), layers.batch_norm(cout, dtype, rngs)

  def __call__(self, x):
    y = layers.batch_norm_act(self.bn1, self.conv1(x), relu=True)
    return layers.batch_norm_act(self.bn2, self.conv2(y), relu=True)


class BottleneckUnit(nnx.Module):
  """1x1 -> 3x3 (stride, ``groups``) -> 1x1, BN after each; shortcut identity or 1x1."""

  def __init__(self, cin, cout, stride, *, mid, groups=1, pointwise_impl="lax", dtype, rngs):
    kw = dict(dtype=dtype, rngs=rngs)
    self.conv1, self.bn1 = layers.conv(cin, mid, 1, bias=False, **kw), layers.batch_norm(mid, dtype, rngs)
    # The grouped 3x3 (ResNeXt) takes the pointwise implementation (ops.grouped_conv: on
    # CPU `matmul`, an im2col batched GEMM; per layer 30x faster to train than XLA's
    # grouped conv).
    self.conv2 = layers.GroupedConv(mid, mid, 3, stride=stride, groups=groups,
                                    impl=pointwise_impl, **kw)
    self.bn2 = layers.batch_norm(mid, dtype, rngs)
    self.conv3, self.bn3 = layers.conv(mid, cout, 1, bias=False, **kw), layers.batch_norm(cout, dtype, rngs)
    project = stride != 1 or cin != cout  # else the identity shortcut
    self.proj = layers.conv(cin, cout, 1, stride=stride, bias=False, **kw) if project else None
    self.bn_proj = layers.batch_norm(cout, dtype, rngs) if project else None

  def __call__(self, x):
    # BN + ReLU (+ the residual add) as layers.batch_norm_act's one custom-VJP function in
    # training: the same numbers as flax's BatchNorm and jax.nn.relu (tests/test_baselines.py).
    y = layers.batch_norm_act(self.bn1, self.conv1(x), relu=True)
    y = layers.batch_norm_act(self.bn2, self.conv2(y), relu=True)
    shortcut = x if self.proj is None else layers.batch_norm_act(self.bn_proj, self.proj(x))
    return layers.batch_norm_act(self.bn3, self.conv3(y), residual=shortcut, relu=True)


# Unit types added at run time (docs/extending.md): kind -> builder.
_ADDED_UNITS: dict = {}


def register_unit(kind: str, builder, *, quantum: int = 1) -> None:
  """Adds the unit type ``kind`` to the skeleton: ``UnitNet(kind=kind, width=w)`` builds
  every unit as ``builder(cin, cout, stride, pointwise_impl=..., depthwise_impl=...,
  dtype=..., rngs=...)`` (a stride-2 unit changes the spatial size, every unit the
  channels cin -> cout); every stage's channels are a multiple of ``quantum``."""
  if kind in QUANTUM:
    raise ValueError(f"unit kind {kind!r} is already registered")
  if not isinstance(quantum, int) or quantum < 1:
    raise ValueError(f"quantum={quantum!r}; must be an integer >= 1")
  QUANTUM[kind] = quantum
  _ADDED_UNITS[kind] = builder


def bottleneck_mid(kind: str, cout: int) -> int:
  """The bottleneck's channels: ``resnet`` 1:4; ``resnext`` 1:2, rounded up to a multiple
  of the cardinality."""
  if kind == "resnext":
    return max(CARDINALITY, -(-cout // 2 // CARDINALITY) * CARDINALITY)
  return cout // 4


def make_unit(kind: str, cin: int, cout: int, stride: int, *, pointwise_impl="lax",
              depthwise_impl="lax", dtype=None, rngs: nnx.Rngs) -> nnx.Module:
  if kind in _ADDED_UNITS:
    return _ADDED_UNITS[kind](cin, cout, stride, pointwise_impl=pointwise_impl,
                              depthwise_impl=depthwise_impl, dtype=dtype, rngs=rngs)
  if kind == "vgg_like":
    return VGGLikeUnit(cin, cout, stride, dtype=dtype, rngs=rngs)
  if kind == "resnet":
    return BottleneckUnit(cin, cout, stride, mid=bottleneck_mid(kind, cout), dtype=dtype,
                          rngs=rngs)
  if kind == "resnext":
    return BottleneckUnit(cin, cout, stride, mid=bottleneck_mid(kind, cout),
                          groups=CARDINALITY, pointwise_impl=pointwise_impl, dtype=dtype,
                          rngs=rngs)
  if kind == "xception_like":
    return ShuffleUnit(cin, cout, stride=stride, groups=1, shuffle=False,
                       pointwise_impl=pointwise_impl, depthwise_impl=depthwise_impl,
                       dtype=dtype, rngs=rngs)
  raise ValueError(f"unit kind={kind!r}; valid: {', '.join(QUANTUM)}")


class UnitNet(nnx.Module):
  """The ShuffleNet skeleton with ``kind`` units and stage-4 width ``width``."""

  def __init__(self, *, kind: str, width: int, stem: str = "imagenet", num_classes: int = 1000,
               in_channels: int = 3, pointwise_impl: str = "lax", depthwise_impl: str = "lax",
               dtype=None, rngs: nnx.Rngs):
    if kind not in QUANTUM:
      raise ValueError(f"unit kind={kind!r}; valid: {', '.join(QUANTUM)}")
    if stem not in STEMS:
      raise ValueError(f"stem={stem!r}; valid stems: {', '.join(STEMS)}")
    if not isinstance(width, int) or width < QUANTUM[kind]:
      raise ValueError(f"width={width!r}; must be an integer >= {QUANTUM[kind]} for {kind}")
    self.kind, self.width, self.stem, self.dtype = kind, width, stem, dtype
    self.stage_channels = stage_widths(kind, width)
    stem_channels = stem_width(width)
    self.conv1 = nnx.Conv(in_channels, stem_channels, (3, 3),
                          strides=2 if stem == "imagenet" else 1, padding=((1, 1), (1, 1)),
                          use_bias=False, kernel_init=layers.he_init, dtype=dtype, rngs=rngs)
    self.bn1 = layers.batch_norm(stem_channels, dtype, rngs)
    units, c = [], stem_channels
    for cout, repeats in zip(self.stage_channels, STAGE_REPEATS["standard"]):
      for i in range(repeats):
        units.append(make_unit(kind, c, cout, 2 if i == 0 else 1,
                               pointwise_impl=pointwise_impl, depthwise_impl=depthwise_impl,
                               dtype=dtype, rngs=rngs))
        c = cout
    self.units = nnx.List(units)
    self.fc = nnx.Linear(c, num_classes, kernel_init=layers.classifier_init, dtype=dtype,
                         rngs=rngs)

  def __call__(self, x):
    x = layers.stem_features(self, x, pool=lambda y: ops.pool_3x3_s2(y, "max"))
    for unit in self.units:
      x = unit(x)
    return self.fc(jnp.mean(x, axis=(1, 2))).astype(jnp.float32)


def unit_name(kind: str, level: int) -> str:
  return f"unit_{kind}_{level}"


# Registered on import (the package imports every model module).
for (_kind, _level), _width in FITTED_WIDTHS.items():
  registry.register(unit_name(_kind, _level), UnitNet, kind=_kind, width=_width)
