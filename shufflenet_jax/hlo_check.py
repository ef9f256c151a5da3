"""Which collectives a data-parallel train step compiles to: all-gathers of batch-sized
tensors mean every device recomputes (part of) the whole batch.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \\
    python -m shufflenet_jax.hlo_check shufflenet_1.0x_g8 unit_resnext_38 --batch 32

prints, per model, the implementations ``auto`` picks for the mesh and the all-gathers in
the optimized HLO of the sharded train step (the tests assert none gather a batch).
"""

from __future__ import annotations

import argparse
import re

_ALL_GATHER = re.compile(r"= (\w+)\[([\d,]*)\][^=]*? all-gather(?:-start)?\(")


def all_gathers(hlo_text: str) -> list[tuple[str, tuple[int, ...]]]:
  """(dtype, shape) of every all-gather's result in optimized HLO text."""
  return [(m.group(1), tuple(int(d) for d in m.group(2).split(",") if d))
          for m in _ALL_GATHER.finditer(hlo_text)]


def batch_gathers(hlo_text: str, batch: int) -> list[tuple[str, tuple[int, ...]]]:
  """The all-gathers whose result has a dimension of the global batch size."""
  return [g for g in all_gathers(hlo_text) if batch in g[1]]


def compiled_train_step(model: str, batch: int, image_size: int = 32, **overrides):
  """(optimized HLO text, implementations) of ``model``'s train step on every device, the
  batch sharded over them (float32, Fashion-MNIST-shaped data at ``image_size``)."""
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from configs import default
  from shufflenet_jax import plan as run_plan, train
  from shufflenet_jax.models import registry

  c = default.get_config("quick")
  c.model, c.batch_size, c.image_size = model, batch, image_size
  for k, v in overrides.items():
    c[k] = v
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  data, rep = jax.NamedSharding(mesh, jax.P("data")), jax.NamedSharding(mesh, jax.P())
  c.num_train_steps = 10
  plan = run_plan.make(c)
  model_ = train.build_model(plan, registry.KeyStream(0))
  model_.train()
  gd, params, stats = nnx.split(model_, nnx.Param, nnx.BatchStat)
  tx = train.make_optimizer(plan, train.learning_rate_schedule(plan))
  state = dict(params=params, batch_stats=stats, opt_state=tx.init(params),
               step=jnp.zeros((), jnp.int32))
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep), state)
  batch_ = {"image": jax.ShapeDtypeStruct((batch, image_size, image_size, 1), jnp.float32,
                                          sharding=data),
            "label": jax.ShapeDtypeStruct((batch,), jnp.int32, sharding=data)}
  step = jax.jit(train.make_train_step(gd, tx, 10, 0.0), in_shardings=(rep, data),
                 out_shardings=(rep, rep))
  text = step.lower(abstract, batch_).compile().as_text()
  return text, plan.impls


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("models", nargs="+")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--image_size", type=int, default=32)
  parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                      help="config overrides, e.g. depthwise_impl=lax")
  args = parser.parse_args(argv)
  import jax
  overrides = dict(s.split("=", 1) for s in args.set)
  print(f"{jax.device_count()} devices, global batch {args.batch}")
  worst = 0
  for name in args.models:
    text, impls = compiled_train_step(name, args.batch, args.image_size, **overrides)
    gathers = batch_gathers(text, args.batch)
    worst = max(worst, len(gathers))
    print(f"{name}: {len(all_gathers(text))} all-gathers, {len(gathers)} of batch-sized "
          f"tensors {sorted(set(gathers))[:4]}{' ...' if len(set(gathers)) > 4 else ''}; "
          f"{impls}", flush=True)
  return 1 if worst else 0


if __name__ == "__main__":
  raise SystemExit(main())
