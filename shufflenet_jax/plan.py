"""A run's plan: what a run is, resolved and validated once from its ConfigDict.

The ConfigDict stays what the user wrote (it is recorded as config.json and read by the
input pipeline); every fact the trainer, the seed groups, export and the complexity
counter derive from it is derived here, once (docs/design.md section 2):

  config -> validate.check_config -> Plan(model + constructor arguments, dataset spec,
  layer implementations with `auto` resolved for the platform and device count, schedule,
  optimizer, budget) -> train / seed_group / export / complexity
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from shufflenet_jax import datasets, validate
from shufflenet_jax.models import registry

# The layer implementations a config chooses (each 'auto' or a name; models/ops.py).
IMPL_KEYS = ("pointwise_impl", "depthwise_impl", "pool_impl", "materialize_units")


# Config fields that do not enter a train or eval step's program: runs that differ only in
# these share the exported steps (aot.py). The seed enters a seed group's step as an
# argument; the split sizes enter through total_steps.
_NOT_IN_PROGRAM = frozenset({
    "seed", "seeds", "seeds_per_program", "wandb", "log_every_steps", "eval_every_steps",
    "checkpoint_every_steps", "init_from", "train_split", "eval_split", "shuffle_buffer",
    "exact_epochs", "cache"})


@dataclasses.dataclass(frozen=True)
class Plan:
  """One run, resolved. ``total_steps`` is None when the training split's size was not
  given (enough to build the model; the schedule needs it)."""
  config: Any                 # the ml_collections.ConfigDict, as given
  model: str
  model_kwargs: dict          # architecture: classes, channels, config.model_kwargs, ...
  impls: dict                 # every layer implementation, 'auto' resolved
  dtype: str                  # compute dtype: float32, bfloat16, float64
  dataset: datasets.DatasetSpec
  image_size: int
  seed: int
  batch_size: int
  eval_batch_size: int
  total_steps: int | None
  peak_learning_rate: float   # learning_rate scaled by batch_size / lr_reference_batch
  warmup_steps: int
  weight_decay: float
  momentum: float
  classifier_lr_scale: float
  label_smoothing: float
  log_every_steps: int
  eval_every_steps: int       # <= 0: only at the end
  checkpoint_every_steps: int

  def program_key(self) -> dict:
    """What decides a step's program beyond its argument shapes (aot.py's key): the
    configuration but its data, logging and bookkeeping fields, the implementations as
    resolved, the step budget (the schedule's constants)."""
    config = {k: v for k, v in self.config.to_dict().items() if k not in _NOT_IN_PROGRAM}
    return dict(config=config, impls=self.impls, total_steps=self.total_steps)

  @property
  def resolution(self) -> tuple[int, int]:
    return (self.image_size, self.image_size)

  def constructor_kwargs(self) -> dict[str, Any]:
    """The model constructor's arguments but ``rngs`` and ``dtype``: the architecture and
    the implementations the model accepts."""
    accepted = registry.model_arguments(self.model)
    impls = {k: v for k, v in self.impls.items() if accepted is None or k in accepted}
    return {**impls, **self.model_kwargs}


def make(config, *, num_train_examples: int | None = None, devices: int | None = None,
         check: bool = True) -> Plan:
  """The plan of ``config``: validated (validate.check_config, one-line ValueError), the
  implementations resolved for ``devices`` devices (default: all), the step budget from
  ``num_train_examples`` when the config counts epochs."""
  if check:
    validate.check_config(config)
  if config.dtype == "float64":
    import jax
    if not jax.config.jax_enable_x64:
      raise ValueError("dtype='float64' needs jax_enable_x64 (JAX_ENABLE_X64=1)")
  total = None
  if config.get("num_train_steps", -1) > 0:
    total = int(config.num_train_steps)
  elif num_train_examples is not None:
    total = int(math.ceil(config.num_epochs * num_train_examples / config.batch_size))
  return Plan(
      config=config, model=config.model, model_kwargs=model_kwargs(config),
      impls=resolve_impls(config, devices), dtype=config.dtype,
      dataset=datasets.dataset_spec(config.dataset), image_size=int(config.image_size),
      seed=int(config.seed), batch_size=int(config.batch_size),
      eval_batch_size=int(config.eval_batch_size), total_steps=total,
      peak_learning_rate=config.learning_rate * config.batch_size / config.lr_reference_batch,
      warmup_steps=int(config.warmup_steps), weight_decay=float(config.weight_decay),
      momentum=float(config.momentum),
      classifier_lr_scale=float(config.get("classifier_lr_scale", 1.0)),
      label_smoothing=float(config.label_smoothing),
      log_every_steps=int(config.log_every_steps), eval_every_steps=int(config.eval_every_steps),
      checkpoint_every_steps=int(config.checkpoint_every_steps))


def resolve_impls(config, devices: int | None = None) -> dict:
  """'auto' picks the fastest verified implementation for the platform (docs/design.md
  section 7) and the number of ``devices`` the batch is split over (default: all)."""
  import jax
  platform = jax.default_backend()
  # CPU: matmul (grouped 1x1 convs as g GEMMs) + shiftvjp (shifted windows, the weight
  # gradient recomputing them in cache) trains ShuffleNet fastest on tcmalloc
  # (results/bench_train.md; shufflenet_jax/malloc.py). groupmajor was 1.23x faster than
  # matmul when every step also page-faulted on glibc.
  # Also on CPU: the stride-2 units' average pool as shifted windows with a separable
  # gradient, and every unit's output stored once (models/ops.py materialize); each measured side
  # by side in benchmarks.bench_train.
  # Several devices: only implementations whose sharded train step gathers no batch-sized
  # activation (shufflenet_jax/hlo_check.py, tests/test_distributed.py). shiftvjp's weight
  # gradient slices the batch in a loop (every device would redo the whole batch) and XLA
  # gathers around a grouped kxk convolution (ResNeXt's 3x3 with `lax`); the grouped 1x1
  # GEMMs (`matmul`) and the autodiff'd shifted windows (`shift`) stay per device.
  cpu = platform == "cpu"
  multi = (jax.device_count() if devices is None else devices) > 1
  auto = {"pointwise_impl": "matmul" if cpu or multi else "lax",
          "depthwise_impl": ("shift" if multi else "shiftvjp") if cpu else "lax",
          "pool_impl": "shift" if cpu else "window",
          "materialize_units": cpu}
  out = {k: auto[k] if config.get(k, "auto") == "auto" else config[k] for k in IMPL_KEYS}
  out["materialize_units"] = _as_bool("materialize_units", out["materialize_units"])
  return out


def _as_bool(name: str, value) -> bool:
  """A config switch given as a bool or (from the command line) a string."""
  if isinstance(value, bool):
    return value
  if str(value).lower() in ("true", "1"):
    return True
  if str(value).lower() in ("false", "0"):
    return False
  raise ValueError(f"{name}={value!r}; valid: auto, true, false")


def model_kwargs(config) -> dict[str, Any]:
  """The architecture arguments of the run: the dataset's classes and channels, then the
  config's ``model_kwargs`` (e.g. the stem)."""
  spec = datasets.dataset_spec(config.dataset)
  kwargs = dict(num_classes=spec.num_classes, in_channels=spec.channels)
  kwargs.update(config.model_kwargs.to_dict() if config.get("model_kwargs") else {})
  if config.get("zero_init_residual"):  # for the models that have it (ShuffleNet)
    accepted = registry.model_arguments(config.model)
    if accepted is None or "zero_init_residual" in accepted:
      kwargs["zero_init_residual"] = True
  return kwargs
