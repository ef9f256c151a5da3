"""train_and_evaluate(config, workdir): one training run, resumable, with its records.

The model is split once into a static graph definition and a pytree state
(params, BN statistics, optimizer state, step); one jitted pure step runs over a
``jax.sharding.Mesh`` with the batch sharded on the ``data`` axis and the state replicated,
so the same code runs on one CPU, several GPUs or many hosts.

Workdir layout (docs/design.md section 5): config.json, metrics.jsonl (one JSON object per logged
step), checkpoints/ (orbax), wandb/ (the mirror), result.json (on completion).
"""

from __future__ import annotations

import contextvars
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging
from flax import nnx

from shufflenet_jax import complexity, datasets
from shufflenet_jax import records, validate, workdir_lock
from shufflenet_jax.models import layers, registry
from shufflenet_jax.wandb_mirror import WandbMirror


class NonFiniteLossError(FloatingPointError):
  pass


# ------------------------------------------------------------------------------ set-up

def resolve_impls(config, devices: int | None = None) -> dict:
  """'auto' picks the fastest verified implementation for the platform (docs/design.md section 7)
  and the number of ``devices`` the batch is split over (default: all)."""
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
  out = {k: auto[k] if config.get(k, "auto") == "auto" else config[k] for k in auto}
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


def build_model(config, rngs: nnx.Rngs, devices: int | None = None) -> nnx.Module:
  """The run's model with its compute dtype and the layer implementations for the platform
  and the number of ``devices`` the batch is split over (default: all; resolve_impls)."""
  if config.dtype not in ("float32", "bfloat16", "float64"):
    raise ValueError(f"dtype={config.dtype!r}; valid: float32, bfloat16 (float64: numerical "
                     "tests, with jax_enable_x64)")
  if config.dtype == "float64" and not jax.config.jax_enable_x64:
    raise ValueError("dtype='float64' needs jax_enable_x64 (JAX_ENABLE_X64=1)")
  compute = {"bfloat16": jnp.bfloat16, "float64": jnp.float64}.get(config.dtype)
  accepted = registry.model_arguments(config.model)
  impls = {k: v for k, v in resolve_impls(config, devices).items()
           if accepted is None or k in accepted}
  return registry.create_model(
      config.model, rngs=rngs, dtype=compute,
      **impls, **model_kwargs(config))


def learning_rate_schedule(config, total_steps: int) -> optax.Schedule:
  """Linear warm-up (optional) then linear decay to 0 at the last step (paper Sec. 4)."""
  lr = config.learning_rate * config.batch_size / config.lr_reference_batch
  warmup = min(config.warmup_steps, total_steps)
  decay = optax.linear_schedule(lr, 0.0, max(total_steps - warmup, 1))
  if not warmup:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])


def classifier_labels(params) -> Any:
  """The params pytree labelled ``"classifier"`` (the models' last layer: the module named
  in ``layers.CLASSIFIER_NAMES`` that owns the kernel and bias) or ``"body"``."""
  def owner(path) -> Any:  # (..., module, "kernel" | "bias", .value)
    keys = [getattr(k, "key", getattr(k, "name", None)) for k in path]
    return keys[-3] if keys[-1] == "value" and len(keys) >= 3 else keys[-2]
  labels = jax.tree_util.tree_map_with_path(
      lambda path, _: "classifier" if owner(path) in layers.CLASSIFIER_NAMES else "body", params)
  if "classifier" not in jax.tree.leaves(labels):
    raise ValueError(f"classifier_lr_scale: the model has no classifier layer named one of "
                     f"{', '.join(layers.CLASSIFIER_NAMES)}")
  return labels


def make_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
  # Weight decay on kernels only (ndim > 1), not on BN scale/bias or FC bias (official
  # release); added to the gradient before momentum, as PyTorch's SGD does.
  kernels_only = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)

  def sgd(lr: optax.Schedule) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(config.weight_decay, mask=kernels_only),
                       optax.sgd(lr, momentum=config.momentum))

  scale = config.get("classifier_lr_scale", 1.0)
  if scale < 0:
    raise ValueError(f"classifier_lr_scale={scale}: must be >= 0 (1.0: the same lr as the "
                     f"rest of the network)")
  if scale == 1.0:
    return sgd(schedule)
  # Not the paper's: the classifier's lr is the schedule times ``scale`` (docs/training.md:
  # on 10 classes the FC's curvature ~ |pooled features|^2 / 10 makes plain SGD on
  # it unstable at the body's lr).
  return optax.multi_transform(
      {"body": sgd(schedule), "classifier": sgd(lambda step: scale * schedule(step))},
      classifier_labels)


def total_train_steps(config, num_train_examples: int) -> int:
  if config.get("num_train_steps", -1) > 0:
    return int(config.num_train_steps)
  return int(math.ceil(config.num_epochs * num_train_examples / config.batch_size))


def num_train_examples(config) -> int:
  """The size of the run's training split (the prepared dataset's metadata)."""
  from shufflenet_jax import input_pipeline  # TensorFlow: only the tf.data path needs it
  builder = input_pipeline.get_builder(config)
  return builder.info.splits[input_pipeline.splits(config)[0]].num_examples


class TrainSetup(NamedTuple):
  """What a run starts from: the model's graph definitions (train and eval mode), the
  initial state pytree, the learning-rate schedule and the optimizer."""
  train_graphdef: Any
  eval_graphdef: Any
  state: dict
  schedule: optax.Schedule
  tx: optax.GradientTransformation


def init_training(config, total_steps: int) -> TrainSetup:
  """The model, schedule and optimizer of ``config`` and their state at step 0."""
  model = build_model(config, nnx.Rngs(config.seed))
  model.train()
  train_graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  model.eval()
  eval_graphdef = nnx.graphdef(model)
  schedule = learning_rate_schedule(config, total_steps)
  tx = make_optimizer(config, schedule)
  state = dict(params=params, batch_stats=batch_stats, opt_state=tx.init(params),
               step=jnp.zeros((), jnp.int32))
  return TrainSetup(train_graphdef, eval_graphdef, state, schedule, tx)


# ------------------------------------------------------------------------------ steps

def cross_entropy(logits, labels, num_classes: int, label_smoothing: float):
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def topk_correct(logits, labels, k: int):
  """1 where the label is among the ``k`` largest logits (ties: the lower class first, as
  ``lax.top_k``), else 0. Written as the label's rank, elementwise per example: top_k over a
  batch-sharded array made XLA gather the whole batch's logits on every device."""
  label_logit = jnp.take_along_axis(logits, labels[:, None], axis=-1)
  classes = jnp.arange(logits.shape[-1])
  ahead = (logits > label_logit) | ((logits == label_logit) & (classes < labels[:, None]))
  return (jnp.sum(ahead, axis=-1) < k).astype(jnp.float32)


def make_train_step(graphdef, tx, num_classes: int, label_smoothing: float):
  def train_step(state, batch):
    def loss_fn(params):
      # Fresh Variables for the BN statistics, made inside the grad trace, so BN may update
      # them there.
      batch_stats = jax.tree.map(lambda x: x, state["batch_stats"])
      model = nnx.merge(graphdef, params, batch_stats)
      logits = model(batch["image"])
      loss = jnp.mean(cross_entropy(logits, batch["label"], num_classes, label_smoothing))
      return loss, (logits, nnx.state(model, nnx.BatchStat))

    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    new_state = dict(params=optax.apply_updates(state["params"], updates),
                     batch_stats=batch_stats, opt_state=opt_state, step=state["step"] + 1)
    metrics = dict(loss=loss, top1_err=1 - jnp.mean(topk_correct(logits, batch["label"], 1)))
    return new_state, metrics
  return train_step


def make_eval_step(graphdef, num_classes: int):
  def eval_step(state, batch):
    model = nnx.merge(graphdef, state["params"], state["batch_stats"])
    logits = model(batch["image"])
    mask = batch["mask"]
    loss = cross_entropy(logits, batch["label"], num_classes, 0.0)
    return dict(count=jnp.sum(mask), loss=jnp.sum(loss * mask),
                top1=jnp.sum(topk_correct(logits, batch["label"], 1) * mask),
                top5=jnp.sum(topk_correct(logits, batch["label"], min(5, num_classes)) * mask))
  return eval_step


# ------------------------------------------------------------------------------ the run

def _global_batch(batch: dict, sharding) -> dict:
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def process_rows(sharding, batch_size: int) -> tuple[int, int]:
  """(start, stop): the rows of a global batch that this process's devices hold under the
  batch ``sharding`` (contiguous: the mesh orders devices by process)."""
  spans = [idx[0].indices(batch_size)[:2]
           for idx in sharding.addressable_devices_indices_map((batch_size,)).values()]
  start, stop = min(a for a, _ in spans), max(b for _, b in spans)
  if sum(b - a for a, b in spans) != stop - start:
    raise ValueError(f"this process's devices hold rows {sorted(spans)} of the batch of "
                     f"{batch_size}: not one contiguous slice")
  return start, stop


def restore_newest_readable(ckpt, abstract, where: Path):
  """(step, state) from the newest checkpoint that restores; (0, None) when there is none.
  An unreadable checkpoint (a truncated file, a kill mid-write) is skipped with one warning
  naming its step and moved aside (to ``checkpoints.unreadable/``, not deleted); the run
  then resumes from the one before (``max_to_keep`` is 2)."""
  steps = sorted(ckpt.all_steps(), reverse=True)
  for step in steps:
    try:
      state = ckpt.restore(step, args=ocp.args.StandardRestore(abstract))
      if step != steps[0]:
        ckpt.reload()  # forget the ones moved aside
      return step, state
    except Exception as e:  # orbax raises many kinds (JSON, tensorstore, OS errors)
      text = str(e).strip().splitlines()
      aside = where.parent / "checkpoints.unreadable" / str(step)
      logging.warning("the checkpoint of step %d in %s is unreadable (%s: %s); moved to %s, "
                      "trying the one before", step, where, type(e).__name__,
                      text[0][:200] if text else "", aside)
      if records.writes_records():
        aside.parent.mkdir(exist_ok=True)
        shutil.move(str(where / str(step)), str(aside))
      if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"checkpoint {step} aside")
  if steps:
    raise ValueError(f"{where}: none of the checkpoints (steps {steps}) can be read; move the "
                     f"directory away to train the run again from step 0")
  return 0, None


def evaluate(eval_step, state, config, sharding) -> dict:
  from shufflenet_jax import input_pipeline
  ds, _ = input_pipeline.eval_dataset(
      config, rows=process_rows(sharding, config.eval_batch_size))
  totals = None
  for batch in ds.as_numpy_iterator():
    out = eval_step(state, _global_batch(batch, sharding))
    totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
  totals = jax.device_get(totals)
  n = float(totals["count"])
  return dict(eval_loss=float(totals["loss"]) / n, eval_top1_err=1 - float(totals["top1"]) / n,
              eval_top5_err=1 - float(totals["top5"]) / n, eval_examples=int(n))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
  """Trains ``config`` in ``workdir`` (resuming from its checkpoint if there is one) and
  returns the run record that is also written to ``workdir/result.json``. The workdir is
  locked for the run (shufflenet_jax/workdir_lock.py; by process 0 of a multi-process run):
  a second process on it fails at once."""
  workdir = Path(workdir)
  if not records.writes_records():
    return _train_and_evaluate(config, workdir)
  with workdir_lock.hold(workdir):
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: Path) -> dict:
  from shufflenet_jax import input_pipeline
  workdir.mkdir(parents=True, exist_ok=True)
  validate.check_run_workdir(config, workdir)  # corrupt or foreign records: one line
  if (workdir / "result.json").exists():
    logging.info("%s already has result.json; nothing to do", workdir)
    return json.loads((workdir / "result.json").read_text())
  records.write_config(config, workdir)
  t_start = time.time()
  commit = records.git_commit()  # the code that starts the run, whatever changes meanwhile

  spec = input_pipeline.dataset_spec(config.dataset)
  total_steps = total_train_steps(config, num_train_examples(config))

  # Auto axes: XLA propagates the batch sharding through reshapes (e.g. the group-major
  # matmul), no per-op sharding annotations needed.
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  if config.batch_size % jax.device_count() or config.eval_batch_size % jax.device_count():
    raise ValueError(f"batch_size={config.batch_size} and eval_batch_size="
                     f"{config.eval_batch_size} must be divisible by the "
                     f"{jax.device_count()} devices")
  data_sharding = jax.NamedSharding(mesh, jax.P("data"))
  replicated = jax.NamedSharding(mesh, jax.P())

  train_graphdef, eval_graphdef, state, schedule, tx = init_training(config, total_steps)
  state = jax.device_put(state, replicated)

  ckpt = ocp.CheckpointManager(
      (workdir / "checkpoints").absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                           cleanup_tmp_directories=True))
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                          state)
  start_step, restored = restore_newest_readable(ckpt, abstract, workdir / "checkpoints")
  if restored is not None:
    state = restored
    logging.info("resumed from the checkpoint at step %d", start_step)
  earlier_s = records.truncate_metrics(workdir, start_step, final=start_step == total_steps,
                                       lost_after=2 * config.checkpoint_every_steps)

  train_step = jax.jit(
      make_train_step(train_graphdef, tx, spec.num_classes, config.label_smoothing),
      in_shardings=(replicated, data_sharding), out_shardings=(replicated, replicated),
      donate_argnums=0)
  eval_step = jax.jit(make_eval_step(eval_graphdef, spec.num_classes),
                      in_shardings=(replicated, data_sharding), out_shardings=replicated)

  mirror = WandbMirror(config, workdir)
  writer = records.MetricsWriter(workdir, mirror, earlier_s, started=t_start)
  train_iter = input_pipeline.train_dataset(
      config, start_step=start_step,
      rows=process_rows(data_sharding, config.batch_size)).as_numpy_iterator()

  logging.info("training %s on %s for %d steps (batch %d, %d devices)", config.model,
               config.dataset, total_steps, config.batch_size, jax.device_count())
  pending = []
  t_log, steps_since_log, first_log = time.time(), 0, True
  step = start_step
  try:
    while step < total_steps:
      state, metrics = train_step(state, _global_batch(next(train_iter), data_sharding))
      step += 1
      steps_since_log += 1
      pending.append(metrics)
      last = step == total_steps
      if step % config.log_every_steps == 0 or last:
        host = jax.device_get(pending)
        pending = []
        loss = float(np.mean([m["loss"] for m in host]))
        if not math.isfinite(loss):
          kept = ckpt.latest_step()
          raise NonFiniteLossError(
              f"the training loss became non-finite ({loss}) by step {step}; "
              + (f"the checkpoint of step {kept} is kept" if kept is not None
                 else "no checkpoint was written") + ". Lower --config.learning_rate "
              f"(now {config.learning_rate}) or check the input data.")
        elapsed = time.time() - t_log
        img_s = steps_since_log * config.batch_size / max(elapsed, 1e-9)
        eta = (total_steps - step) * elapsed / steps_since_log
        writer.write(step, dict(
            train_loss=loss, train_top1_err=float(np.mean([m["top1_err"] for m in host])),
            learning_rate=float(schedule(step - 1)),
            img_per_s=img_s))
        logging.info("%sstep %d/%d  loss %.4f  %.0f img/s%s  ETA %s%s", PROGRESS.get(), step,
                     total_steps, loss, img_s, " (incl. compiling)" if first_log else "",
                     _fmt_seconds(eta), _last_eval(writer))
        first_log = False
        t_log, steps_since_log = time.time(), 0
      if (config.eval_every_steps > 0 and step % config.eval_every_steps == 0) and not last:
        ev = evaluate(eval_step, state, config, data_sharding)
        writer.write(step, ev)
        logging.info("%sstep %d eval: top-1 err %.2f%%", PROGRESS.get(), step,
                     100 * ev["eval_top1_err"])
      if step % config.checkpoint_every_steps == 0 or last:
        ckpt.save(step, args=ocp.args.StandardSave(state))
    ckpt.wait_until_finished()

    final = evaluate(eval_step, state, config, data_sharding)
    writer.write(step, final)
    logging.info("final eval: top-1 err %.2f%%, top-5 err %.2f%% on %d examples",
                 100 * final["eval_top1_err"], 100 * final["eval_top5_err"],
                 final["eval_examples"])
    train_metrics = writer.last("train_loss", "train_top1_err")
    counted = complexity.model_complexity(
        config.model, (config.image_size, config.image_size), **model_kwargs(config))
    # The same architecture as the paper counts it (224x224, ImageNet stem, 1000 classes).
    paper_arch = complexity.model_complexity(config.model)
    result = records.run_record(
        config, final_metrics={**train_metrics, **final, "steps": step}, complexity=counted,
        mflops_imagenet224=paper_arch["mflops"], wall_time_s=time.time() - t_start,
        commit=commit, implementations=resolve_impls(config),
        wall_time_all_attempts_s=writer.elapsed_s())
    records.write_result(workdir, result)
    mirror.summary(result)
    if jax.process_count() > 1:  # every process leaves once process 0's record is written
      multihost_utils.sync_global_devices(f"result {workdir}")
    return result
  finally:
    ckpt.wait_until_finished()
    ckpt.close()
    mirror.finish()


# ------------------------------------------------------------------------------ trained runs

def run_config(workdir: str | Path) -> ml_collections.ConfigDict:
  """The config a run in ``workdir`` was started with (its config.json)."""
  path = Path(workdir) / "config.json"
  if not path.exists():
    raise FileNotFoundError(f"{path} does not exist: {workdir} is not a training run's workdir")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def restore_model(workdir: str | Path, **overrides: Any) -> tuple[nnx.Module, int]:
  """(model, step): the run's model with the parameters and BN statistics of its latest
  checkpoint, in eval mode and float32. ``overrides`` are constructor arguments, e.g. other
  layer implementations (every implementation reads the same parameter layout)."""
  config = run_config(workdir)
  model = registry.create_model(config.model, rngs=nnx.Rngs(config.seed),
                                **{**model_kwargs(config), **overrides})
  params, batch_stats = nnx.state(model, nnx.Param), nnx.state(model, nnx.BatchStat)
  tx = make_optimizer(config, optax.constant_schedule(0.0))  # the state's structure only
  template = dict(params=params, batch_stats=batch_stats, opt_state=tx.init(params),
                  step=jnp.zeros((), jnp.int32))
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          template)
  with ocp.CheckpointManager((Path(workdir) / "checkpoints").absolute()) as ckpt:
    step = ckpt.latest_step()
    if step is None:
      raise FileNotFoundError(f"{workdir} has no checkpoint")
    state = ckpt.restore(step, args=ocp.args.StandardRestore(abstract))
  nnx.update(model, state["params"], state["batch_stats"])
  model.eval()
  return model, int(step)


# A label for the progress lines of the run in progress, e.g. a sweep's "[3/24] <run id> "
# (experiments/runner.py sets it around each run).
PROGRESS: contextvars.ContextVar[str] = contextvars.ContextVar("progress", default="")


def _last_eval(writer) -> str:
  last = writer.last("eval_top1_err")
  return f"  last eval top-1 err {100 * last['eval_top1_err']:.2f}%" if last else ""


def _fmt_seconds(s: float) -> str:
  s = int(s)
  return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
