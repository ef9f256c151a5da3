"""One validation pass over a run's or a sweep's config and workdir, before TensorFlow,
tfds or a dataset is touched (main.py calls it first): every invalid value is a
``ValueError`` whose one line names the setting, the value and what is valid.

Only light imports here (the model catalog, not the models: no JAX, Flax or TensorFlow),
so a bad command line fails in about a second.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from shufflenet_jax import catalog, datasets

AUGMENTS = ("pad_crop_flip", "random_resized_crop")
DTYPES = ("float32", "bfloat16", "float64")
WANDB_MODES = ("auto", "online", "offline", "disabled")
STEM_STRIDE = {"small": 8, "imagenet": 32}  # a ShuffleNet's total downsampling per stem
# The train splits' sizes (tfds catalog), to check a batch against a sliced split.
TRAIN_EXAMPLES = {"fashion_mnist": 60_000, "cifar10": 50_000, "imagenette": 9_469,
                  "imagenet2012": 1_281_167}


def _fail(name: str, value, valid: str) -> None:
  raise ValueError(f"{name}={value!r}; valid: {valid}")


def _number(config, name: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, integer: bool = False,
            prefix: str = "") -> None:
  value = config.get(name)
  kind = "an integer" if integer else "a number"
  if low is not None and high is not None:
    valid = f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
  elif low is not None:
    valid = f"{kind} {'>' if low_open else '>='} {low:g}"
  elif high is not None:
    valid = f"{kind} {'<' if high_open else '<='} {high:g}"
  else:
    valid = kind
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
      value) or (integer and not float(value).is_integer()):
    _fail(prefix + name, value, valid)
  if ((low is not None and (value < low or (low_open and value == low)))
      or (high is not None and (value > high or (high_open and value == high)))):
    _fail(prefix + name, value, valid)


def _choice(config, name: str, valid, prefix: str = "") -> None:
  value = config.get(name)
  if value not in valid:
    _fail(prefix + name, value, ", ".join(map(str, valid)))


def _split_size(split: str, total: int) -> int | None:
  """The number of examples of a tfds split string such as ``train[:1024]`` or
  ``train[10%:]`` given the split's ``total``; None where it cannot tell."""
  m = re.fullmatch(r"\w+(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?", split.replace(" ", ""))
  if not m:
    return None
  if m.group(1) is None:
    return total

  def bound(text, pct, default):
    if text == "":
      return default
    v = int(text)
    v = round(v * total / 100) if pct else v
    return max(0, min(total, v + total if v < 0 else v))
  return max(0, bound(m.group(3), m.group(4), total) - bound(m.group(1), m.group(2), 0))


def check_config(config) -> None:
  """Raises ``ValueError`` (one line) for the first invalid setting of a run config."""
  try:
    preset = catalog.preset(config.model)
  except ValueError as e:
    raise ValueError(f"model: {e}") from None
  try:
    spec = datasets.dataset_spec(config.dataset)
  except (ValueError, KeyError) as e:
    raise ValueError(f"dataset: {e}") from None
  _choice(config, "augment", AUGMENTS)
  if "input_norm" in config:
    _choice(config, "input_norm", datasets.INPUT_NORMS)
  if "eval_resize_method" in config:
    _choice(config, "eval_resize_method", datasets.EVAL_RESIZE_METHODS)
  if config.get("eval_only", False):
    source = Path(str(config.get("init_from", "")))
    if not str(config.get("init_from", "")) or not (source / "config.json").is_file() or not (
        source / "checkpoints").is_dir():
      _fail("init_from", config.get("init_from", ""), "a run directory with config.json and "
            "checkpoints/ (a training run, or python -m shufflenet_jax.convert's output)")
  _choice(config, "dtype", DTYPES)
  if not isinstance(config.get("exact_epochs", False), bool):
    _fail("exact_epochs", config.exact_epochs, "True or False")
  _choice(config, "pointwise_impl", ("auto",) + catalog.POINTWISE_IMPLS)
  _choice(config, "depthwise_impl", ("auto",) + catalog.DEPTHWISE_IMPLS)
  _choice(config, "pool_impl", ("auto",) + catalog.POOL_IMPLS)
  if str(config.get("materialize_units", "auto")).lower() not in ("auto", "true", "false",
                                                                   "1", "0"):
    _fail("materialize_units", config.materialize_units, "auto, True, False")
  if "wandb" in config:
    _choice(config.wandb, "mode", WANDB_MODES, prefix="wandb.")
  for name in ("batch_size", "eval_batch_size", "log_every_steps", "checkpoint_every_steps",
               "lr_reference_batch", "shuffle_buffer", "image_size"):
    _number(config, name, low=1, integer=True)
  for name in ("warmup_steps", "crop_padding"):
    _number(config, name, low=0, integer=True)
  _number(config, "eval_every_steps", integer=True)  # <= 0: only at the end
  _number(config, "num_train_steps", integer=True)
  if config.num_train_steps == 0 or (config.num_train_steps < 0 and config.num_train_steps != -1):
    _fail("num_train_steps", config.num_train_steps, "a positive step count, or -1 to train "
          "num_epochs")
  if config.num_train_steps < 0:
    _number(config, "num_epochs", low=0, low_open=True)
  _number(config, "learning_rate", low=0, low_open=True)
  _number(config, "weight_decay", low=0)
  _number(config, "momentum", low=0, high=1, high_open=True)
  _number(config, "label_smoothing", low=0, high=1, high_open=True)
  _number(config, "classifier_lr_scale", low=0)
  _number(config, "seed", low=0, integer=True)
  if config.augment == "random_resized_crop":
    area = tuple(config.get("crop_area", ()))
    if len(area) != 2 or not 0 < area[0] <= area[1] <= 1:
      _fail("crop_area", area, "(low, high) with 0 < low <= high <= 1")
    _number(config, "eval_resize", low=config.image_size, integer=True)
  model_kwargs = config.get("model_kwargs") or {}
  for name, valid in (("shuffle_order", catalog.SHUFFLE_ORDERS),
                      ("concat_order", catalog.CONCAT_ORDERS), ("classifier_bias", (True, False))):
    if name in model_kwargs and model_kwargs[name] not in valid:
      _fail(f"model_kwargs.{name}", model_kwargs[name], ", ".join(map(str, valid)))
  stem = model_kwargs.get("stem", preset.get("stem", "imagenet"))
  if stem in STEM_STRIDE and config.image_size < STEM_STRIDE[stem]:
    _fail("image_size", config.image_size, f">= {STEM_STRIDE[stem]} with the {stem!r} stem "
          f"(it downsamples {STEM_STRIDE[stem]}x)" + (
              "; for small images use --config.model_kwargs.stem=small" if stem != "small"
              else ""))
  if config.get("data_on_device", False) and config.dataset != "fashion_mnist":
    _fail("data_on_device", True, f"False for dataset {config.dataset!r} (only fashion_mnist "
          "lives on the device)")
  _number(config, "seeds_per_program", low=1, integer=True)
  if config.seeds_per_program > 1 and not config.get("data_on_device", False):
    _fail("seeds_per_program", config.seeds_per_program, "1 unless data_on_device=True (the "
          "vmapped seeds draw their batches on the device)")
  train_total = TRAIN_EXAMPLES.get(config.dataset)
  split = config.get("train_split") or spec.train_split
  if train_total and split:
    n = _split_size(split, train_total)
    if n is not None and n < config.batch_size:
      _fail("batch_size", config.batch_size, f"at most the {n} examples of train_split="
            f"{split!r}")
  if model_kwargs:  # last: it imports the models (jax, flax), the checks above do not
    from shufflenet_jax.models import registry
    accepted = registry.model_arguments(config.model)
    unknown = sorted(set(model_kwargs) - accepted) if accepted is not None else []
    if unknown:  # every key an argument of the model's constructor
      _fail(f"model_kwargs.{unknown[0]}", model_kwargs[unknown[0]],
            f"an argument of {config.model}: {', '.join(sorted(accepted))}")


def check_sweep(config, table_sweeps) -> None:
  """A sweep's own settings (its runs' settings: ``check_config`` on each)."""
  name = config.get("sweep_name")
  if name not in table_sweeps:
    _fail("sweep_name", name, f"a sweep with a table builder: {', '.join(table_sweeps)}")
  seeds = list(config.get("seeds", ()))
  if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
    _fail("seeds", tuple(seeds), "a non-empty tuple of integers >= 0, e.g. '(0,1,2)'")
  if len(set(seeds)) != len(seeds):
    _fail("seeds", tuple(seeds), "distinct seeds")


def check_workdir(workdir: str | os.PathLike | None) -> None:
  """The workdir can be created (or exists as a directory) and written."""
  if workdir is None:
    return
  path = Path(workdir)
  if path.exists() and not path.is_dir():
    raise ValueError(f"--workdir={workdir}: exists and is not a directory")
  probe = path
  while not probe.exists():
    probe = probe.parent
  if not probe.is_dir():
    raise ValueError(f"--workdir={workdir}: {probe} is a file, so the directory cannot be "
                     f"created")
  if not os.access(probe, os.W_OK | os.X_OK):
    raise ValueError(f"--workdir={workdir}: {probe} is not writable")


RECORD_FILES = ("config.json", "metrics.jsonl", "result.json")
# Settings a resumed run may change: where it logs and how its seeds are batched together.
RESUMABLE_CHANGES = ("wandb", "seeds_per_program", "data_dir", "download", "cache")


def config_differences(stored: dict, config) -> list[str]:
  """``key: stored -> now`` for each setting of ``config`` that differs from ``stored`` (a
  run's config.json). Settings absent from ``stored`` (added to the code since) and
  ``RESUMABLE_CHANGES`` are not compared."""
  now = json.loads(config.to_json_best_effort())
  return [f"{k}={stored[k]!r} there, {now[k]!r} now" for k in sorted(now)
          if k in stored and k not in RESUMABLE_CHANGES and stored[k] != now[k]]


def check_run_workdir(config, workdir: str | os.PathLike, compare: bool = True) -> None:
  """A run's workdir as a resume finds it: its records are files that parse, its
  checkpoints a directory, and (``compare``) its config.json the settings of ``config``.
  Each problem is one line naming the file and how to recover; nothing is changed."""
  path = Path(workdir)
  if not path.is_dir():
    return  # a new run (check_workdir: it can be created)
  for name in RECORD_FILES:
    if (path / name).exists() and not (path / name).is_file():
      raise ValueError(f"{path / name} is not a file: move it out of the way to resume the run "
                       f"(it is written by the run)")
  if (path / "checkpoints").exists() and not (path / "checkpoints").is_dir():
    raise ValueError(f"{path / 'checkpoints'} is not a directory: move it out of the way (the "
                     f"run then trains again from step 0)")
  for name in ("config.json", "result.json"):
    if (path / name).is_file():
      try:
        record = json.loads((path / name).read_text())
        if not isinstance(record, dict):
          raise ValueError("not a JSON object")
      except (ValueError, UnicodeDecodeError) as e:
        how = ("delete it to resume with this command line's settings" if name == "config.json"
               else "delete it to finish the run again from its newest checkpoint")
        raise ValueError(f"{path / name} cannot be read ({str(e).splitlines()[0]}): {how}, or "
                         f"use another --workdir") from None
      if name == "config.json" and compare:
        differ = config_differences(record, config)
        if differ:
          raise ValueError(f"{path / name} records other settings than this command line's "
                           f"({'; '.join(differ[:3])}{'; ...' if len(differ) > 3 else ''}): "
                           f"run with that run's settings to resume it, or use another "
                           f"--workdir")
