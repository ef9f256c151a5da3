"""Checkpoints of other ShuffleNet v1 codebases -> a run directory of this one.

  python -m shufflenet_jax.convert --format=release --in=snetv1_group8_1.0x.pth.tar \\
      --model=shufflenet_1.0x_g8 --out=runs/release_1.0x_g8
  python -m shufflenet_jax.convert --format=imgclsmob --in=shufflenet_g3_w1.pth \\
      --model=shufflenet_1.0x_g3 --out=runs/imgclsmob_1.0x_g3

``release``: the official ShuffleNet-Series ShuffleNetV1 checkpoints (g3 and g8 at 0.5x,
1.0x, 1.5x, 2.0x), PyTorch state dicts (possibly wrapped in ``state_dict`` with ``module.``
prefixes). Their channel shuffle is the inverse of the paper's and comes after the
depthwise conv, and their classifier has no bias: the converted model is built with
``shuffle_order=release`` and ``classifier_bias=False``, and the depthwise conv's and its
BN's channels are permuted so the shuffle can stay before them (per-channel ops commute
with a permutation of the channels).

``imgclsmob``: osmr/imgclsmob's (pytorchcv) ShuffleNet (g1, g2, g3, g4, g8 at 1.0x; g1 and
g3 at 0.5x and 0.25x): the paper's shuffle before the depthwise conv and a classifier with
bias, but its stride-2 units concatenate the branch before the pooled shortcut: the model
is built with ``concat_order=branch_first``.

Input files: ``.npz`` or ``.safetensors`` (read without torch), or ``.pth``/``.pth.tar``/
``.pt`` when torch is installed. To make an ``.npz`` on any machine with torch:

  python -c "import sys, torch, numpy as np; sd = torch.load(sys.argv[1], map_location='cpu'); \\
      sd = sd.get('state_dict', sd); np.savez(sys.argv[2], **{k: v.numpy() for k, v in sd.items()})" \\
      IN.pth.tar OUT.npz

The output directory is what a training run leaves (config.json, checkpoints/ at step 0),
so ImageNet evaluation (``main.py --config=configs/imagenet.py:eval --config.init_from=DIR``),
``python -m shufflenet_jax.export --workdir=DIR`` and ``train.restore_model`` read it like
any run's. Every tensor is mapped
by name and shape; a missing, extra or misshapen tensor is one line naming it, exit 2,
nothing written.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

FORMATS = ("release", "imgclsmob")
# The model arguments each format's network needs (models/shufflenet.py).
MODEL_KWARGS = {"release": dict(shuffle_order="release", classifier_bias=False),
                "imgclsmob": dict(concat_order="branch_first")}
# The input scaling each format's weights were trained with (input_pipeline.INPUT_NORMS):
# the release feeds BGR 0-255 (its ToBGRTensor), pytorchcv RGB with ImageNet's mean/std.
INPUT_NORM = {"release": "bgr_0_255", "imgclsmob": "mean_std"}
# Each format's own evaluation resize (OpenCV's INTER_LINEAR; PIL's bilinear).
EVAL_RESIZE_METHOD = {"release": "bilinear", "imgclsmob": "bilinear_antialias"}
# BN tensors: PyTorch name -> flax nnx.BatchNorm variable
_BN = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


class ConversionError(ValueError):
  """A state dict that does not fit the model (one line naming the tensor)."""


# ------------------------------------------------------------------------------ reading

def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
  """{name: array} from ``.npz``, ``.safetensors`` or (with torch) a PyTorch file; a
  ``state_dict`` wrapper and ``module.`` prefixes (DataParallel) are removed."""
  path = Path(path)
  if not path.is_file():
    raise ConversionError(f"--in={str(path)!r}: no such file")
  name = path.name.lower()
  if name.endswith(".npz"):
    with np.load(path, allow_pickle=False) as f:
      sd = {k: f[k] for k in f.files}
  elif name.endswith(".safetensors"):
    sd = _read_safetensors(path)
  elif name.endswith((".pth", ".pth.tar", ".pt", ".tar")):
    try:
      import torch
    except ImportError:
      raise ConversionError(
          f"--in={str(path)!r}: reading a PyTorch file needs torch (pip install torch), or "
          "convert it to .npz on a machine that has torch (python -m shufflenet_jax.convert "
          "--help shows the one-line command)") from None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    obj = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    sd = {k: v.detach().cpu().numpy() for k, v in obj.items() if hasattr(v, "detach")}
  else:
    raise ConversionError(f"--in={str(path)!r}: unknown file type; valid: .npz, .safetensors, "
                          ".pth, .pth.tar, .pt")
  return {k[len("module."):] if k.startswith("module.") else k: np.asarray(v)
          for k, v in sd.items()}


_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
                       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
                       "U8": np.uint8, "BOOL": np.bool_}


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
  """The safetensors format (an 8-byte little-endian header size, a JSON header of
  dtype/shape/data_offsets per tensor, the raw bytes), read with NumPy alone."""
  data = path.read_bytes()
  try:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
  except (struct.error, ValueError) as e:
    raise ConversionError(f"--in={str(path)!r}: not a safetensors file ({e})") from None
  out, base = {}, 8 + n
  for name, info in header.items():
    if name == "__metadata__":
      continue
    if info["dtype"] not in _SAFETENSORS_DTYPES:
      raise ConversionError(f"{name}: safetensors dtype {info['dtype']} is not supported")
    start, end = info["data_offsets"]
    out[name] = np.frombuffer(data[base + start:base + end],
                              _SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
  return out


# ------------------------------------------------------------------------------ mapping

def release_shuffle_permutation(channels: int, groups: int) -> np.ndarray:
  """perm with release_shuffle(x)[..., j] == x[..., perm[j]] (ops.channel_shuffle
  ``release``: the channels read as a (C/g, g) matrix and transposed)."""
  return np.arange(channels).reshape(channels // groups, groups).T.reshape(-1)


def _conv(w: np.ndarray) -> np.ndarray:
  return np.transpose(w, (2, 3, 1, 0))  # PyTorch OIHW -> HWIO


def release_tensors(model) -> dict[str, tuple[tuple, callable]]:
  """{release name: (our variable path, PyTorch array -> our array)} for every tensor of a
  ShuffleNet built with ``shuffle_order='release'``; the shapes are checked on use."""
  m = {"first_conv.0.weight": (("conv1", "kernel"), _conv)}
  m.update({f"first_conv.1.{k}": (("bn1", v), None) for k, v in _BN.items()})
  for i, unit in enumerate(model.units):
    pre, ours = f"features.{i}.", ("units", i)
    perm = None
    if unit.shuffle and unit.groups > 1:
      perm = release_shuffle_permutation(unit.bn2.scale.shape[0], unit.groups)
    m[pre + "branch_main_1.0.weight"] = (ours + ("conv1", "kernel"), _conv)
    m[pre + "branch_main_1.3.weight"] = (
        ours + ("dwconv", "kernel"), lambda w, p=perm: _conv(w if p is None else w[p]))
    m[pre + "branch_main_2.0.weight"] = (ours + ("conv2", "kernel"), _conv)
    for k, v in _BN.items():
      m[pre + f"branch_main_1.1.{k}"] = (ours + ("bn1", v), None)
      m[pre + f"branch_main_1.4.{k}"] = (ours + ("bn2", v),
                                         None if perm is None else lambda a, p=perm: a[p])
      m[pre + f"branch_main_2.1.{k}"] = (ours + ("bn3", v), None)
  m["classifier.0.weight"] = (("fc", "kernel"), lambda w: w.T)
  return m


def imgclsmob_tensors(model) -> dict[str, tuple[tuple, callable]]:
  """{imgclsmob name: (our variable path, PyTorch array -> our array)} for a ShuffleNet
  built with ``concat_order='branch_first'`` (pytorchcv's names: features.init_block,
  features.stage{s}.unit{u}, output)."""
  m = {"features.init_block.conv.weight": (("conv1", "kernel"), _conv),
       "output.weight": (("fc", "kernel"), lambda w: w.T), "output.bias": (("fc", "bias"), None)}
  m.update({f"features.init_block.bn.{k}": (("bn1", v), None) for k, v in _BN.items()})
  stage, u = 0, 0
  for i, unit in enumerate(model.units):
    stage, u = (stage + 1, 1) if unit.stride == 2 else (stage, u + 1)
    pre, ours = f"features.stage{stage}.unit{u}.", ("units", i)
    m[pre + "compress_conv1.weight"] = (ours + ("conv1", "kernel"), _conv)
    m[pre + "dw_conv2.weight"] = (ours + ("dwconv", "kernel"), _conv)
    m[pre + "expand_conv3.weight"] = (ours + ("conv2", "kernel"), _conv)
    for k, v in _BN.items():
      m[pre + f"compress_bn1.{k}"] = (ours + ("bn1", v), None)
      m[pre + f"dw_bn2.{k}"] = (ours + ("bn2", v), None)
      m[pre + f"expand_bn3.{k}"] = (ours + ("bn3", v), None)
  return m


TENSORS = {"release": release_tensors, "imgclsmob": imgclsmob_tensors}


def load_state(sd: dict[str, np.ndarray], model, fmt: str) -> None:
  """Loads the state dict ``sd`` of format ``fmt`` into ``model`` (a ShuffleNet built with
  the format's MODEL_KWARGS, 1000 classes), checking every name and shape first:
  ConversionError (nothing changed) on the first problem."""
  have = dict(shuffle_order=model.shuffle_order, concat_order=model.concat_order,
              classifier_bias=model.fc.bias is not None)
  wrong = [f"{k}={v!r}" for k, v in MODEL_KWARGS[fmt].items() if have[k] != v]
  if wrong:
    raise ConversionError(f"the model must be built with {', '.join(wrong)} for {fmt} weights")
  mapping = TENSORS[fmt](model)
  extra = sorted(k for k in sd if k not in mapping and not k.endswith("num_batches_tracked"))
  if extra:
    raise ConversionError(f"{extra[0]}: a tensor this model does not have"
                          + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
  values = {}
  for name, (path, fn) in mapping.items():
    if name not in sd:
      raise ConversionError(f"{name}: missing from the state dict (the model needs it)")
    value = np.asarray(sd[name], np.float32)
    value = fn(value) if fn is not None else value
    target = _variable(model, path)
    if value.shape != tuple(target.shape):
      raise ConversionError(f"{name}: shape {tuple(sd[name].shape)} does not fit the model's "
                            f"{'.'.join(map(str, path))} {tuple(target.shape)}")
    values[path] = value
  for path, value in values.items():
    _variable(model, path)[...] = value


def _variable(model, path: tuple):
  """The nnx Variable at ``path`` (attribute names, list indices) of ``model``."""
  obj = model
  for key in path:
    obj = obj[key] if isinstance(key, int) else getattr(obj, key)
  return obj


# ------------------------------------------------------------------------------ writing

def converted_config(model_name: str, fmt: str = "release"):
  """The run config of a converted model (configs/imagenet.py's, with the model arguments
  the format's weights need)."""
  from configs import imagenet
  config = imagenet.get_config(f"model={model_name}")
  for k, v in MODEL_KWARGS[fmt].items():
    config.model_kwargs[k] = v
  config.input_norm = INPUT_NORM[fmt]
  config.eval_resize_method = EVAL_RESIZE_METHOD[fmt]
  config.wandb.mode = "disabled"
  return config


def _empty_out(out: str | Path) -> Path:
  out = Path(out)
  if out.exists() and any(out.iterdir()):
    raise ConversionError(f"--out={str(out)!r} exists and is not empty")
  return out


def write_run(model, config, out: str | Path) -> Path:
  """``out`` as a finished-training workdir: config.json and the model's state as the
  checkpoint of step 0 (optimizer state freshly initialized), readable by
  ``train.restore_model``."""
  import jax.numpy as jnp
  import optax
  import orbax.checkpoint as ocp
  from flax import nnx

  from shufflenet_jax import plan as run_plan
  from shufflenet_jax import records, train
  out = _empty_out(out)
  plan = run_plan.make(config, check=False)
  params, batch_stats = nnx.state(model, nnx.Param), nnx.state(model, nnx.BatchStat)
  tx = train.make_optimizer(plan, optax.constant_schedule(0.0))
  state = dict(params=params, batch_stats=batch_stats, opt_state=tx.init(params),
               step=jnp.zeros((), jnp.int32))
  out.mkdir(parents=True, exist_ok=True)
  records.write_config(config, out)
  with ocp.CheckpointManager((out / "checkpoints").absolute(),
                             options=ocp.CheckpointManagerOptions(create=True)) as ckpt:
    ckpt.save(0, args=ocp.args.StandardSave(state))
    ckpt.wait_until_finished()
  return out


def convert(fmt: str, path: str | Path, model_name: str, out: str | Path) -> Path:
  """Reads ``path`` (format ``fmt``), loads it into ``model_name`` and writes the run
  directory ``out``; nothing is written when anything does not fit."""
  if fmt not in FORMATS:
    raise ConversionError(f"--format={fmt!r}; valid: {', '.join(FORMATS)}")
  from shufflenet_jax import catalog
  try:
    catalog.preset(model_name)
  except ValueError as e:
    raise ConversionError(f"--model: {e}") from None
  if not model_name.startswith("shufflenet_"):
    raise ConversionError(f"--model={model_name!r}: the converters load ShuffleNets "
                          "(shufflenet_{width}x_g{groups})")
  out = _empty_out(out)
  sd = load_state_dict(path)
  from shufflenet_jax import plan as run_plan
  from shufflenet_jax.models import registry
  config = converted_config(model_name, fmt)
  plan = run_plan.make(config, check=False)
  model = registry.create_model(model_name, rngs=registry.KeyStream(0), **plan.model_kwargs)
  load_state(sd, model, fmt)
  return write_run(model, config, out)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m shufflenet_jax.convert", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--format", required=True, help=f"one of {', '.join(FORMATS)}")
  p.add_argument("--in", dest="path", required=True, help=".npz, .safetensors or .pth[.tar]")
  p.add_argument("--model", required=True, help="registry name, e.g. shufflenet_1.0x_g8")
  p.add_argument("--out", required=True, help="the run directory to write")
  args = p.parse_args(argv)
  try:
    out = convert(args.format, args.path, args.model, args.out)
  except ConversionError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {out} (config.json, checkpoints/0): python -m shufflenet_jax.export "
        f"--workdir={out} reads it")
  return 0


if __name__ == "__main__":
  sys.exit(main())
