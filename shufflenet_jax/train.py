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

from shufflenet_jax import aot, complexity
from shufflenet_jax import plan as run_plan
from shufflenet_jax import records, validate, workdir_lock
from shufflenet_jax.models import layers, registry
from shufflenet_jax.wandb_mirror import WandbMirror


class NonFiniteLossError(FloatingPointError):
  pass


# ------------------------------------------------------------------------------ set-up

def build_model(plan: run_plan.Plan, rngs: nnx.Rngs | registry.KeyStream) -> nnx.Module:
  """The plan's model with its compute dtype and layer implementations."""
  compute = {"bfloat16": jnp.bfloat16, "float64": jnp.float64}.get(plan.dtype)
  return registry.create_model(plan.model, rngs=rngs, dtype=compute,
                               **plan.constructor_kwargs())


def learning_rate_schedule(plan: run_plan.Plan) -> optax.Schedule:
  """Linear warm-up (optional) then linear decay to 0 at the last step (paper Sec. 4)."""
  if plan.total_steps is None:
    raise ValueError("the plan has no step budget: make it with num_train_examples")
  lr, total = plan.peak_learning_rate, plan.total_steps
  warmup = min(plan.warmup_steps, total)
  decay = optax.linear_schedule(lr, 0.0, max(total - warmup, 1))
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


def make_optimizer(plan: run_plan.Plan, schedule: optax.Schedule) -> optax.GradientTransformation:
  # Weight decay on kernels only (ndim > 1), not on BN scale/bias or FC bias (official
  # release); added to the gradient before momentum, as PyTorch's SGD does.
  kernels_only = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)

  def sgd(lr: optax.Schedule) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(plan.weight_decay, mask=kernels_only),
                       optax.sgd(lr, momentum=plan.momentum))

  scale = plan.classifier_lr_scale
  if scale == 1.0:
    return sgd(schedule)
  # Not the paper's: the classifier's lr is the schedule times ``scale`` (docs/training.md:
  # on 10 classes the FC's curvature ~ |pooled features|^2 / 10 makes plain SGD on
  # it unstable at the body's lr).
  return optax.multi_transform(
      {"body": sgd(schedule), "classifier": sgd(lambda step: scale * schedule(step))},
      classifier_labels)


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


def init_training(plan: run_plan.Plan) -> TrainSetup:
  """The model, schedule and optimizer of the plan and their state at step 0."""
  model = build_model(plan, registry.KeyStream(plan.seed))
  model.train()
  train_graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  model.eval()
  eval_graphdef = nnx.graphdef(model)
  schedule = learning_rate_schedule(plan)
  tx = make_optimizer(plan, schedule)
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
  plan = run_plan.make(config, num_train_examples=num_train_examples(config))
  records.write_config(config, workdir)
  t_start = time.time()
  commit = records.git_commit()  # the code that starts the run, whatever changes meanwhile
  data_sharding, replicated = _shardings(plan)
  setup = init_training(plan)
  ckpt = ocp.CheckpointManager(
      (workdir / "checkpoints").absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                           cleanup_tmp_directories=True))
  mirror = None
  try:  # whatever fails from here (a refusal too) closes the manager and the mirror
    start_step, state = _resume(ckpt, jax.device_put(setup.state, replicated), workdir)
    earlier_s = records.truncate_metrics(workdir, start_step,
                                         final=start_step == plan.total_steps,
                                         lost_after=2 * plan.checkpoint_every_steps)
    train_step, eval_step = _jit_steps(setup, plan, data_sharding, replicated)
    mirror = WandbMirror(config, workdir)
    writer = records.MetricsWriter(workdir, mirror, earlier_s, started=t_start)
    train_iter = input_pipeline.train_dataset(
        config, start_step=start_step,
        rows=process_rows(data_sharding, plan.batch_size)).as_numpy_iterator()
    logging.info("training %s on %s for %d steps (batch %d, %d devices)", plan.model,
                 config.dataset, plan.total_steps, plan.batch_size, jax.device_count())

    def nonfinite(_, loss, step):
      kept = ckpt.latest_step()
      raise NonFiniteLossError(
          f"the training loss became non-finite ({loss[0]}) by step {step}; "
          + (f"the checkpoint of step {kept} is kept" if kept is not None
             else "no checkpoint was written") + ". Lower --config.learning_rate "
          f"(now {config.learning_rate}) or check the input data.")

    step, state = train_loop(
        plan, state, start_step,
        lambda st: train_step(st, _global_batch(next(train_iter), data_sharding)), [writer],
        setup.schedule, lambda st: [evaluate(eval_step, st, config, data_sharding)],
        lambda step, st: ckpt.save(step, args=ocp.args.StandardSave(st)), nonfinite)
    ckpt.wait_until_finished()
    final = evaluate(eval_step, state, config, data_sharding)
    writer.write(step, final)
    logging.info("final eval: top-1 err %.2f%%, top-5 err %.2f%% on %d examples",
                 100 * final["eval_top1_err"], 100 * final["eval_top5_err"],
                 final["eval_examples"])
    result = run_record(plan, {**writer.last("train_loss", "train_top1_err"), **final,
                               "steps": step},
                        wall_time_s=time.time() - t_start, commit=commit,
                        wall_time_all_attempts_s=writer.elapsed_s())
    records.write_result(workdir, result)
    mirror.summary(result)
    if jax.process_count() > 1:  # every process leaves once process 0's record is written
      multihost_utils.sync_global_devices(f"result {workdir}")
    return result
  finally:
    ckpt.wait_until_finished()
    ckpt.close()
    if mirror is not None:
      mirror.finish()


def _shardings(plan: run_plan.Plan) -> tuple[jax.NamedSharding, jax.NamedSharding]:
  """(batch sharded over every device on the ``data`` axis, replicated). Auto axes: XLA
  propagates the batch sharding through reshapes (e.g. the group-major matmul), no per-op
  sharding annotations needed."""
  n = jax.device_count()
  if plan.batch_size % n or plan.eval_batch_size % n:
    raise ValueError(f"batch_size={plan.batch_size} and eval_batch_size="
                     f"{plan.eval_batch_size} must be divisible by the {n} devices")
  mesh = jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  return jax.NamedSharding(mesh, jax.P("data")), jax.NamedSharding(mesh, jax.P())


def _resume(ckpt, state, workdir: Path):
  """(step, state): the newest readable checkpoint's, else (0, ``state``)."""
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          state)
  start_step, restored = restore_newest_readable(ckpt, abstract, workdir / "checkpoints")
  if restored is None:
    return 0, state
  logging.info("resumed from the checkpoint at step %d", start_step)
  return start_step, restored


def _jit_steps(setup: TrainSetup, plan: run_plan.Plan, data_sharding, replicated):
  """The jitted train step (state donated) and eval step, batch sharded."""
  classes = plan.dataset.num_classes
  train_step = aot.step(
      make_train_step(setup.train_graphdef, setup.tx, classes, plan.label_smoothing),
      dict(step="train", **plan.program_key()), in_shardings=(replicated, data_sharding),
      out_shardings=(replicated, replicated), donate_argnums=(0,))
  eval_step = aot.step(make_eval_step(setup.eval_graphdef, classes),
                       dict(step="eval", **plan.program_key()),
                       in_shardings=(replicated, data_sharding), out_shardings=replicated)
  return train_step, eval_step


def train_loop(plan: run_plan.Plan, state, step: int, advance, writers: list, schedule,
               run_eval, save, nonfinite) -> tuple[int, Any]:
  """Steps from ``step`` to the plan's last, for one run or a group of k seeds: every log
  interval each seed's metrics to its writer and one progress line, every eval interval
  ``run_eval(state)`` (one dict per seed), every checkpoint interval and at the end
  ``save(step, state)``. ``advance(state)`` -> (state, metrics: scalars or one per seed);
  ``nonfinite(seeds, losses, step)`` raises for the seeds (indices) whose loss is not
  finite.
  Returns (last step, state)."""
  total, k = plan.total_steps, len(writers)
  pending = []
  t_log, steps_since_log, first_log = time.time(), 0, True
  while step < total:
    state, metrics = advance(state)
    step += 1
    steps_since_log += 1
    pending.append(metrics)
    last = step == total
    if step % plan.log_every_steps == 0 or last:
      host = jax.device_get(pending)
      pending = []
      per_seed = lambda key: [float(np.mean(column)) for column in np.asarray(  # noqa: E731
          [m[key] for m in host]).reshape(len(host), k).T]
      loss, err = per_seed("loss"), per_seed("top1_err")
      bad = [i for i, v in enumerate(loss) if not math.isfinite(v)]
      if bad:
        nonfinite(bad, loss, step)
      elapsed = time.time() - t_log
      img_s = steps_since_log * plan.batch_size / max(elapsed, 1e-9)  # per seed
      for i, w in enumerate(writers):
        w.write(step, dict(train_loss=loss[i], train_top1_err=err[i],
                           learning_rate=float(schedule(step - 1)), img_per_s=img_s))
      eta = (total - step) * elapsed / steps_since_log
      logging.info("%sstep %d/%d  loss %s  %.0f img/s%s%s  ETA %s%s", PROGRESS.get(), step,
                   total, " ".join(f"{v:.4f}" for v in loss), img_s,
                   f" per seed ({k} seeds)" if k > 1 else "",
                   " (incl. compiling)" if first_log else "", _fmt_seconds(eta),
                   _last_eval(writers[0]) if k == 1 else "")
      first_log = False
      t_log, steps_since_log = time.time(), 0
    if (plan.eval_every_steps > 0 and step % plan.eval_every_steps == 0) and not last:
      evals = run_eval(state)
      for w, ev in zip(writers, evals):
        w.write(step, ev)
      logging.info("%sstep %d eval: top-1 err %s", PROGRESS.get(), step,
                   " ".join(f"{100 * ev['eval_top1_err']:.2f}%" for ev in evals))
    if step % plan.checkpoint_every_steps == 0 or last:
      save(step, state)
  return step, state


def complexity_facts(plan: run_plan.Plan) -> dict:
  """The model's complexity at the run's input shape, and its MFLOPs as the paper counts
  them (224x224, ImageNet stem, 1000 classes)."""
  return dict(
      complexity=complexity.model_complexity(plan.model, plan.resolution, **plan.model_kwargs),
      mflops_imagenet224=complexity.model_complexity(plan.model)["mflops"])


def run_record(plan: run_plan.Plan, final_metrics: dict, facts: dict | None = None,
               **provenance) -> dict:
  """The run record (result.json) of a finished run of ``plan``: its metrics, its
  :func:`complexity_facts` (``facts``, counted when not given), the implementations it
  trained with and ``provenance`` (wall times, commit)."""
  return records.run_record(plan.config, final_metrics=final_metrics,
                            implementations=plan.impls,
                            **(facts or complexity_facts(plan)), **provenance)


# ------------------------------------------------------------------------------ trained runs

def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
  """Evaluates the newest checkpoint of the run in ``config.init_from`` (a training run, or
  weights converted by shufflenet_jax.convert) on ``config``'s eval split, no training.
  The model, its arguments, its input scaling and its resize method are the run's own (its
  config.json); the data, the rest of the eval preprocessing and the batch are ``config``'s. Writes
  ``workdir/config.json`` and ``workdir/result.json`` (the run record, with
  ``evaluated.init_from``) and returns the record."""
  workdir, source = Path(workdir), Path(config.init_from)
  if (workdir / "result.json").exists():
    logging.info("%s already has result.json; nothing to do", workdir)
    return json.loads((workdir / "result.json").read_text())
  stored = run_config(source)
  config = ml_collections.ConfigDict(config.to_dict())  # unlocked: the fields below change
  config.model, config.model_kwargs = stored.model, stored.get("model_kwargs") or {}
  config.input_norm = stored.get("input_norm", "mean_std")
  if "eval_resize_method" in stored:  # a converted run's: its format's own resize
    config.eval_resize_method = stored.eval_resize_method
  plan = run_plan.make(config)
  t_start, commit = time.time(), records.git_commit()
  impls = {k: v for k, v in plan.constructor_kwargs().items() if k in run_plan.IMPL_KEYS}
  model, step = restore_model(source, **impls)
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  data_sharding, replicated = _shardings(plan)
  eval_step = jax.jit(make_eval_step(graphdef, plan.dataset.num_classes),
                      in_shardings=(replicated, data_sharding), out_shardings=replicated)
  logging.info("evaluating %s (%s, checkpoint step %d) on %s", plan.model, source, step,
               plan.config.dataset)
  state = jax.device_put(dict(params=params, batch_stats=batch_stats), replicated)
  final = evaluate(eval_step, state, config, data_sharding)
  logging.info("eval: top-1 err %.2f%%, top-5 err %.2f%% on %d examples (top-1 acc %.2f%%)",
               100 * final["eval_top1_err"], 100 * final["eval_top5_err"],
               final["eval_examples"], 100 * (1 - final["eval_top1_err"]))
  result = run_record(plan, {**final, "steps": step}, wall_time_s=time.time() - t_start,
                      commit=commit)
  result["evaluated"] = {"init_from": str(source), "checkpoint_step": step}
  workdir.mkdir(parents=True, exist_ok=True)  # written at the end: an interrupted eval
  records.write_config(config, workdir)       # leaves nothing to refuse a rerun over
  records.write_result(workdir, result)
  return result


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
  plan = run_plan.make(run_config(workdir), check=False)  # the run's own: as it trained
  model = registry.create_model(plan.model, rngs=registry.KeyStream(plan.seed),
                                **{**plan.model_kwargs, **overrides})
  params, batch_stats = nnx.state(model, nnx.Param), nnx.state(model, nnx.BatchStat)
  tx = make_optimizer(plan, optax.constant_schedule(0.0))  # the state's structure only
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
