"""The official ShuffleNet-Series ShuffleNetV1, written again for the tests in NumPy
(float64, NCHW, PyTorch's layouts and op order), independent of the JAX model: the names
and shapes of its state dict, random weights with realistic BN statistics, and its forward
pass in eval mode. The converter's output is compared against this.

The release's architecture (ShuffleNetV1/network.py, blocks.py): stem conv 3x3/2 + BN +
ReLU + max pool 3x3/2 pad 1; stages of 4/8/4 ShuffleV1Blocks; a block is
pw (grouped, ungrouped in the first block) -> BN -> ReLU -> dw 3x3 (stride) -> BN ->
channel shuffle (channels read as (C/g, g), transposed) -> pw-linear (grouped) -> BN, then
relu(x + branch) at stride 1 or cat(avgpool3x3/2 pad 1 (x), relu(branch)) at stride 2;
global average pool; a classifier without bias.
"""

from __future__ import annotations

import numpy as np

# stage_out_channels of the release per (groups, model size): conv1, stage 2, 3, 4
RELEASE_CHANNELS = {
    (3, "0.5x"): (12, 120, 240, 480), (3, "1.0x"): (24, 240, 480, 960),
    (3, "1.5x"): (24, 360, 720, 1440), (3, "2.0x"): (48, 480, 960, 1920),
    (8, "0.5x"): (16, 192, 384, 768), (8, "1.0x"): (24, 384, 768, 1536),
    (8, "1.5x"): (24, 576, 1152, 2304), (8, "2.0x"): (48, 768, 1536, 3072),
}
REPEATS = (4, 8, 4)
EPS = 1e-5  # PyTorch's BatchNorm2d default


def blocks(groups: int, size: str):
  """(prefix, inp, oup, mid, stride, first_group) of every block."""
  conv1, *stages = RELEASE_CHANNELS[(groups, size)]
  out, inp, i = [], conv1, 0
  for s, (oup, n) in enumerate(zip(stages, REPEATS)):
    for j in range(n):
      out.append((f"features.{i}.", inp, oup, oup // 4, 2 if j == 0 else 1, s == 0 and j == 0))
      inp, i = oup, i + 1
  return out


def _bn_shapes(prefix: str, c: int) -> dict:
  return {prefix + k: (c,) for k in ("weight", "bias", "running_mean", "running_var")}


def shapes(groups: int, size: str, num_classes: int = 1000) -> dict[str, tuple]:
  """{name: shape} of the release's state dict (but num_batches_tracked)."""
  conv1, *_, last = RELEASE_CHANNELS[(groups, size)]
  sd = {"first_conv.0.weight": (conv1, 3, 3, 3), **_bn_shapes("first_conv.1.", conv1)}
  for pre, inp, oup, mid, stride, first in blocks(groups, size):
    sd.update(_unit_shapes(pre, RELEASE_UNIT, inp, oup, groups, stride, first))
  sd["classifier.0.weight"] = (num_classes, last)
  return sd


# A unit's tensor names: pw conv, its BN, dw conv, its BN, pw-linear conv, its BN.
RELEASE_UNIT = ("branch_main_1.0.weight", "branch_main_1.1.", "branch_main_1.3.weight",
                "branch_main_1.4.", "branch_main_2.0.weight", "branch_main_2.1.")
IMGCLSMOB_UNIT = ("compress_conv1.weight", "compress_bn1.", "dw_conv2.weight", "dw_bn2.",
                  "expand_conv3.weight", "expand_bn3.")


def _unit_shapes(pre, names, inp, oup, groups, stride, first) -> dict[str, tuple]:
  mid, outputs = oup // 4, oup - inp if stride == 2 else oup
  pw1, bn1, dw, bn2, pw2, bn3 = (pre + n for n in names)
  return {pw1: (mid, inp // (1 if first else groups), 1, 1), **_bn_shapes(bn1, mid),
          dw: (mid, 1, 3, 3), **_bn_shapes(bn2, mid),
          pw2: (outputs, mid // groups, 1, 1), **_bn_shapes(bn3, outputs)}


def parameter_count(groups: int, size: str) -> int:
  """Trainable parameters (PyTorch's ``parameters()``: no BN running statistics)."""
  return sum(int(np.prod(s)) for k, s in shapes(groups, size).items() if "running" not in k)


def random_state_dict(groups: int, size: str, seed: int = 0) -> dict[str, np.ndarray]:
  """Random weights in the release's layout, with the num_batches_tracked counters."""
  return _random_weights(shapes(groups, size), "branch_main_2", "classifier", seed,
                         counters=True)


def _random_weights(shapes_: dict, last_bn: str, classifier: str, seed: int,
                    counters: bool = False) -> dict[str, np.ndarray]:
  """Random weights (He-scaled convs, a small classifier) and BN statistics of trained
  magnitudes, float32 as PyTorch saves them. The branches' last BN scales (names containing
  ``last_bn``) are small (0.15-0.45) and the variances 2-8, so activations stay of order 1
  through the residual chain (logits ~1-3 on unit-normal images)."""
  rng = np.random.default_rng(seed)
  sd = {}
  for name, shape in shapes_.items():
    if name.endswith("running_mean"):
      sd[name] = rng.normal(0, 0.2, shape)
    elif name.endswith("running_var"):
      sd[name] = rng.uniform(2.0, 8.0, shape)
    elif name.endswith("bias"):
      sd[name] = rng.normal(0, 0.1, shape)
    elif len(shape) == 1:  # BN weight
      sd[name] = rng.uniform(0.15, 0.45, shape) if last_bn in name else rng.uniform(
          0.5, 1.5, shape)
    elif name.startswith(classifier):
      sd[name] = rng.normal(0, 0.05, shape)
    else:
      sd[name] = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
    if counters and name.endswith("running_var"):
      sd[name[:-len("running_var")] + "num_batches_tracked"] = np.asarray(1000, np.int64)
  return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in sd.items()}


# ------------------------------------------------------------------------------ forward

def conv(x, w, stride=1, pad=0, groups=1):
  """PyTorch's Conv2d (no bias) on NCHW ``x`` with OIHW ``w``."""
  n, c, h, wd = x.shape
  o, cg, kh, kw = w.shape
  xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
  wg = w.reshape(groups, o // groups, cg, kh, kw)
  y = np.zeros((n, groups, o // groups, ho, wo))
  for i in range(kh):
    for j in range(kw):
      xs = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
      y += np.einsum("ngchw,goc->ngohw", xs.reshape(n, groups, cg, ho, wo), wg[..., i, j])
  return y.reshape(n, o, ho, wo)


def bn(x, sd, prefix):
  f = lambda k: np.asarray(sd[prefix + k], np.float64)[None, :, None, None]  # noqa: E731
  return (x - f("running_mean")) / np.sqrt(f("running_var") + EPS) * f("weight") + f("bias")


def pool(x, kind):
  """3x3 stride-2 pad-1 pooling: max (pad -inf) or average (count_include_pad: / 9)."""
  n, c, h, w = x.shape
  xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)),
              constant_values=-np.inf if kind == "max" else 0.0)
  ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
  taps = [xp[:, :, i:i + 2 * ho:2, j:j + 2 * wo:2] for i in range(3) for j in range(3)]
  return np.max(taps, axis=0) if kind == "max" else np.sum(taps, axis=0) / 9.0


def shuffle(x, groups):
  n, c, h, w = x.shape
  return x.reshape(n, c // groups, groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)


def forward(sd: dict, images_nhwc: np.ndarray, groups: int, size: str) -> np.ndarray:
  """The release's logits (float64) for NHWC images."""
  relu = lambda t: np.maximum(t, 0)  # noqa: E731
  w = lambda k: np.asarray(sd[k], np.float64)  # noqa: E731
  x = np.asarray(images_nhwc, np.float64).transpose(0, 3, 1, 2)
  x = relu(bn(conv(x, w("first_conv.0.weight"), 2, 1), sd, "first_conv.1."))
  x = pool(x, "max")
  for pre, inp, oup, mid, stride, first in blocks(groups, size):
    y = relu(bn(conv(x, w(pre + "branch_main_1.0.weight"), groups=1 if first else groups),
                sd, pre + "branch_main_1.1."))
    y = bn(conv(y, w(pre + "branch_main_1.3.weight"), stride, 1, groups=mid), sd,
           pre + "branch_main_1.4.")
    if groups > 1:
      y = shuffle(y, groups)
    y = bn(conv(y, w(pre + "branch_main_2.0.weight"), groups=groups), sd, pre + "branch_main_2.1.")
    x = relu(x + y) if stride == 1 else np.concatenate([pool(x, "avg"), relu(y)], axis=1)
  return x.mean(axis=(2, 3)) @ w("classifier.0.weight").T


# ------------------------------------------------------------------------------ imgclsmob
# osmr/imgclsmob (pytorchcv) ShuffleNet, pytorch/pytorchcv/models/shufflenet.py: the paper's
# shuffle (channels read as (g, C/g)) after the first pw conv's ReLU, stride-2 units
# concatenate (branch, pooled input), a classifier with bias; widths int(c * scale).
IMGCLSMOB_1X = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                4: (272, 544, 1088), 8: (384, 768, 1536)}


def imgclsmob_blocks(groups: int, scale: float):
  """(prefix, inp, oup, stride, first) of every unit, pytorchcv's names."""
  inp = int(24 * scale)
  out = []
  for s, (c, n) in enumerate(zip(IMGCLSMOB_1X[groups], REPEATS)):
    for j in range(n):
      oup = int(c * scale)
      out.append((f"features.stage{s + 1}.unit{j + 1}.", inp, oup, 2 if j == 0 else 1,
                  s == 0 and j == 0))
      inp = oup
  return out


def imgclsmob_shapes(groups: int, scale: float, num_classes: int = 1000) -> dict[str, tuple]:
  init = int(24 * scale)
  sd = {"features.init_block.conv.weight": (init, 3, 3, 3),
        **_bn_shapes("features.init_block.bn.", init)}
  for pre, inp, oup, stride, first in imgclsmob_blocks(groups, scale):
    sd.update(_unit_shapes(pre, IMGCLSMOB_UNIT, inp, oup, groups, stride, first))
  last = imgclsmob_blocks(groups, scale)[-1][2]
  sd["output.weight"], sd["output.bias"] = (num_classes, last), (num_classes,)
  return sd


def imgclsmob_random_state_dict(groups: int, scale: float, seed: int = 0) -> dict:
  """Random weights in imgclsmob's layout (its units' last BN is ``expand_bn3``)."""
  return _random_weights(imgclsmob_shapes(groups, scale), "expand_bn3", "output", seed)


def imgclsmob_forward(sd: dict, images_nhwc: np.ndarray, groups: int, scale: float):
  relu = lambda t: np.maximum(t, 0)  # noqa: E731
  w = lambda k: np.asarray(sd[k], np.float64)  # noqa: E731
  x = np.asarray(images_nhwc, np.float64).transpose(0, 3, 1, 2)
  x = relu(bn(conv(x, w("features.init_block.conv.weight"), 2, 1), sd, "features.init_block.bn."))
  x = pool(x, "max")
  for pre, inp, oup, stride, first in imgclsmob_blocks(groups, scale):
    y = relu(bn(conv(x, w(pre + "compress_conv1.weight"), groups=1 if first else groups), sd,
                pre + "compress_bn1."))
    n, c, h, wd = y.shape  # the paper's shuffle: (g, C/g) transposed
    y = y.reshape(n, groups, c // groups, h, wd).transpose(0, 2, 1, 3, 4).reshape(n, c, h, wd)
    y = bn(conv(y, w(pre + "dw_conv2.weight"), stride, 1, groups=c), sd, pre + "dw_bn2.")
    y = bn(conv(y, w(pre + "expand_conv3.weight"), groups=groups), sd, pre + "expand_bn3.")
    x = relu(np.concatenate([y, pool(x, "avg")], axis=1) if stride == 2 else y + x)
  return x.mean(axis=(2, 3)) @ w("output.weight").T + w("output.bias")
