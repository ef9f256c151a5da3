"""Activation-range equalization of a ShuffleNet before int8 export.

TFLite quantizes each activation tensor with one int8 range. In a trained ShuffleNet a few
channels of some units' depthwise-conv inputs (after conv1 -> BN -> ReLU) and outputs
(after BN) reach ranges many times those of the other channels (BN channels whose running
variance is near 0, so gamma / sqrt(var + eps) is large): up to 13x the 90th-percentile
channel in the 12-epoch proxy model, up to 158x in one trained with label smoothing. One
range for the whole tensor then leaves the other channels a handful of int8 steps.

The fix is the cross-layer scaling of Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction" (ICCV 2019, Sec. 4.1), driven here by activation ranges
measured on calibration images: a channel's activation is divided by ``s > 0`` and the
next layer's weights for that channel are multiplied by ``s``, which leaves the float
function unchanged (ReLU(z / s) = ReLU(z) / s, and both convolutions are linear). Only
channels whose range exceeds ``target``, a quantile of the tensor's channel ranges, move:

- conv1 -> BN -> ReLU -> shuffle -> depthwise: the BN's scale and bias of channel c are
  divided by ``a_c = range_c / target`` and the depthwise kernel of the channel it is
  shuffled to is multiplied by it. Depthwise weights are quantized per channel, so this
  costs them nothing, and every channel ends within the target.
- depthwise -> BN -> conv2: the same with ``b_c`` on the BN and conv2's kernel row of input
  channel c. conv2's weights are quantized per output channel, so a grown row widens its
  output channels' weight ranges: ``b_c`` splits the excess so that the activation and the
  row end equally far over their targets (a row already far below its target absorbs it
  all), and never takes an activation below the target.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from shufflenet_jax.models import ops
from shufflenet_jax.models.shufflenet import ShuffleNet


def _channel_max(fn, xs: list[jax.Array]) -> np.ndarray:
  return np.max([np.asarray(jnp.max(jnp.abs(fn(x)), axis=(0, 1, 2))) for x in xs], axis=0)


def _factors(ranges: np.ndarray, quantile: float) -> tuple[np.ndarray, float]:
  target = float(np.quantile(ranges, quantile))
  if target <= 0:
    return np.ones_like(ranges), target
  return np.maximum(1.0, ranges / target), target


def _over(ranges: np.ndarray, target: float) -> float:
  return float(ranges.max() / target) if target > 0 else 1.0


def _divide_bn(bn, factors: np.ndarray) -> None:
  f = jnp.asarray(factors, bn.scale[...].dtype)
  bn.scale[...] = bn.scale[...] / f
  bn.bias[...] = bn.bias[...] / f


def equalize_ranges(model: ShuffleNet, images: np.ndarray, *, quantile: float = 0.5,
                    batch: int = 100) -> list[dict]:
  """Equalizes ``model`` (eval mode, in place) on calibration ``images`` (N, H, W, C) as
  the module docstring describes. Returns, per unit, the largest channel range over the
  target, before and after, of the depthwise conv's input and output."""
  if not isinstance(model, ShuffleNet):
    raise TypeError(f"equalize_ranges needs a ShuffleNet, got {type(model).__name__}")
  if not 0 < quantile <= 1:
    raise ValueError(f"quantile={quantile}; valid: 0 < quantile <= 1")
  model.eval()
  xs = [model.stem_features(jnp.asarray(images[i:i + batch]))
        for i in range(0, len(images), batch)]
  report = []
  for index, unit in enumerate(model.units):
    # The depthwise conv's input: channel k after the shuffle is channel perm[k] before.
    ranges = _channel_max(unit.expand, xs)
    a, target = _factors(ranges, quantile)
    perm = np.arange(len(a))
    if unit.shuffle and unit.groups > 1:
      perm = np.asarray(ops.channel_shuffle(jnp.asarray(perm)[None, None, None],
                                               unit.groups))[0, 0, 0]
    a_before_shuffle = np.empty_like(a)
    a_before_shuffle[perm] = a
    _divide_bn(unit.bn1, a_before_shuffle)
    unit.dwconv.kernel[...] = unit.dwconv.kernel[...] * jnp.asarray(a, jnp.float32)

    # The second 1x1 group conv's input (no ReLU in between: any positive factor works).
    branch = lambda x, unit=unit: unit.depthwise(unit.expand(x))
    ranges2 = _channel_max(branch, xs)
    kernel = unit.conv2.kernel[...]                      # (1, 1, mid / g, out)
    groups = unit.conv2.groups
    cin, cout = kernel.shape[2], kernel.shape[3] // groups
    # Row c of conv2 (input channel c): its weights in its group's output columns.
    w = np.abs(np.asarray(kernel[0, 0])).reshape(cin, groups, cout)
    row_ranges = np.stack([w[:, g, :].max(-1) for g in range(groups)]).reshape(-1)  # (mid,)
    excess, target2 = _factors(ranges2, quantile)
    w_excess = row_ranges / max(float(np.quantile(row_ranges, quantile)), 1e-30)
    # Over-target channels: activation excess / b == weight excess * b, b <= excess.
    b = np.maximum(1.0, np.sqrt(excess / np.maximum(w_excess, 1 / excess)))
    _divide_bn(unit.bn2, b)
    scale = np.repeat(b.reshape(groups, cin).T, cout, axis=1)  # (mid / g, out)
    unit.conv2.kernel[...] = kernel * jnp.asarray(scale, kernel.dtype)[None, None]

    report.append(dict(
        unit=index,
        dw_input_before=_over(ranges, target),
        dw_input_after=_over(_channel_max(unit.expand, xs), target),
        dw_output_before=_over(ranges2, target2),
        dw_output_after=_over(_channel_max(branch, xs), target2)))
    xs = [unit(x) for x in xs]
  return report
