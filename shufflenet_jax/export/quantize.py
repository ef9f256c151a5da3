"""int8 calibration: real images to calibrate on, BN statistics for untrained models, and
activation ranges averaged over chunks of calibration images (the per-channel range
equalization is :mod:`shufflenet_jax.equalize`)."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from shufflenet_jax import input_pipeline

CALIBRATION_DATASET = "fashion_mnist"  # the offline dataset every machine here has


def calibrate_batch_stats(model: nnx.Module, images: np.ndarray) -> None:
  """Sets every BatchNorm's running statistics to the batch statistics of ``images``
  (layer by layer, in one train-mode pass), so an untrained model has the activation
  scale of a trained one: logits of order 1 for the float check, realistic ranges for
  int8 calibration. Leaves the model in eval mode."""
  bns = [m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)]
  saved = [bn.momentum for bn in bns]
  for bn in bns:
    bn.momentum = 0.0
  model.train()
  model(jnp.asarray(images))
  for bn, momentum in zip(bns, saved):
    bn.momentum = momentum
  model.eval()


def dataset_images(n: int, shape: tuple[int, int, int], *, dataset: str = CALIBRATION_DATASET,
                   data_dir: str | None = None, labels: bool = False, offset: int = 0,
                   input_norm: str = "mean_std"):
  """``n`` normalized images of the eval split (from ``offset``), resized to ``shape``
  (H, W, C) and tiled to C channels when the dataset has fewer (Fashion-MNIST images for an
  ImageNet-shaped timing model); ``input_norm`` as the model's (input_pipeline.INPUT_NORMS).
  With ``labels``: (images, labels)."""
  import tensorflow as tf
  spec = input_pipeline.dataset_spec(dataset)
  h, w, c = shape
  config = ml_collections.ConfigDict(dict(
      dataset=dataset, data_dir=data_dir, download=False, train_split="",
      eval_split=f"{spec.eval_split}[{offset}:{offset + n}]", image_size=input_pipeline.dataset_spec(dataset).native_size,
      augment="pad_crop_flip", eval_batch_size=n, cache=False, input_norm=input_norm))
  ds, _ = input_pipeline.eval_dataset(config)
  batch = next(ds.as_numpy_iterator())
  images = batch["image"][batch["mask"] > 0]
  if images.shape[1:3] != (h, w):
    images = tf.image.resize(images, (h, w)).numpy()
  if images.shape[-1] != c:
    if c % images.shape[-1]:
      raise ValueError(f"cannot tile {images.shape[-1]} channels to {c}")
    images = np.tile(images, (1, 1, 1, c // images.shape[-1]))
  images = images.astype(np.float32)
  return (images, batch["label"][batch["mask"] > 0]) if labels else images


def train_images(config, n: int, shape) -> np.ndarray:
  import tensorflow as tf
  spec = input_pipeline.dataset_spec(config.dataset)
  builder = input_pipeline.get_builder(config)
  ds = builder.as_dataset(split=f"{spec.train_split}[:{n}]", shuffle_files=False)
  images = np.stack([ex["image"] for ex in ds.as_numpy_iterator()]).astype(np.float32)
  if config.get("input_norm", "mean_std") == "bgr_0_255":
    images = images[..., ::-1]
  else:
    images = (images / 255.0 - np.asarray(spec.mean)) / np.asarray(spec.std)
  if images.shape[1:3] != shape[:2]:
    images = tf.image.resize(images, shape[:2]).numpy()
  return images.astype(np.float32)


def tensor_ranges(calibrated: bytes) -> dict[int, tuple[np.ndarray, np.ndarray]]:
  """{tensor index: (min, max)} of the calibration statistics in a calibrated model."""
  from tensorflow.lite.tools import flatbuffer_utils
  ranges = {}
  model = flatbuffer_utils.read_model_from_bytearray(calibrated)
  for i, tensor in enumerate(model.subgraphs[0].tensors):
    q = tensor.quantization
    if q is not None and q.min is not None and len(q.min):
      ranges[i] = (np.asarray(q.min, np.float32), np.asarray(q.max, np.float32))
  return ranges


def average_ranges(calibrated: bytes, chunks: list[list]) -> bytes:
  """``calibrated`` (a model carrying min/max calibration statistics) with every tensor's
  range replaced by the mean over ``chunks`` (each a list of converter samples) of that
  chunk's own min and max: the averaged min/max of quantization-aware training's range
  observers, which lets a value that only a few images reach saturate rather than widen
  the step for every image. Each range lies inside the min/max over all the samples."""
  from tensorflow.lite.python.optimize import calibrator
  from tensorflow.lite.tools import flatbuffer_utils
  per_chunk = [tensor_ranges(calibrator.Calibrator(calibrated).calibrate(lambda c=c: iter(c)))
               for c in chunks]
  model = flatbuffer_utils.read_model_from_bytearray(calibrated)
  for i in per_chunk[0]:
    q = model.subgraphs[0].tensors[i].quantization
    q.min = np.mean([r[i][0] for r in per_chunk], axis=0).astype(np.float32)
    q.max = np.mean([r[i][1] for r in per_chunk], axis=0).astype(np.float32)
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
