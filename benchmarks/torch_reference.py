"""The same networks in PyTorch, for the training-speed benchmark only (bench_train.py):
ShuffleNet v1, the Table 4 units in its skeleton and MobileNet v1.

They mirror shufflenet_jax/models/{shufflenet,units,mobilenet}.py layer for layer (stage
widths, stem, ungrouped first 1x1 conv of stage 2, channel shuffle, 3x3 s2 average-pool
shortcut with count_include_pad, BN momentum/eps, FC with bias) and name their layers as
the JAX modules do, so both frameworks train the same network: tests/test_bench.py checks
that the parameter counts are equal and that, with the JAX model's weights loaded
(:func:`load_from_jax`, which follows the shared names), the logits are the same. PyTorch is
not a dependency of the package: ``pip install -r requirements-bench.txt``.
"""

from __future__ import annotations

import torch
from torch import nn

from shufflenet_jax.models import shufflenet as jax_shufflenet


def _bn(c: int) -> nn.BatchNorm2d:
  return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)


class ShuffleUnit(nn.Module):
  def __init__(self, cin: int, cout: int, stride: int, groups: int, group_first: bool,
               shuffle: bool = True):
    super().__init__()
    mid = cout // 4
    branch_out = cout - cin if stride == 2 else cout
    self.stride, self.groups, self.shuffle = stride, groups, shuffle
    self.conv1 = nn.Conv2d(cin, mid, 1, groups=groups if group_first else 1, bias=False)
    self.bn1 = _bn(mid)
    self.dwconv = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
    self.bn2 = _bn(mid)
    self.conv2 = nn.Conv2d(mid, branch_out, 1, groups=groups, bias=False)
    self.bn3 = _bn(branch_out)
    if stride == 2:
      self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    if self.shuffle and self.groups > 1:
      n, c, h, w = y.shape
      y = y.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)
    y = self.bn3(self.conv2(self.bn2(self.dwconv(y))))
    if self.stride == 2:
      return torch.cat([torch.relu(self.pool(x)), torch.relu(y)], 1)
    return torch.relu(x + y)


class ShuffleNet(nn.Module):
  def __init__(self, groups: int = 3, width: float = 1.0, stem: str = "imagenet",
               num_classes: int = 1000, in_channels: int = 3, depth: str = "standard",
               shuffle: bool = True):
    super().__init__()
    c1 = jax_shufflenet.stem_channels(groups, width)
    self.stem = stem
    self.conv1 = nn.Conv2d(in_channels, c1, 3, stride=2 if stem == "imagenet" else 1,
                           padding=1, bias=False)
    self.bn1 = _bn(c1)
    self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
    units, cin = [], c1
    stages = zip(jax_shufflenet.stage_channels(groups, width, depth),
                 jax_shufflenet.STAGE_REPEATS[depth])
    for s, (cout, repeats) in enumerate(stages):
      for i in range(repeats):
        units.append(ShuffleUnit(cin, cout, 2 if i == 0 else 1, groups,
                                 group_first=not (s == 0 and i == 0), shuffle=shuffle))
        cin = cout
    self.units = nn.Sequential(*units)
    self.fc = nn.Linear(cin, num_classes)

  def forward(self, x):
    x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
    x = self.units(x)
    return self.fc(x.mean((2, 3)))


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
  return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False)


class VGGLikeUnit(nn.Module):
  def __init__(self, cin: int, cout: int, stride: int):
    super().__init__()
    self.conv1, self.bn1 = _conv(cin, cout, 3, stride), _bn(cout)
    self.conv2, self.bn2 = _conv(cout, cout, 3), _bn(cout)

  def forward(self, x):
    return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class BottleneckUnit(nn.Module):
  def __init__(self, cin: int, cout: int, stride: int, mid: int, groups: int = 1):
    super().__init__()
    self.conv1, self.bn1 = _conv(cin, mid, 1), _bn(mid)
    self.conv2, self.bn2 = _conv(mid, mid, 3, stride, groups), _bn(mid)
    self.conv3, self.bn3 = _conv(mid, cout, 1), _bn(cout)
    project = stride != 1 or cin != cout
    self.proj = _conv(cin, cout, 1, stride) if project else None
    self.bn_proj = _bn(cout) if project else None

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = torch.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return torch.relu(y + (x if self.proj is None else self.bn_proj(self.proj(x))))


class UnitNet(nn.Module):
  """Paper Table 4: ``kind`` units in the ShuffleNet skeleton (shufflenet_jax/models/units.py)."""

  def __init__(self, kind: str, width: int, stem: str = "imagenet", num_classes: int = 1000,
               in_channels: int = 3):
    super().__init__()
    from shufflenet_jax.models import units as jax_units
    c = jax_units.stem_width(width)
    self.conv1, self.bn1 = nn.Conv2d(in_channels, c, 3, stride=2 if stem == "imagenet" else 1,
                                     padding=1, bias=False), _bn(c)
    self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
    units = []
    for cout, repeats in zip(jax_units.stage_widths(kind, width),
                             jax_shufflenet.STAGE_REPEATS["standard"]):
      for i in range(repeats):
        stride = 2 if i == 0 else 1
        if kind == "vgg_like":
          units.append(VGGLikeUnit(c, cout, stride))
        elif kind in ("resnet", "resnext"):
          units.append(BottleneckUnit(c, cout, stride, jax_units.bottleneck_mid(kind, cout),
                                      jax_units.CARDINALITY if kind == "resnext" else 1))
        elif kind == "xception_like":
          units.append(ShuffleUnit(c, cout, stride, groups=1, group_first=True, shuffle=False))
        else:
          raise ValueError(f"unit kind={kind!r}: the PyTorch reference has vgg_like, resnet, "
                           "resnext, xception_like")
        c = cout
    self.units = nn.Sequential(*units)
    self.fc = nn.Linear(c, num_classes)

  def forward(self, x):
    x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
    return self.fc(self.units(x).mean((2, 3)))


class MobileNetV1(nn.Module):
  """shufflenet_jax/models/mobilenet.py: blocks[i] = (depthwise, BN, pointwise, BN)."""

  def __init__(self, alpha: float = 1.0, stem: str = "imagenet", num_classes: int = 1000,
               in_channels: int = 3):
    super().__init__()
    from shufflenet_jax.models import mobilenet as jax_mobilenet
    c = int(32 * alpha)
    self.conv1, self.bn1 = nn.Conv2d(in_channels, c, 3, stride=2 if stem == "imagenet" else 1,
                                     padding=1, bias=False), _bn(c)
    blocks = []
    for out, stride in jax_mobilenet.BLOCKS:
      out = int(out * alpha)
      blocks.append(nn.ModuleList([_conv(c, c, 3, stride, groups=c), _bn(c), _conv(c, out, 1),
                                   _bn(out)]))
      c = out
    self.blocks = nn.ModuleList(blocks)
    self.fc = nn.Linear(c, num_classes)

  def forward(self, x):
    x = torch.relu(self.bn1(self.conv1(x)))
    for dw, bn_dw, pw, bn_pw in self.blocks:
      x = torch.relu(bn_pw(pw(torch.relu(bn_dw(dw(x))))))
    return self.fc(x.mean((2, 3)))


def from_registry_name(name: str, **kw) -> nn.Module:
  """``shufflenet_1.0x_g3``, ``unit_resnet_38``, ``mobilenet_v1_1.0`` -> the PyTorch twin
  (ShuffleNets: standard or shallow depth, with or without the shuffle; no SE)."""
  from shufflenet_jax.models import mobilenet as jax_mobilenet
  from shufflenet_jax.models import registry
  from shufflenet_jax.models import units as jax_units
  constructor, args = registry.model_spec(name)
  if constructor is jax_units.UnitNet:
    return UnitNet(args["kind"], args["width"], **kw)
  if constructor is jax_mobilenet.MobileNetV1:
    return MobileNetV1(args["alpha"], **kw)
  if constructor is not jax_shufflenet.ShuffleNet:
    raise ValueError(f"{name}: the PyTorch reference has ShuffleNets, the Table 4 units and "
                     "MobileNet v1 only")
  unsupported = {k: v for k, v in args.items()
                 if k not in ("groups", "width", "depth", "shuffle") and v}
  if unsupported:
    raise ValueError(f"{name}: the PyTorch reference has no {unsupported}")
  return ShuffleNet(groups=args["groups"], width=args["width"],
                    depth=args.get("depth", "standard"), shuffle=args.get("shuffle", True), **kw)


def load_from_jax(net: nn.Module, model) -> nn.Module:
  """Copies a JAX model's parameters and BN statistics into its PyTorch twin (HWIO kernels
  -> OIHW), layer by layer through the names both share (``units.3.conv1`` is
  ``model.units[3].conv1``), so the two can be compared output for output."""
  import numpy as np

  def put(t: torch.Tensor, a, perm=None) -> None:
    a = np.array(a)  # a writable copy
    t.data.copy_(torch.from_numpy(np.ascontiguousarray(a.transpose(perm) if perm else a)))

  for path, t in net.named_modules():
    if not isinstance(t, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
      continue
    j = model
    for part in path.split("."):
      j = j[int(part)] if part.isdigit() else getattr(j, part)
    if isinstance(t, nn.Conv2d):
      put(t.weight, j.kernel[...], (3, 2, 0, 1))
    elif isinstance(t, nn.BatchNorm2d):
      for tt, a in ((t.weight, j.scale), (t.bias, j.bias), (t.running_mean, j.mean),
                    (t.running_var, j.var)):
        put(tt, a[...])
    else:
      put(t.weight, j.kernel[...], (1, 0))
      put(t.bias, j.bias[...])
  return net
