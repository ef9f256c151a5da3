"""MobileNet v1 (Howard et al., 2017), the paper's Table 5 / Table 8 baseline.

conv 3x3/2 (32) then 13 depthwise-separable blocks (3x3 depthwise -> BN -> ReLU -> 1x1
conv -> BN -> ReLU), global average pool, FC. Every channel count is scaled by the width
multiplier alpha (1.0 / 0.75 / 0.5 / 0.25: 569 / 325 / 149 / 41 MFLOPs, 4.2 / 2.6 / 1.3 /
0.5 M parameters in the MobileNet paper). The ``small`` stem makes conv1 stride 1 for
28x28 / 32x32 proxy data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from shufflenet_jax.models import layers, registry

ALPHAS = (1.0, 0.75, 0.5, 0.25)
# (output channels, stride) of the 13 depthwise-separable blocks (MobileNet Table 1).
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
          (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nnx.Module):

  def __init__(self, *, alpha: float = 1.0, stem: str = "imagenet", num_classes: int = 1000,
               in_channels: int = 3, pointwise_impl: str = "lax", depthwise_impl: str = "lax",
               dtype=None, rngs: nnx.Rngs):
    if alpha not in ALPHAS:
      raise ValueError(f"alpha={alpha!r}; valid MobileNet v1 width multipliers: "
                       f"{', '.join(map(str, ALPHAS))}")
    if stem not in ("imagenet", "small"):
      raise ValueError(f"stem={stem!r}; valid stems: imagenet, small")
    self.alpha, self.stem, self.dtype = alpha, stem, dtype
    c = int(32 * alpha)
    self.conv1 = nnx.Conv(in_channels, c, (3, 3), strides=2 if stem == "imagenet" else 1,
                          padding=((1, 1), (1, 1)), use_bias=False, kernel_init=layers.he_init,
                          dtype=dtype, rngs=rngs)
    self.bn1 = layers.batch_norm(c, dtype, rngs)
    blocks = []
    for out, stride in BLOCKS:
      out = int(out * alpha)
      blocks.append(nnx.List([
          layers.DepthwiseConv(c, stride=stride, impl=depthwise_impl, dtype=dtype, rngs=rngs),
          layers.batch_norm(c, dtype, rngs),
          layers.PointwiseConv(c, out, impl=pointwise_impl, dtype=dtype, rngs=rngs),
          layers.batch_norm(out, dtype, rngs)]))
      c = out
    self.blocks = nnx.List(blocks)
    self.fc = nnx.Linear(c, num_classes, kernel_init=layers.classifier_init, dtype=dtype,
                         rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.dtype is not None:
      x = x.astype(self.dtype)
    x = jax.nn.relu(self.bn1(self.conv1(x)))
    for dw, bn_dw, pw, bn_pw in self.blocks:  # BN + ReLU: one custom-VJP function in training
      x = layers.batch_norm_act(bn_dw, dw(x), relu=True)
      x = layers.batch_norm_act(bn_pw, pw(x), relu=True)
    return self.fc(jnp.mean(x, axis=(1, 2))).astype(jnp.float32)


for _alpha in ALPHAS:
  registry.register(f"mobilenet_v1_{_alpha}", MobileNetV1, alpha=_alpha)
