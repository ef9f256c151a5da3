"""Small datasets held in device memory, batched and augmented inside the jitted step.

For Fashion-MNIST-sized data (the training set is 47 MB of uint8) the whole split lives on
the device as uint8; each step gathers its batch by index and applies the pad-crop-flip
augmentation there, so there is no tf.data (and no TensorFlow) in the training loop and k
seeds vmapped in one program share one copy of the data.

Determinism: the batch of step t for seed s is a pure function of (s, t): epoch e = t //
steps_per_epoch reads the permutation ``random.permutation(fold_in(key(s), e))`` of the
split (the remainder of an epoch is dropped), and each example's crop offset and flip
draw from ``fold_in(fold_in(key(s), 2**20 + t), position in the batch)``. A resumed run reads
exactly the batches an uninterrupted one would, and two arms of an ablation with the same
seed see the same images in the same order with the same augmentation.

The arrays come from, in this order: ``<data_dir>/<dataset>.npz`` (keys train_images,
train_labels, test_images, test_labels; ``python -m shufflenet_jax.device_data --out DIR``
writes it), then the distribution's IDX files (``$SHUFFLENET_FASHION_MNIST_DIR`` or
/usr/share/datasets/fashion-mnist). Neither needs TensorFlow; the tf.data pipeline
(input_pipeline.py) stays for ImageNet and the other tfds datasets.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from shufflenet_jax import datasets

SUPPORTED = ("fashion_mnist",)
_IDX = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
_AUG_STREAM = 2 ** 20  # fold_in offset that keeps augmentation keys apart from epoch keys


class Split(NamedTuple):
  images: np.ndarray  # uint8 [N, H, W, C]
  labels: np.ndarray  # int32 [N]


def _read_idx(path: Path) -> np.ndarray:
  opener = gzip.open if path.suffix == ".gz" else open
  with opener(path, "rb") as f:
    data = f.read()
  if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
    raise ValueError(f"{path} is not an IDX file of unsigned bytes")
  ndim = data[3]
  dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
  body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(dims)):
    raise ValueError(f"{path}: {body.size} bytes after the header, expected {dims}")
  return body.reshape(dims)


def idx_dir() -> Path:
  return Path(os.environ.get("SHUFFLENET_FASHION_MNIST_DIR", datasets.FASHION_MNIST_DIR))


def load_arrays(name: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
  """The dataset's four arrays (train/test images as uint8 NHWC, labels as int32)."""
  if name not in SUPPORTED:
    raise ValueError(f"data_on_device: dataset={name!r} is not held on the device; valid: "
                     f"{', '.join(SUPPORTED)} (use data_on_device=False for tf.data)")
  npz = Path(data_dir).expanduser() / f"{name}.npz" if data_dir else None
  if npz is not None and npz.exists():
    with np.load(npz) as f:
      out = {k: f[k] for k in _IDX}
  else:
    root = idx_dir()
    paths = {}
    for key, stem in _IDX.items():
      found = [root / f"{stem}{ext}" for ext in (".gz", "") if (root / f"{stem}{ext}").exists()]
      if not found:
        where = f"{npz} or {root}" if npz is not None else str(root)
        raise datasets.DatasetUnavailableError(
            f"Fashion-MNIST not found in {where} (missing {stem}[.gz]). "
            f"{datasets.dataset_spec(name).how_to_get} Or point "
            f"$SHUFFLENET_FASHION_MNIST_DIR at the IDX files.")
      paths[key] = found[0]
    out = {k: _read_idx(p) for k, p in paths.items()}
  for k in ("train_images", "test_images"):
    if out[k].ndim == 3:
      out[k] = out[k][..., None]
  for k in ("train_labels", "test_labels"):
    out[k] = out[k].astype(np.int32)
  return out


def _slice(split_name: str, n: int) -> slice:
  """tfds-style ``name[a:b]`` (examples or percent) -> a slice of n examples."""
  m = re.fullmatch(r"\w+(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?", split_name)
  if not m:
    raise ValueError(f"split {split_name!r}; valid: train, test or a slice such as "
                     f"train[:2000] or test[50%:]")
  lo, lo_pct, hi, hi_pct = m.groups()
  conv = lambda v, pct: None if v in (None, "") else (int(v) * n // 100 if pct else int(v))  # noqa: E731
  return slice(conv(lo, lo_pct), conv(hi, hi_pct))


def splits(config) -> tuple[Split, Split]:
  """(train, eval) arrays of the run's splits (``train_split`` / ``eval_split``)."""
  arrays = load_arrays(config.dataset, config.get("data_dir"))
  out = []
  for name in datasets.splits(config):
    base = name.split("[")[0]
    if base not in ("train", "test"):
      raise ValueError(f"split {name!r}: {config.dataset} has the splits train and test")
    sl = _slice(name, len(arrays[f"{base}_labels"]))
    out.append(Split(arrays[f"{base}_images"][sl], arrays[f"{base}_labels"][sl]))
  if len(out[0].labels) < config.batch_size:
    raise ValueError(f"batch_size={config.batch_size} is larger than the training split "
                     f"({len(out[0].labels)} examples of {datasets.splits(config)[0]!r})")
  return out[0], out[1]


def check_config(config) -> None:
  """The augmentation settings the on-device pipeline implements, or a ValueError."""
  if config.augment != "pad_crop_flip":
    raise ValueError(f"augment={config.augment!r} with data_on_device; valid: pad_crop_flip "
                     "(random_resized_crop runs in the tf.data pipeline)")
  if config.crop_padding < 0:
    raise ValueError(f"crop_padding={config.crop_padding}; valid: an integer >= 0")


def normalize(images, spec: datasets.DatasetSpec):
  """uint8 images -> float32, normalized with the dataset's mean and std."""
  x = images.astype(jnp.float32) / 255.0
  return (x - jnp.asarray(spec.mean, jnp.float32)) / jnp.asarray(spec.std, jnp.float32)


def make_train_batch(config, num_examples: int):
  """``batch(images, labels, seed, step) -> {"image", "label"}``: the step's augmented,
  normalized batch, traced inside the jitted step (seed and step may be traced)."""
  check_config(config)
  spec = datasets.dataset_spec(config.dataset)
  b, pad, size = config.batch_size, int(config.crop_padding), int(config.image_size)
  steps_per_epoch = num_examples // b

  def batch(images, labels, seed, step):
    key = jax.random.key(seed)
    perm = jax.random.permutation(jax.random.fold_in(key, step // steps_per_epoch),
                                  num_examples)
    idx = jax.lax.dynamic_slice_in_dim(perm, (step % steps_per_epoch) * b, b)
    x = jnp.take(images, idx, axis=0)
    if x.shape[1] != size:
      raise ValueError(f"image_size={size} with data_on_device: the images are "
                       f"{x.shape[1]}x{x.shape[2]} (no resizing on the device)")
    aug = jax.random.fold_in(key, _AUG_STREAM + step)
    keys = jax.vmap(lambda i: jax.random.fold_in(aug, i))(jnp.arange(b))
    offsets = jax.vmap(lambda k: jax.random.randint(k, (2,), 0, 2 * pad + 1))(keys)
    flips = jax.vmap(lambda k: jax.random.bernoulli(jax.random.fold_in(k, 1)))(keys)
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0),
                                                     (size, size, im.shape[-1])))(x, offsets)
    x = jnp.where(flips[:, None, None, None], x[:, :, ::-1], x)
    return {"image": normalize(x, spec), "label": jnp.take(labels, idx, axis=0)}
  return batch


def eval_batches(split: Split, batch_size: int):
  """The eval split as (images uint8, labels, mask) stacked into [num_batches, batch, ...],
  padded with mask 0: every example counted once."""
  n = len(split.labels)
  nb = -(-n // batch_size)
  pad = nb * batch_size - n
  images = np.concatenate([split.images, np.zeros((pad,) + split.images.shape[1:], np.uint8)])
  labels = np.concatenate([split.labels, np.zeros((pad,), np.int32)])
  mask = np.concatenate([np.ones((n,), np.float32), np.zeros((pad,), np.float32)])
  shape = lambda a: a.reshape((nb, batch_size) + a.shape[1:])  # noqa: E731
  return shape(images), shape(labels), shape(mask)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog="python -m shufflenet_jax.device_data",
                               description="Write <out>/fashion_mnist.npz from the IDX files "
                               "(for a machine without them: copy the .npz and pass "
                               "--config.data_dir=<its directory>).")
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  try:
    arrays = load_arrays("fashion_mnist")
  except (ValueError, datasets.DatasetUnavailableError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(out / "fashion_mnist.npz", **arrays)
  print(out / "fashion_mnist.npz")
  return 0


if __name__ == "__main__":
  sys.exit(main())
