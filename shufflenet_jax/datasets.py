"""The datasets' facts (classes, channels, splits, normalization, how to get them), with no
TensorFlow import: the tf.data pipeline (input_pipeline.py) and the on-device pipeline
(device_data.py) both read them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetUnavailableError(RuntimeError):
  """The dataset is not on this machine; the message says how to get it."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  tfds_name: str
  num_classes: int
  channels: int
  train_split: str
  eval_split: str
  mean: tuple[float, ...]
  std: tuple[float, ...]
  how_to_get: str
  native_size: int = 224  # side of the images as stored (ImageNet-like: the eval crop)


# How images are scaled before the model (config.input_norm, default mean_std): the dataset's
# mean/std on [0, 1] values, or the official ShuffleNet release's BGR channels at 0-255.
INPUT_NORMS = ("mean_std", "bgr_0_255")
# How the eval path resizes before its center crop (config.eval_resize_method, default
# bicubic): tf.image's bicubic; bilinear as OpenCV's INTER_LINEAR (half-pixel centers, no
# antialiasing: the official release's evaluation); bilinear with antialiasing as PIL's
# (torchvision's Resize on PIL images: imgclsmob / pytorchcv's evaluation).
EVAL_RESIZE_METHODS = ("bicubic", "bilinear", "bilinear_antialias")

_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DATASETS = {
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", 10, 1, "train", "test", (0.2860,), (0.3530,),
        "On Debian/Ubuntu: `sudo apt-get update && sudo apt-get install "
        "dataset-fashion-mnist` (puts the IDX files in /usr/share/datasets/fashion-mnist; "
        "`make setup` does this). Elsewhere, with network access, tfds downloads it "
        "(`python -c \"import tensorflow_datasets as tfds; tfds.builder('fashion_mnist')"
        ".download_and_prepare()\"`).", native_size=28),
    "cifar10": DatasetSpec(
        "cifar10", 10, 3, "train", "test", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        "With network access: `python -c \"import tensorflow_datasets as tfds; "
        "tfds.builder('cifar10').download_and_prepare()\"`, or copy a prepared "
        "tensorflow_datasets/cifar10 directory into --config.data_dir.", native_size=32),
    "imagenette": DatasetSpec(
        "imagenette/full-size-v2", 10, 3, "train", "validation", _IMAGENET_MEAN, _IMAGENET_STD,
        "With network access: `python -c \"import tensorflow_datasets as tfds; "
        "tfds.builder('imagenette/full-size-v2').download_and_prepare()\"`."),
    "imagenet2012": DatasetSpec(
        "imagenet2012", 1000, 3, "train", "validation", _IMAGENET_MEAN, _IMAGENET_STD,
        "ImageNet needs a manual download: get ILSVRC2012_img_train.tar and "
        "ILSVRC2012_img_val.tar from image-net.org, put them in <data_dir>/downloads/manual/ "
        "and run `python -c \"import tensorflow_datasets as tfds; "
        "tfds.builder('imagenet2012', data_dir='<data_dir>').download_and_prepare()\"` "
        "(see the tfds imagenet2012 catalog page)."),
}


def splits(config) -> tuple[str, str]:
  """(train split, eval split): the dataset's, unless the config names tfds slices
  (e.g. ``train[:2000]``, for tests)."""
  spec = dataset_spec(config.dataset)
  return (config.get("train_split") or spec.train_split,
          config.get("eval_split") or spec.eval_split)


def dataset_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(f"dataset={name!r} is not supported; valid: {', '.join(DATASETS)}")
  return DATASETS[name]


