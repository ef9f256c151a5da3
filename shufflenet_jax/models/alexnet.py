"""AlexNet (Krizhevsky et al., 2012) as the paper counts it (Tables 6 and 8: ~720 MFLOPs).

The original one-tower form of the two-GPU network: conv1 96 11x11/4 -> ReLU -> LRN -> max
pool 3x3/2; conv2 256 5x5 in 2 groups -> ReLU -> LRN -> pool; conv3 384 3x3; conv4 384 3x3
in 2 groups; conv5 256 3x3 in 2 groups -> pool; fc6 4096, fc7 4096, fc8. Biases throughout,
no BN. 724 MFLOPs and 61.0 M parameters at 224x224.

The fully connected layers are convolutions (fc6 a VALID 6x6 conv, fc7 / fc8 1x1 convs)
followed by a global average of the class map: at 224x224 that is exactly the FC network;
on larger inputs (the paper's 480x640 and 720x1280 timings) it runs fully convolutionally.
Dropout is left out (the training step here carries no dropout RNG). ``lrn=False`` drops
the two local response normalizations (no multiply-adds; XNNPACK has no LRN, so the
exported timing model goes without). The ``small`` stem (conv1 3x3/1, no first pool) takes
28x28 / 32x32 proxy data to the same 6x6 map before fc6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from shufflenet_jax.models import layers, registry

# (out channels, kernel, groups) of conv2..conv5; a 3x3/2 VALID max pool follows conv2, conv5.
CONVS = ((256, 5, 2), (384, 3, 1), (384, 3, 2), (256, 3, 2))
POOL_AFTER = (0, 3)


def local_response_norm(x: jax.Array, size: int = 5, k: float = 2.0, alpha: float = 1e-4,
                        beta: float = 0.75) -> jax.Array:
  """AlexNet's LRN across channels: x / (k + alpha / size * sum of x^2 over `size` channels)^beta."""
  half = size // 2
  sq = jax.lax.reduce_window(x * x, 0.0, jax.lax.add, (1, 1, 1, size), (1, 1, 1, 1),
                             ((0, 0), (0, 0), (0, 0), (half, half)))
  return x / (k + alpha / size * sq) ** beta


class AlexNet(nnx.Module):

  def __init__(self, *, stem: str = "imagenet", lrn: bool = True, num_classes: int = 1000,
               in_channels: int = 3, dtype=None, rngs: nnx.Rngs):
    if stem not in ("imagenet", "small"):
      raise ValueError(f"stem={stem!r}; valid stems: imagenet, small")
    self.stem, self.lrn, self.dtype = stem, lrn, dtype
    conv = lambda cin, cout, k, **kw: nnx.Conv(
        cin, cout, (k, k), kernel_init=layers.he_init, dtype=dtype, rngs=rngs, **kw)
    if stem == "imagenet":
      self.conv1 = conv(in_channels, 96, 11, strides=4, padding=((2, 2), (2, 2)))
    else:
      self.conv1 = conv(in_channels, 96, 3, padding=((1, 1), (1, 1)))
    convs, c = [], 96
    for out, k, groups in CONVS:
      convs.append(conv(c, out, k, padding=((k // 2,) * 2,) * 2, feature_group_count=groups))
      c = out
    self.convs = nnx.List(convs)
    self.fc6 = conv(c, 4096, 6, padding="VALID")
    self.fc7 = conv(4096, 4096, 1)
    self.fc8 = nnx.Conv(4096, num_classes, (1, 1), kernel_init=layers.classifier_init,
                        dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.dtype is not None:
      x = x.astype(self.dtype)
    x = jax.nn.relu(self.conv1(x))
    if self.lrn:
      x = local_response_norm(x)
    if self.stem == "imagenet":
      x = layers.max_pool(x, padding="VALID")
    for i, conv in enumerate(self.convs):
      x = jax.nn.relu(conv(x))
      if i == 0 and self.lrn:
        x = local_response_norm(x)
      if i in POOL_AFTER:
        x = layers.max_pool(x, padding="VALID")
    x = jax.nn.relu(self.fc7(jax.nn.relu(self.fc6(x))))
    return jnp.mean(self.fc8(x), axis=(1, 2)).astype(jnp.float32)


registry.register("alexnet", AlexNet)
