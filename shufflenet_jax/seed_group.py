"""k seeds of one configuration trained in one jitted program, the data held on the device.

``train_group(configs, workdirs)`` takes run configs that differ only in ``seed`` and trains
them together: parameters, optimizer state, BN statistics and step are stacked on a leading
seed axis and one ``jax.vmap``-ed step advances all of them; each seed's batch order and
augmentation are drawn inside the step from its own seed (device_data.py). With one seed
the step is the same function without vmap: that is the *separate run* a group member is
tested against (tests/test_seed_group.py: equal to 1e-5 in float32, 1e-10 in float64).

Each seed keeps its own workdir, identical in form to a separate run's (train.py):
config.json, metrics.jsonl, checkpoints/ (its own orbax manager) and result.json. A group
resumes from the newest checkpoint step that all its unfinished seeds share; a finished
seed (result.json) is never trained again, so a kill at any moment loses no finished seed.

No TensorFlow is imported on this path (a GPU image may lack it); the tf.data pipeline
(train.train_and_evaluate) stays for ImageNet and the other tfds datasets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from shufflenet_jax import aot, datasets, device_data, records, train, validate, workdir_lock
from shufflenet_jax import plan as run_plan
from shufflenet_jax.wandb_mirror import WandbMirror

# Fields that may differ between the members of a group (everything else must be equal).
PER_SEED_FIELDS = ("seed", "wandb")


def check_group(configs: list[ml_collections.ConfigDict], workdirs: list) -> None:
  """A ValueError (one line) unless the configs differ only in seed, the seeds are
  distinct and each has its own workdir."""
  if not configs:
    raise ValueError("a seed group needs at least one seed (k >= 1); got none")
  if len(configs) != len(workdirs):
    raise ValueError(f"{len(configs)} configs but {len(workdirs)} workdirs")
  seeds = [int(c.seed) for c in configs]
  if len(set(seeds)) != len(seeds):
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    raise ValueError(f"seeds={seeds}: seed(s) {dup} repeated; each seed of a group must be "
                     "distinct")
  if len({str(Path(w).absolute()) for w in workdirs}) != len(workdirs):
    raise ValueError(f"workdirs={[str(w) for w in workdirs]}: each seed needs its own workdir")
  base = {k: v for k, v in configs[0].to_dict().items() if k not in PER_SEED_FIELDS}
  for c, s in zip(configs[1:], seeds[1:]):
    other = {k: v for k, v in c.to_dict().items() if k not in PER_SEED_FIELDS}
    diff = sorted(k for k in set(base) | set(other) if base.get(k) != other.get(k))
    if diff:
      k = diff[0]
      raise ValueError(f"seed group: seed {s}'s config differs from seed {seeds[0]}'s in "
                       f"{', '.join(diff)} ({k}={other.get(k)!r} vs {base.get(k)!r}); a group "
                       "trains one configuration with several seeds")


def _stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _member(tree, i: int):
  return jax.tree.map(lambda x: x[i], tree)


def _common_step(managers) -> int:
  """The newest checkpoint step every manager holds (0: start over)."""
  steps = [set(m.all_steps()) for m in managers]
  common = set.intersection(*steps) if steps else set()
  return max(common) if common else 0


def _initial_state(plan: run_plan.Plan):
  setup = train.init_training(plan)
  state = setup.state
  if plan.dtype == "float64":  # numerical tests (jax_enable_x64): the whole state in f64
    state = jax.tree.map(lambda x: x.astype(jnp.float64)
                         if jnp.issubdtype(x.dtype, jnp.floating) else x, state)
  return setup, state


class Interrupted(Exception):
  """Raised by ``train_group(..., stop_after=n)`` after step n's checkpoints (tests and
  kill drills: what a kill right after a checkpoint leaves behind)."""


def train_group(configs: list[ml_collections.ConfigDict], workdirs: list,
                stop_after: int | None = None) -> list[dict]:
  """Trains every unfinished seed of the group; returns all the seeds' run records."""
  check_group(configs, workdirs)
  if jax.process_count() > 1:
    raise ValueError("data_on_device=True trains on one process; a multi-process run uses "
                     "the tf.data pipeline (--config.data_on_device=False)")
  workdirs = [Path(w) for w in workdirs]
  for c, w in zip(configs, workdirs):  # corrupt or foreign records: one line, nothing changed
    validate.check_run_workdir(c, w, compare=not (Path(w) / "result.json").is_file())
  for w in workdirs:
    w.mkdir(parents=True, exist_ok=True)
  todo = [i for i, w in enumerate(workdirs) if not (w / "result.json").exists()]
  for i in set(range(len(configs))) - set(todo):
    logging.info("%s already has result.json; seed %d skipped", workdirs[i], configs[i].seed)
  if todo:
    with contextlib.ExitStack() as locks:  # one process per workdir
      for i in todo:
        locks.enter_context(workdir_lock.hold(workdirs[i]))
      _train([configs[i] for i in todo], [workdirs[i] for i in todo], stop_after)
  return [json.loads((w / "result.json").read_text()) for w in workdirs]


class GroupProgram:
  """The jitted programs of a group and their inputs on the device: ``step(state)`` advances
  every seed one step (vmap; no vmap for one seed), ``evaluate(state)`` gives each seed's
  eval metrics, ``state`` is the seeds' initial state stacked on a leading axis."""

  def __init__(self, configs, total_steps: int | None = None, splits=None):
    config, self.k = configs[0], len(configs)
    self.config = config
    self.seeds = [int(c.seed) for c in configs]
    spec = datasets.dataset_spec(config.dataset)
    train_split, eval_split = splits or device_data.splits(config)
    n_train = len(train_split.labels)
    self.plan = run_plan.make(config, num_train_examples=n_train)
    if total_steps:
      self.plan = dataclasses.replace(self.plan, total_steps=total_steps)
    self.total_steps = self.plan.total_steps
    if self.total_steps < 1:
      raise ValueError(f"num_epochs={config.num_epochs}, num_train_steps="
                       f"{config.num_train_steps}: the run would train 0 steps")
    make_batch = device_data.make_train_batch(config, n_train)
    # the seeds' plans differ in the seed only (check_group)
    self.plans = [dataclasses.replace(self.plan, config=c, seed=int(c.seed)) for c in configs]
    setups = [_initial_state(p) for p in self.plans]
    self.setup = setup = setups[0][0]
    self.member_template = setups[0][1]
    self.device = jax.devices()[0]
    self.state = jax.device_put(_stack([s for _, s in setups]), self.device)

    train_step = train.make_train_step(setup.train_graphdef, setup.tx, spec.num_classes,
                                       self.plan.label_smoothing)
    eval_step = train.make_eval_step(setup.eval_graphdef, spec.num_classes)

    def one_step(state, seed, images, labels):
      return train_step(state, make_batch(images, labels, seed, state["step"]))

    def one_eval(state, images, labels, mask):
      return eval_step(state, {"image": device_data.normalize(images, spec), "label": labels,
                               "mask": mask})

    if self.k == 1:  # the separate run: no vmap
      squeeze = lambda f: (lambda st, *a: jax.tree.map(  # noqa: E731
          lambda x: x[None], f(_member(st, 0), *a)))
      group_step = squeeze(lambda st, seed, im, lb: one_step(st, seed[0], im, lb))
      group_eval = squeeze(one_eval)
    else:
      group_step = jax.vmap(one_step, in_axes=(0, 0, None, None))
      group_eval = jax.vmap(one_eval, in_axes=(0, None, None, None))
    key = dict(self.plan.program_key(), group=self.k, data=repr(spec))
    self._step = aot.step(group_step, dict(step="group train", **key), donate_argnums=(0,))
    self._eval = aot.step(group_eval, dict(step="group eval", **key))
    self._images = jax.device_put(train_split.images, self.device)
    self._labels = jax.device_put(train_split.labels, self.device)
    self._seeds = jnp.asarray(self.seeds, jnp.uint32)
    self._eval_arrays = jax.device_put(
        device_data.eval_batches(eval_split, config.eval_batch_size), self.device)

  def step(self, state):
    """(new state, metrics with a leading seed axis); ``state`` is donated."""
    return self._step(state, self._seeds, self._images, self._labels)

  def compile(self):
    """The train step's compiled program (for timing the compile)."""
    return self._step.lower(self.state, self._seeds, self._images, self._labels).compile()

  def evaluate(self, state) -> list[dict]:
    totals = None
    for b in range(self._eval_arrays[0].shape[0]):
      out = self._eval(state, *(a[b] for a in self._eval_arrays))
      totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
    totals = jax.device_get(totals)
    result = []
    for i in range(self.k):
      n = float(totals["count"][i])
      result.append(dict(eval_loss=float(totals["loss"][i]) / n,
                         eval_top1_err=1 - float(totals["top1"][i]) / n,
                         eval_top5_err=1 - float(totals["top5"][i]) / n,
                         eval_examples=int(n)))
    return result


def _train(configs, workdirs, stop_after: int | None) -> None:
  t_start = time.time()
  commit = records.git_commit()
  k = len(configs)
  seeds = [int(c.seed) for c in configs]
  program = GroupProgram(configs)  # validates the configs (run_plan.make) before writing
  for c, w in zip(configs, workdirs):
    records.write_config(c, w)
  plan = program.plan
  setup, total_steps, state, device = (program.setup, program.total_steps, program.state,
                                       program.device)
  evaluate = program.evaluate
  managers = [ocp.CheckpointManager(
      (w / "checkpoints").absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                           cleanup_tmp_directories=True)) for w in workdirs]
  try:
    start_step = _common_step(managers)
    earlier_s = [records.truncate_metrics(w, start_step, final=start_step == total_steps,
                                          lost_after=2 * plan.checkpoint_every_steps)
                 for w in workdirs]  # before any checkpoint is dropped
    if start_step:
      abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
          x.shape, x.dtype, sharding=jax.sharding.SingleDeviceSharding(device)),
          program.member_template)
      for m in managers:  # a seed saved ahead of the others before a kill: drop that step
        for s in [s for s in m.all_steps() if s > start_step]:
          m.delete(s)
      state = jax.device_put(_stack([m.restore(start_step,
                                               args=ocp.args.StandardRestore(abstract))
                                     for m in managers]), device)
      logging.info("seeds %s resumed from their checkpoints at step %d", seeds, start_step)
    else:
      for m in managers:  # checkpoints not shared by every seed are of no use
        for s in m.all_steps():
          m.delete(s)

    mirrors = [WandbMirror(c, w) for c, w in zip(configs, workdirs)]
    writers = [records.MetricsWriter(w, m, e, started=t_start)
               for w, m, e in zip(workdirs, mirrors, earlier_s)]
    logging.info("training %s on %s for %d steps (batch %d), %d seed(s) %s in one program, "
                 "data on %s", plan.model, plan.config.dataset, total_steps, plan.batch_size, k,
                 seeds, device)

    def save(step, state):
      for i, m in enumerate(managers):
        m.save(step, args=ocp.args.StandardSave(_member(state, i)))
      if stop_after is not None and step >= stop_after:
        raise Interrupted(f"stopped after step {step}'s checkpoints")

    def nonfinite(bad, _, step):
      raise train.NonFiniteLossError(
          f"the training loss of seed(s) {[seeds[i] for i in bad]} became non-finite by step "
          f"{step}; the last checkpoints are kept. Lower --config.learning_rate (now "
          f"{plan.config.learning_rate}) or check the input data.")

    step, state = train.train_loop(plan, state, start_step, program.step, writers,
                                   setup.schedule, evaluate, save, nonfinite)
    for m in managers:
      m.wait_until_finished()

    t_eval = time.time()
    finals = evaluate(state)
    t_count = time.time()
    facts = train.complexity_facts(plan)
    logging.info("final eval of %d seeds in %.0f s, complexity counted in %.0f s", k,
                 t_count - t_eval, time.time() - t_count)
    for p, w, writer, mirror, final in zip(program.plans, workdirs, writers, mirrors, finals):
      writer.write(step, final)
      result = train.run_record(
          p, {**writer.last("train_loss", "train_top1_err"), **final, "steps": step}, facts,
          wall_time_s=time.time() - t_start, commit=commit,
          wall_time_all_attempts_s=writer.elapsed_s())
      result["trainer"] = {"data": "device", "seed_group": seeds}
      records.write_result(w, result)
      mirror.summary(result)
      mirror.finish()
      logging.info("seed %d: final eval top-1 err %.2f%% on %d examples (%s)", p.seed,
                   100 * final["eval_top1_err"], final["eval_examples"], w)
  finally:
    for m in managers:
      m.wait_until_finished()
      m.close()
