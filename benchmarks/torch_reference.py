"""The same ShuffleNet v1 in PyTorch, for the training-speed benchmark only (bench_train.py).

It mirrors shufflenet_jax/models/shufflenet.py layer for layer (stage widths, stem,
ungrouped first 1x1 conv of stage 2, channel shuffle, 3x3 s2 average-pool shortcut with
count_include_pad, BN momentum/eps, FC with bias), so both frameworks train the same
network: tests/test_bench.py checks that the parameter counts are equal and that, with the
JAX model's weights loaded (:func:`load_from_jax`), the logits are the same. PyTorch is not a
dependency of the package: ``pip install -r requirements-bench.txt``.
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


def from_registry_name(name: str, **kw) -> ShuffleNet:
  """``shufflenet_1.0x_g3`` -> the PyTorch twin (standard depth, no SE)."""
  from shufflenet_jax.models import registry
  constructor, args = registry.model_spec(name)
  if constructor is not jax_shufflenet.ShuffleNet:
    raise ValueError(f"{name} is not a ShuffleNet; the PyTorch reference has only those")
  unsupported = {k: v for k, v in args.items()
                 if k not in ("groups", "width", "depth", "shuffle") and v}
  if unsupported:
    raise ValueError(f"{name}: the PyTorch reference has no {unsupported}")
  return ShuffleNet(groups=args["groups"], width=args["width"],
                    depth=args.get("depth", "standard"), shuffle=args.get("shuffle", True), **kw)


def load_from_jax(net: ShuffleNet, model) -> ShuffleNet:
  """Copies a JAX ShuffleNet's parameters and BN statistics into its PyTorch twin (HWIO
  kernels -> OIHW), so the two can be compared output for output."""
  import numpy as np

  def put(t: torch.Tensor, a, perm=None) -> None:
    a = np.array(a)  # a writable copy
    t.data.copy_(torch.from_numpy(np.ascontiguousarray(a.transpose(perm) if perm else a)))

  def conv(t_conv: nn.Conv2d, j_conv) -> None:
    put(t_conv.weight, j_conv.kernel[...], (3, 2, 0, 1))

  def bn(t_bn: nn.BatchNorm2d, j_bn) -> None:
    for t, a in ((t_bn.weight, j_bn.scale), (t_bn.bias, j_bn.bias), (t_bn.running_mean, j_bn.mean),
                 (t_bn.running_var, j_bn.var)):
      put(t, a[...])

  conv(net.conv1, model.conv1)
  bn(net.bn1, model.bn1)
  for t_unit, j_unit in zip(net.units, model.units):
    for name in ("conv1", "dwconv", "conv2"):
      conv(getattr(t_unit, name), getattr(j_unit, name))
    for name in ("bn1", "bn2", "bn3"):
      bn(getattr(t_unit, name), getattr(j_unit, name))
  put(net.fc.weight, model.fc.kernel[...], (1, 0))
  put(net.fc.bias, model.fc.bias[...])
  return net
