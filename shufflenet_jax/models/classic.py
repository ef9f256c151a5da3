"""The paper's Table 6 classics, as their own papers define them: VGG-16, GoogLeNet, ResNet-50.

* VGG-16 (Simonyan & Zisserman, configuration D): 13 3x3 convs in 5 blocks with 2x2 max
  pools, FC 4096-4096-classes (here as a 7x7 conv and 1x1 convs, averaged over the class
  map, so larger inputs run fully convolutionally). 15.5 GFLOPs, 138 M parameters.
  No BN (as the paper); ImageNet stem only (five pools leave nothing of a 28x28 image).
* GoogLeNet (Szegedy et al., Inception v1): the 9 inception modules of the paper's Table 1,
  no auxiliary classifiers, no LRN (neither counts in the multiply-adds). 1.5 GFLOPs,
  7.0 M parameters (6.8 M in the paper's count). Biases, no BN.
* ResNet-50 (He et al.): bottlenecks 3/4/6/3 with the stride on the first 1x1 conv (the
  original, 3.9 GFLOPs as its paper counts, 25.6 M parameters), BN after every conv.

GoogLeNet and ResNet-50 have a ``small`` stem (conv1 3x3/1 and no stem pooling) for
28x28 / 32x32 proxy data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from shufflenet_jax.models import layers, registry


def _check_stem(stem: str, valid=("imagenet", "small")) -> None:
  if stem not in valid:
    raise ValueError(f"stem={stem!r}; valid stems: {', '.join(valid)}")


class _ConvHead(nnx.Module):
  """FC layers as convolutions (fc1 a VALID kxk conv), averaged over the class map."""

  def __init__(self, cin, hidden, num_classes, k, *, dtype, rngs):
    self.fc1 = layers.conv(cin, hidden, k, padding="VALID", dtype=dtype, rngs=rngs)
    self.fc2 = layers.conv(hidden, hidden, 1, dtype=dtype, rngs=rngs)
    self.fc3 = nnx.Conv(hidden, num_classes, (1, 1), kernel_init=layers.classifier_init,
                        dtype=dtype, rngs=rngs)

  def __call__(self, x):
    x = jax.nn.relu(self.fc2(jax.nn.relu(self.fc1(x))))
    return jnp.mean(self.fc3(x), axis=(1, 2))


VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class VGG16(nnx.Module):

  def __init__(self, *, stem: str = "imagenet", num_classes: int = 1000, in_channels: int = 3,
               dtype=None, rngs: nnx.Rngs):
    _check_stem(stem, ("imagenet",))
    self.dtype = dtype
    convs, c = [], in_channels
    for out, n in VGG16_BLOCKS:
      block = []
      for _ in range(n):
        block.append(layers.conv(c, out, 3, dtype=dtype, rngs=rngs))
        c = out
      convs.append(nnx.List(block))
    self.blocks = nnx.List(convs)
    self.head = _ConvHead(c, 4096, num_classes, 7, dtype=dtype, rngs=rngs)

  def __call__(self, x):
    if self.dtype is not None:
      x = x.astype(self.dtype)
    for block in self.blocks:
      for conv in block:
        x = jax.nn.relu(conv(x))
      x = layers.max_pool(x, 2, 2, "VALID")
    return self.head(x).astype(jnp.float32)


# GoogLeNet Table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); "M" = max pool.
INCEPTION = ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "M",
             (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
             (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
             (256, 160, 320, 32, 128, 128), "M",
             (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128))


class Inception(nnx.Module):

  def __init__(self, cin, spec, *, dtype, rngs):
    c1, r3, c3, r5, c5, pp = spec
    kw = dict(dtype=dtype, rngs=rngs)
    self.b1 = layers.conv(cin, c1, 1, **kw)
    self.b3 = nnx.List([layers.conv(cin, r3, 1, **kw), layers.conv(r3, c3, 3, **kw)])
    self.b5 = nnx.List([layers.conv(cin, r5, 1, **kw), layers.conv(r5, c5, 5, **kw)])
    self.bp = layers.conv(cin, pp, 1, **kw)
    self.out_channels = c1 + c3 + c5 + pp

  def __call__(self, x):
    seq = lambda convs, y: jax.nn.relu(convs[1](jax.nn.relu(convs[0](y))))
    return jnp.concatenate([jax.nn.relu(self.b1(x)), seq(self.b3, x), seq(self.b5, x),
                            jax.nn.relu(self.bp(layers.max_pool(x, 3, 1)))], axis=-1)


class GoogLeNet(nnx.Module):

  def __init__(self, *, stem: str = "imagenet", num_classes: int = 1000, in_channels: int = 3,
               dtype=None, rngs: nnx.Rngs):
    _check_stem(stem)
    self.stem, self.dtype = stem, dtype
    kw = dict(dtype=dtype, rngs=rngs)
    self.conv1 = (layers.conv(in_channels, 64, 7, stride=2, **kw) if stem == "imagenet"
                  else layers.conv(in_channels, 64, 3, **kw))
    self.conv2 = layers.conv(64, 64, 1, **kw)
    self.conv3 = layers.conv(64, 192, 3, **kw)
    mods, c = [], 192
    for spec in INCEPTION:
      if spec != "M":
        mods.append(Inception(c, spec, **kw))
        c = mods[-1].out_channels
    self.inception = nnx.List(mods)
    self.pool_after = tuple(_pool_positions())
    self.fc = nnx.Linear(c, num_classes, kernel_init=layers.classifier_init, dtype=dtype,
                         rngs=rngs)

  def __call__(self, x):
    if self.dtype is not None:
      x = x.astype(self.dtype)
    x = jax.nn.relu(self.conv1(x))
    if self.stem == "imagenet":
      x = layers.max_pool(x)
    x = jax.nn.relu(self.conv3(jax.nn.relu(self.conv2(x))))
    if self.stem == "imagenet":
      x = layers.max_pool(x)
    for i, m in enumerate(self.inception):
      x = m(x)
      if i in self.pool_after:
        x = layers.max_pool(x)
    return self.fc(jnp.mean(x, axis=(1, 2))).astype(jnp.float32)


def _pool_positions() -> list[int]:
  """Indices of the inception modules a max pool follows (after 3b and 4e)."""
  out, k = [], -1
  for spec in INCEPTION:
    if spec == "M":
      out.append(k)
    else:
      k += 1
  return out


RESNET50_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))  # (bottleneck width, blocks)


class Bottleneck(nnx.Module):
  """1x1 (stride) -> 3x3 -> 1x1 (x4), BN after each, projection shortcut when the shape
  changes (ResNet v1: the stride sits on the first 1x1 conv)."""

  def __init__(self, cin, width, stride, *, dtype, rngs):
    kw = dict(bias=False, dtype=dtype, rngs=rngs)
    out = 4 * width
    self.conv1 = layers.conv(cin, width, 1, stride=stride, **kw)
    self.bn1 = layers.batch_norm(width, dtype, rngs)
    self.conv2 = layers.conv(width, width, 3, **kw)
    self.bn2 = layers.batch_norm(width, dtype, rngs)
    self.conv3 = layers.conv(width, out, 1, **kw)
    self.bn3 = layers.batch_norm(out, dtype, rngs)
    project = stride != 1 or cin != out  # else the identity shortcut
    self.proj = layers.conv(cin, out, 1, stride=stride, **kw) if project else None
    self.bn_proj = layers.batch_norm(out, dtype, rngs) if project else None

  def __call__(self, x):
    y = jax.nn.relu(self.bn1(self.conv1(x)))
    y = jax.nn.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    shortcut = x if self.proj is None else self.bn_proj(self.proj(x))
    return jax.nn.relu(y + shortcut)


class ResNet50(nnx.Module):

  def __init__(self, *, stem: str = "imagenet", num_classes: int = 1000, in_channels: int = 3,
               dtype=None, rngs: nnx.Rngs):
    _check_stem(stem)
    self.stem, self.dtype = stem, dtype
    self.conv1 = (layers.conv(in_channels, 64, 7, stride=2, bias=False, dtype=dtype, rngs=rngs)
                  if stem == "imagenet"
                  else layers.conv(in_channels, 64, 3, bias=False, dtype=dtype, rngs=rngs))
    self.bn1 = layers.batch_norm(64, dtype, rngs)
    blocks, c = [], 64
    for s, (width, n) in enumerate(RESNET50_STAGES):
      for i in range(n):
        blocks.append(Bottleneck(c, width, 2 if i == 0 and s > 0 else 1, dtype=dtype,
                                 rngs=rngs))
        c = 4 * width
    self.blocks = nnx.List(blocks)
    self.fc = nnx.Linear(c, num_classes, kernel_init=layers.classifier_init, dtype=dtype,
                         rngs=rngs)

  def __call__(self, x):
    x = layers.stem_features(self, x)
    for block in self.blocks:
      x = block(x)
    return self.fc(jnp.mean(x, axis=(1, 2))).astype(jnp.float32)


registry.register("vgg16", VGG16)
registry.register("googlenet", GoogLeNet)
registry.register("resnet50", ResNet50)
