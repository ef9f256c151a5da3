"""tensorflow-datasets -> augmented, per-process batches (NHWC float32, normalized).

Determinism: the training stream is a pure function of (config.seed, step). Shuffling uses
a fixed seed, every augmentation draws from stateless RNG ops keyed on (seed, the example's
position in the stream), and resuming at step k skips k * batch examples *before* the
augmentation, so a resumed run sees exactly the batches an uninterrupted one would.

Evaluation is padded and masked: every example of the split is counted exactly once, on
any number of processes, and every process runs the same number of eval batches.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import math
import os
import shutil
from pathlib import Path

import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification.mnist import FashionMNIST

# The datasets' facts live in the TensorFlow-free module (device_data reads them too).
from shufflenet_jax.datasets import (  # noqa: E402,F401
    DATASETS, FASHION_MNIST_DIR, INPUT_NORMS, DatasetSpec, DatasetUnavailableError,
    dataset_spec, splits)


class _FashionMnistFromDebian(FashionMNIST, skip_registration=True):
  """tfds's own fashion_mnist builder, fed the distribution's IDX files instead of a
  download. It prepares the very dataset `tfds.builder('fashion_mnist')` reads."""

  name = "fashion_mnist"

  def _split_generators(self, dl_manager):
    out = Path(self.data_dir).parent.parent / "downloads" / "fashion_mnist_debian"
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, stem in (("train_data", "train-images-idx3-ubyte"),
                      ("train_labels", "train-labels-idx1-ubyte"),
                      ("test_data", "t10k-images-idx3-ubyte"),
                      ("test_labels", "t10k-labels-idx1-ubyte")):
      with gzip.open(FASHION_MNIST_DIR / f"{stem}.gz") as src, open(out / stem, "wb") as dst:
        shutil.copyfileobj(src, dst)
      files[key] = str(out / stem)
    return [
        tfds.core.SplitGenerator(name=tfds.Split.TRAIN, gen_kwargs=dict(
            num_examples=60000, data_path=files["train_data"], label_path=files["train_labels"])),
        tfds.core.SplitGenerator(name=tfds.Split.TEST, gen_kwargs=dict(
            num_examples=10000, data_path=files["test_data"], label_path=files["test_labels"])),
    ]


@contextlib.contextmanager
def prepare_lock(builder: tfds.core.DatasetBuilder):
  """An exclusive lock on preparing ``builder``'s dataset in its data dir (a file lock, so
  it holds across processes: sweep workers or hosts started together on a machine where the
  dataset is not yet prepared). tfds itself does not lock: two concurrent preparations
  write the same download files and race to rename their output into place."""
  root = Path(builder.data_dir).parent.parent  # <data_dir>/<name>[/<config>]/<version>
  root.mkdir(parents=True, exist_ok=True)
  with open(root / f".{builder.name}.prepare.lock", "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def get_builder(config) -> tfds.core.DatasetBuilder:
  """The prepared tfds builder for ``config.dataset`` in ``config.data_dir``.

  Fashion-MNIST is prepared once from the distribution's files. Other datasets are used
  as prepared, or, with ``config.download=True``, prepared by tfds (downloading, or from
  the manual dir for ImageNet). Raises DatasetUnavailableError, saying how to get the
  data, when it is missing.
  """
  spec = dataset_spec(config.dataset)
  data_dir = config.get("data_dir")
  builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
  if builder.is_prepared():
    return builder
  where = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
  fresh = lambda: tfds.builder(spec.tfds_name, data_dir=data_dir)  # noqa: E731
  if config.dataset == "fashion_mnist" and (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
    with prepare_lock(builder):
      if not fresh().is_prepared():  # another process may have prepared it meanwhile
        _FashionMnistFromDebian(data_dir=data_dir).download_and_prepare()
    return fresh()
  if config.get("download", False):
    try:
      with prepare_lock(builder):
        if not (prepared := fresh()).is_prepared():
          prepared.download_and_prepare()
      return prepared
    except Exception as e:  # noqa: BLE001 - tfds raises many kinds; the advice is the same
      raise DatasetUnavailableError(
          f"could not prepare {spec.tfds_name} in {where} ({type(e).__name__}: {e}). "
          f"{spec.how_to_get}") from e
  raise DatasetUnavailableError(
      f"dataset {config.dataset!r} ({spec.tfds_name}) is not prepared in {where}. "
      f"{spec.how_to_get} (or pass --config.download=True to let tfds prepare it)")


# ---------------------------------------------------------------------------- preprocessing

def _normalize(image, spec: DatasetSpec, norm: str = "mean_std"):
  image = tf.cast(image, tf.float32)
  if norm == "bgr_0_255":
    return image[..., ::-1]
  return (image / 255.0 - tf.constant(spec.mean)) / tf.constant(spec.std)


def _random_resized_crop(image_bytes, seed, size, area_range):
  """Inception-style crop (area range, aspect 3/4..4/3) from the encoded image, resized."""
  shape = tf.io.extract_jpeg_shape(image_bytes) if image_bytes.dtype == tf.string else tf.shape(image_bytes)
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, tf.zeros([1, 0, 4], tf.float32), seed=seed, min_object_covered=0.0,
      aspect_ratio_range=(3 / 4, 4 / 3), area_range=area_range, max_attempts=10,
      use_image_if_no_bounding_boxes=True)
  if image_bytes.dtype == tf.string:
    y, x, _ = tf.unstack(begin)
    h, w, _ = tf.unstack(crop_size)
    image = tf.image.decode_and_crop_jpeg(image_bytes, tf.stack([y, x, h, w]), channels=3)
  else:
    image = tf.slice(image_bytes, begin, crop_size)
  return tf.image.resize(image, [size, size], method="bicubic")


def _center_crop(image_bytes, size, resize, method="bicubic"):
  """The short side resized to ``resize`` (``method``: datasets.EVAL_RESIZE_METHODS), then
  the central ``size`` x ``size`` crop."""
  image = (tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
           if image_bytes.dtype == tf.string else image_bytes)
  shape = tf.shape(image)
  scale = resize / tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
  new_hw = tf.cast(tf.round(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
  antialias = method.endswith("_antialias")
  image = tf.image.resize(image, new_hw, method=method.removesuffix("_antialias"),
                          antialias=antialias)
  top, left = (new_hw[0] - size) // 2, (new_hw[1] - size) // 2
  return image[top:top + size, left:left + size]


def _train_preprocess(config, spec: DatasetSpec, seed: int):
  size = config.image_size

  def fn(index, example):
    rng = tf.random.experimental.stateless_split(
        tf.stack([tf.constant(seed, tf.int64), index]), 3)
    image = example["image"]
    if config.augment == "pad_crop_flip":
      pad = config.crop_padding
      image = tf.cast(image, tf.float32)
      if image.shape[0] != size:
        image = tf.image.resize(image, [size, size])
      image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
      image = tf.image.stateless_random_crop(image, [size, size, spec.channels], seed=rng[0])
    elif config.augment == "random_resized_crop":
      image = _random_resized_crop(image, rng[0], size, tuple(config.crop_area))
    else:
      raise ValueError(f"augment={config.augment!r}; valid: pad_crop_flip, random_resized_crop")
    image = tf.image.stateless_random_flip_left_right(image, seed=rng[1])
    image = tf.reshape(image, [size, size, spec.channels])
    return {"image": _normalize(image, spec, config.get("input_norm", "mean_std")),
            "label": example["label"]}
  return fn


def _eval_preprocess(config, spec: DatasetSpec):
  size = config.image_size

  def fn(example):
    image = example["image"]
    if config.augment == "random_resized_crop":
      image = _center_crop(image, size, config.eval_resize,
                           config.get("eval_resize_method", "bicubic"))
    elif image.shape[0] != size:
      image = tf.image.resize(image, [size, size])
    image = tf.reshape(tf.cast(image, tf.float32), [size, size, spec.channels])
    return {"image": _normalize(image, spec, config.get("input_norm", "mean_std")),
            "label": example["label"], "mask": tf.constant(1.0)}
  return fn


def _decoders(config):
  # For crops of large JPEGs, decode only the crop (tfds SkipDecoding + decode_and_crop).
  if config.augment == "random_resized_crop":
    return {"image": tfds.decode.SkipDecoding()}
  return None


def _options():
  options = tf.data.Options()
  options.deterministic = True
  options.threading.private_threadpool_size = max(2, os.cpu_count() or 2)
  # No autotuning: the parallel maps then run on the private pool's threads (all cores),
  # and deleting an iterator no longer waits up to ~7 s for the autotuner's thread (every
  # evaluation and every tf.data run's end; docs/performance.md).
  options.autotune.enabled = False
  return options


def batch_rows(rows: tuple[int, int] | None, batch_size: int) -> tuple[int, int]:
  """(start, stop) of the rows of each global batch this process feeds; ``None``: all."""
  start, stop = rows if rows is not None else (0, batch_size)
  if not 0 <= start < stop <= batch_size:
    raise ValueError(f"rows={rows} is not a slice of a batch of {batch_size}")
  return start, stop


def _take_rows(ds: tf.data.Dataset, rows: tuple[int, int], batch_size: int) -> tf.data.Dataset:
  """Of an enumerated stream of examples, this process's rows of each global batch.

  Multi-process runs: every process reads the same global stream (the same order and
  augmentation whatever the process count) and decodes only its own rows, so N processes x
  1 device train on exactly the batches of 1 process x N devices."""
  start, stop = rows
  if (start, stop) == (0, batch_size):
    return ds
  return ds.filter(lambda n, _: tf.logical_and(n % batch_size >= start,
                                               n % batch_size < stop))


def train_dataset(config, *, start_step: int = 0,
                  rows: tuple[int, int] | None = None) -> tf.data.Dataset:
  """Infinite stream of the global batches of ``config.batch_size`` from ``start_step`` on,
  or of their ``rows`` (start, stop) only (this process's share in a multi-process run)."""
  spec = dataset_spec(config.dataset)
  builder = get_builder(config)
  rows = batch_rows(rows, config.batch_size)
  ds = builder.as_dataset(split=splits(config)[0], shuffle_files=False,
                          decoders=_decoders(config),
                          read_config=tfds.ReadConfig(shuffle_seed=config.seed))
  if config.get("cache", True):
    ds = ds.cache()
  if config.get("exact_epochs", False):  # every example once per epoch (configs/default.py)
    ds = ds.shuffle(config.shuffle_buffer, seed=config.seed,
                    reshuffle_each_iteration=True).repeat()
  else:
    ds = ds.repeat().shuffle(config.shuffle_buffer, seed=config.seed,
                             reshuffle_each_iteration=True)
  ds = ds.enumerate().skip(start_step * config.batch_size)
  ds = _take_rows(ds, rows, config.batch_size)
  ds = ds.map(_train_preprocess(config, spec, config.seed), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(rows[1] - rows[0], drop_remainder=True).prefetch(2)
  return ds.with_options(_options())


def eval_dataset(config, *, rows: tuple[int, int] | None = None):
  """(dataset, number of batches): the eval split padded with mask=0 examples to whole
  batches of ``config.eval_batch_size``, or those batches' ``rows`` (this process's share);
  every process gets the same number of batches."""
  spec = dataset_spec(config.dataset)
  builder = get_builder(config)
  batch = config.eval_batch_size
  rows = batch_rows(rows, batch)
  eval_split = splits(config)[1]
  ds = builder.as_dataset(split=eval_split, shuffle_files=False, decoders=_decoders(config))
  try:
    num_examples = builder.info.splits[eval_split].num_examples
  except KeyError:  # no split metadata (tfds.testing.mock_data): count them
    num_examples = int(ds.reduce(0, lambda n, _: n + 1))
  num_batches = math.ceil(num_examples / batch)
  # This process's real examples (only those are decoded), then padding to whole batches.
  start, stop = rows
  full, rest = divmod(num_examples, batch)
  mine = full * (stop - start) + max(0, min(rest, stop) - start)
  ds = _take_rows(ds.enumerate(), rows, batch).map(lambda n, example: example)
  ds = ds.map(_eval_preprocess(config, spec), num_parallel_calls=tf.data.AUTOTUNE)
  pad = tf.data.Dataset.from_tensors({
      "image": tf.zeros([config.image_size, config.image_size, spec.channels], tf.float32),
      "label": tf.constant(0, tf.int64), "mask": tf.constant(0.0)}).repeat()
  ds = ds.concatenate(pad.take(num_batches * (stop - start) - mine))
  ds = ds.batch(rows[1] - rows[0], drop_remainder=True)
  if config.get("cache", True):
    ds = ds.cache()
  return ds.prefetch(2).with_options(_options()), num_batches
