"""Where the proxy run's warm-up loss spike comes from: the classifier's first steps.

  python -m benchmarks.probe_classifier                    # the old proxy preset's recipe
  python -m benchmarks.probe_classifier --learning_rate=3.2 --classifier_lr_scale=0.05

Runs the first ``--steps`` training steps of ``configs/default.py:proxy`` (the same data
stream, schedule, optimizer and jitted step as ``main.py``; ``--learning_rate`` and
``--classifier_lr_scale`` override the preset's, by default to the old preset's 1.6 and
1.0) and prints, per step, the learning rate, the loss, the classifier's kernel norm and the
largest change of any conv kernel's norm since initialization. Then, for each of
``--feature_models`` at initialization on the first training batch (train-mode BN), the
mean squared norm |f|^2 of the pooled features the classifier sees, the curvature of a
K-class softmax layer on them at uniform predictions (~|f|^2 / K), and the largest learning
rate SGD with momentum m is stable at on that curvature, 2 (1 + m) / curvature.
docs/training.md quotes these figures.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from configs import default
from shufflenet_jax import input_pipeline, train
from shufflenet_jax import plan as run_plan
from shufflenet_jax.models import registry


class _Identity(nnx.Module):
  def __call__(self, x):
    return x


def probe_steps(config, steps: int) -> list[dict]:
  """Per-step records of the first ``steps`` steps of ``config`` (seed, data, schedule and
  optimizer as in ``train.train_and_evaluate``)."""
  spec = input_pipeline.dataset_spec(config.dataset)
  plan = run_plan.make(config, num_train_examples=train.num_train_examples(config))
  graphdef, _, state, schedule, tx = train.init_training(plan)
  step_fn = jax.jit(train.make_train_step(graphdef, tx, spec.num_classes,
                                          plan.label_smoothing))

  def norms(params):
    labels = jax.tree.leaves(train.classifier_labels(params))
    leaves = jax.tree.leaves(params)
    fc = [float(jnp.linalg.norm(p)) for p, lab in zip(leaves, labels)
          if lab == "classifier" and p.ndim == 2]
    conv = np.array([float(jnp.linalg.norm(p)) for p, lab in zip(leaves, labels)
                     if lab == "body" and p.ndim == 4])
    return fc[0], conv

  fc0, conv0 = norms(state["params"])
  out = [dict(step=0, lr=0.0, loss=float("nan"), fc_norm=fc0, conv_norm_change=0.0)]
  data = input_pipeline.train_dataset(config).as_numpy_iterator()
  for step in range(steps):
    state, metrics = step_fn(state, next(data))
    fc, conv = norms(state["params"])
    out.append(dict(step=step + 1, lr=float(schedule(step)), loss=float(metrics["loss"]),
                    fc_norm=fc, conv_norm_change=float(np.max(np.abs(conv - conv0)))))
  return out


@nnx.jit
def _forward(model: nnx.Module, images) -> jax.Array:
  # Jitted: run eagerly, each of the model's primitives compiled a program of its own
  # (tests/test_probe.py: 26-43 s on 2 cores).
  return model(images)


def pooled_features(model: nnx.Module, images) -> jax.Array:
  """The features ``model``'s classifier (``model.fc``) sees for ``images`` (train-mode
  BN updates the model's running statistics, as a call of the model would)."""
  fc, model.fc = model.fc, _Identity()
  try:
    return _forward(model, jnp.asarray(images))
  finally:
    model.fc = fc


def pooled_feature_sq_norm(config, model_name: str) -> float:
  """Mean |f|^2 over the first training batch of the features ``model_name``'s classifier
  sees at initialization (train-mode BN, the run's seed)."""
  config = config.copy_and_resolve_references()
  config.model = model_name
  model = train.build_model(run_plan.make(config), registry.KeyStream(config.seed))
  model.train()
  batch = next(input_pipeline.train_dataset(config).as_numpy_iterator())
  f = pooled_features(model, batch["image"])
  return float(jnp.mean(jnp.sum(jnp.square(f), axis=-1)))


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--learning_rate", type=float, default=1.6,
                 help="per lr_reference_batch images (default: the old proxy preset's 1.6)")
  p.add_argument("--classifier_lr_scale", type=float, default=1.0)
  p.add_argument("--steps", type=int, default=35)
  p.add_argument("--feature_models", default="shufflenet_0.5x_g3,shufflenet_1.0x_g3",
                 help="comma-separated registry names ('' for none)")
  args = p.parse_args(argv)
  if args.steps < 1:
    p.error(f"--steps={args.steps}: must be >= 1")

  config = default.get_config("proxy")
  config.learning_rate = args.learning_rate
  config.classifier_lr_scale = args.classifier_lr_scale
  num_classes = input_pipeline.dataset_spec(config.dataset).num_classes
  print(f"{config.model} on {config.dataset}, batch {config.batch_size}, seed {config.seed}: "
        f"lr {config.learning_rate} per {config.lr_reference_batch}, classifier x"
        f"{config.classifier_lr_scale}, warm-up {config.warmup_steps} steps")
  print(f"{'step':>5} {'lr':>8} {'loss':>9} {'|W_fc|':>8} {'max d|W_conv|':>14}")
  records = probe_steps(config, args.steps)
  for r in records:
    print(f"{r['step']:5d} {r['lr']:8.4f} {r['loss']:9.3f} {r['fc_norm']:8.3f} "
          f"{r['conv_norm_change']:14.4f}")
  peak = max(records[1:], key=lambda r: r["loss"])
  print(f"loss peak {peak['loss']:.2f} at step {peak['step']} (lr {peak['lr']:.4f}); "
        f"|W_fc| {records[0]['fc_norm']:.2f} -> {records[-1]['fc_norm']:.2f}; largest conv "
        f"kernel norm change {max(r['conv_norm_change'] for r in records):.4f}")
  for name in filter(None, args.feature_models.split(",")):
    sq = pooled_feature_sq_norm(config, name)
    curvature = sq / num_classes
    print(f"{name}: |f|^2 = {sq:.0f} per image at init; softmax curvature ~|f|^2/"
          f"{num_classes} = {curvature:.1f}; SGD momentum {config.momentum} stable below lr "
          f"{2 * (1 + config.momentum) / curvature:.3f}")


if __name__ == "__main__":
  main()
