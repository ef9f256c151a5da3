"""Training- and eval-step throughput: every JAX layer implementation against PyTorch.

  pip install -r requirements-bench.txt            # torch==2.13.0 (benchmark only)
  python -m benchmarks.bench_train                 # proxy shape, the five sweep ShuffleNets
  python -m benchmarks.bench_train --impls=all     # every pointwise:depthwise pair
  python -m benchmarks.bench_train --shape=imagenet --dtype=bfloat16 --bound   # on a GPU;
                                                   # --bound: the step's memory-traffic bound
  python -m benchmarks.bench_train --out=results/bench_train.md

Times, in one process and side by side (every candidate once per round, ``--rounds``
rounds, median reported), the jitted train step (forward + backward + SGD-momentum update
with weight decay: shufflenet_jax/train.py) of each model for each implementation spec
``pointwise:depthwise[:pool[:units]]`` (the 1x1 and depthwise conv implementations, the
stride-2 average pool's, and ``stored`` for ``materialize_units``; ``auto`` is what
training picks here), and the same network in PyTorch (channels_last,
the same thread count and batch; benchmarks/torch_reference.py), and the eval step of
each. Prints images/s and the ratio JAX / PyTorch; ``--out`` writes the table with the
machine, versions and commit. Synthetic inputs: this measures speed, not learning.

Shapes: ``proxy`` = 28x28x1, small stem, 10 classes, batch 128; ``imagenet`` = 224x224x3,
imagenet stem, 1000 classes, batch 32 on CPU and 256 on GPU (``--batch`` overrides).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from shufflenet_jax import aot, malloc, mdtable, records, timing, train
from shufflenet_jax import plan as run_plan
from shufflenet_jax.models import ops, registry

# The sweeps' ShuffleNets (Table 1's widths at g3, and g8).
DEFAULT_MODELS = ("shufflenet_0.25x_g3", "shufflenet_0.5x_g3", "shufflenet_1.0x_g3",
                  "shufflenet_1.0x_g8", "shufflenet_2.0x_g3")
SHAPES = {"proxy": dict(size=28, channels=1, classes=10, stem="small", batch=128),
          "imagenet": dict(size=224, channels=3, classes=1000, stem="imagenet", batch=32)}
ALL_IMPLS = tuple(f"{p}:{d}" for p, d in itertools.product(ops.POINTWISE_IMPLS,
                                                           ops.DEPTHWISE_IMPLS))
UNIT_OUTPUTS = ("fused", "stored")  # ShuffleNet(materialize_units=False / True)
# The candidates of results/bench_train.md: the CPU default, its settings one at a time and
# the group-major layout. XLA's own grouped convs (lax:lax, the slowest on CPU) and the
# other pairs are left out to keep the run short: --impls=all adds every pair.
DEFAULT_IMPLS = ("auto", "matmul:shiftvjp", "matmul:shiftvjp:shift",
                 "matmul:shiftvjp:window:stored", "groupmajor:shiftvjp:shift:stored")


def auto_impl() -> str:
  """The ``pointwise:depthwise:pool:units`` implementations ``auto`` trains with here."""
  auto = run_plan.resolve_impls({})
  return ":".join([auto["pointwise_impl"], auto["depthwise_impl"], auto["pool_impl"],
                   UNIT_OUTPUTS[auto["materialize_units"]]])


def check_impl(spec: str) -> str:
  """An implementation spec, checked (``auto`` resolved): ``pointwise:depthwise[:pool
  [:units]]``, the pool ``window`` and the units ``fused`` (ShuffleNet's defaults) unless
  given; ``stored`` is ``materialize_units=True``."""
  if spec == "auto":
    return auto_impl()
  parts = spec.split(":")
  if ":".join(parts[:2]) not in ALL_IMPLS or len(parts) > 4 or (
      len(parts) > 2 and parts[2] not in ops.POOL_IMPLS) or (
      len(parts) > 3 and parts[3] not in UNIT_OUTPUTS):
    raise ValueError(f"implementation {spec!r}; valid: auto, or "
                     f"pointwise:depthwise[:pool[:units]] with pointwise:depthwise one of "
                     f"{', '.join(ALL_IMPLS)}, pool one of {', '.join(ops.POOL_IMPLS)} "
                     f"(default window) and units one of {', '.join(UNIT_OUTPUTS)} "
                     "(default fused)")
  return spec


def resolve_model_impl(model: str, impl: str) -> str:
  """Check a registry name and an implementation spec (:func:`check_impl`); the spec."""
  registry.model_spec(model)
  return check_impl(impl)


def _config(model: str, shape: dict, batch: int, dtype: str, impl: str):
  from configs import default
  c = default.get_config("proxy")
  c.model = model
  c.model_kwargs.update(stem=shape["stem"], num_classes=shape["classes"],
                        in_channels=shape["channels"])
  c.batch_size = batch
  c.dtype = dtype
  parts = impl.split(":") + ["window", "fused"][len(impl.split(":")) - 2:]
  c.pointwise_impl, c.depthwise_impl, c.pool_impl = parts[:3]
  c.materialize_units = str(parts[3] == "stored")
  return c


def first_calls(run) -> dict:
  """Runs a candidate's first train and eval calls: their wall seconds (``s``), the minor
  page faults they took (``faults``: first touches of memory) and the system CPU seconds
  the process spent meanwhile (``sys_s``), and the wall-clock time they started
  (``start``, ``time.time()``: jax.monitoring's clock)."""
  r0, start, t0 = resource.getrusage(resource.RUSAGE_SELF), time.time(), time.perf_counter()
  run()
  s, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
  return dict(s=s, faults=r1.ru_minflt - r0.ru_minflt, sys_s=r1.ru_stime - r0.ru_stime,
              start=start)


class JaxCandidate:
  """One model + layer implementation: a compiled train step and eval step on fixed data."""

  def __init__(self, model: str, shape: dict, batch: int, dtype: str, impl: str, seed=0):
    c = _config(model, shape, batch, dtype, impl)
    c.seed = seed
    c.num_train_steps = 1000
    plan = run_plan.make(c, check=False)
    setup = train.init_training(plan)
    # Placed as the trainer places them: uncommitted arrays would compile the step twice,
    # once for the first call and again for the committed state it returns.
    data_sharding, replicated = train._shardings(plan)
    self.state = jax.device_put(setup.state, replicated)
    rng = np.random.default_rng(seed)
    s = shape["size"]
    self.batch = jax.device_put(dict(
        image=jnp.asarray(rng.standard_normal((batch, s, s, shape["channels"]), np.float32)),
        label=jnp.asarray(rng.integers(0, shape["classes"], batch), jnp.int32),
        mask=jnp.ones((batch,), jnp.float32)), data_sharding)
    # The trainer's steps: exported and read back when the compilation cache is on
    # (shufflenet_jax/aot.py; bench_compile's warm process), else plain jit.
    self.train_step = aot.step(
        train.make_train_step(setup.train_graphdef, setup.tx, shape["classes"], 0.0),
        dict(step="bench train", **plan.program_key()), donate_argnums=(0,),
        in_shardings=(replicated, data_sharding), out_shardings=(replicated, replicated))
    self.eval_step = aot.step(train.make_eval_step(setup.eval_graphdef, shape["classes"]),
                              dict(step="bench eval", **plan.program_key()),
                              in_shardings=(replicated, data_sharding), out_shardings=replicated)
    self.first = first_calls(lambda: (self.run_train(1), self.run_eval(1)))
    self.compile_s = self.first["s"]

  def run_train(self, steps: int) -> None:
    for _ in range(steps):
      self.state, metrics = self.train_step(self.state, self.batch)
    jax.block_until_ready(metrics["loss"])

  def run_eval(self, steps: int) -> None:
    for _ in range(steps):
      out = self.eval_step(self.state, self.batch)
    jax.block_until_ready(out["top1"])


class TorchCandidate:
  """The PyTorch twin: channels_last, SGD momentum 0.9 + weight decay, optional AMP."""

  def __init__(self, model: str, shape: dict, batch: int, dtype: str, seed=0):
    import torch
    from benchmarks import torch_reference
    self.torch = torch
    self.device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    net = torch_reference.from_registry_name(model, stem=shape["stem"],
                                             num_classes=shape["classes"],
                                             in_channels=shape["channels"])
    if self.device == "cuda":  # as a PyTorch user would time convolutions on a GPU
      torch.backends.cudnn.benchmark = True
    self.net = net.to(self.device).to(memory_format=torch.channels_last)
    self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9, weight_decay=4e-5)
    s = shape["size"]
    self.x = torch.randn(batch, shape["channels"], s, s, device=self.device).to(
        memory_format=torch.channels_last)
    self.y = torch.randint(0, shape["classes"], (batch,), device=self.device)
    self.amp = dtype == "bfloat16"
    # Its first calls (set-up: first touches of memory, oneDNN's kernel choices), then a
    # second pair, untimed.
    self.first = first_calls(lambda: (self.run_train(1), self.run_eval(1)))
    self.compile_s = self.first["s"]
    self.run_train(1)
    self.run_eval(1)

  def _autocast(self):
    return self.torch.autocast(self.device, dtype=self.torch.bfloat16, enabled=self.amp)

  def _sync(self):
    if self.device == "cuda":
      self.torch.cuda.synchronize()

  def run_train(self, steps: int) -> None:
    self.net.train()
    for _ in range(steps):
      with self._autocast():
        loss = self.torch.nn.functional.cross_entropy(self.net(self.x), self.y)
      self.opt.zero_grad(set_to_none=True)
      loss.backward()
      self.opt.step()
    loss.item()
    self._sync()

  def run_eval(self, steps: int) -> None:
    self.net.eval()
    with self.torch.no_grad(), self._autocast():
      for _ in range(steps):
        out = self.net(self.x)
    out.sum().item()
    self._sync()


def time_side_by_side(cands: dict, kind: str, batch: int, steps: int, rounds: int,
                      warmup: int = 2) -> dict:
  """{name: median images/s over ``rounds``}; each round times every candidate in turn.

  ``warmup`` untimed rounds come first (the first candidates built ran up to 25% slower
  in their first rounds: the allocator and page tables still growing), and each round
  starts one candidate later than the one before, so no candidate always follows the
  same one (PyTorch's OpenMP threads spin for a while after its step)."""
  fns = {name: functools.partial(c.run_train if kind == "train" else c.run_eval, steps)
         for name, c in cands.items()}
  per = timing.side_by_side(fns, rounds, warmup)
  return {name: statistics.median(batch * steps / s for s in per[name]) for name in cands}


def step_bytes(cand: JaxCandidate) -> float:
  """The bytes the compiled train step reads and writes: XLA's cost analysis of the
  optimized program (every fused op's operands and outputs once: the activations, the
  parameters, their gradients and the optimizer state), the step's memory traffic if no
  cache held anything between ops."""
  cost = cand.train_step.lower(cand.state, cand.batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["bytes accessed"])


def copy_bandwidth(rounds: int = 10) -> float:
  """Bytes/s of the default device streaming an array once in and once out (``x + 1`` on
  256 MB on a CPU, 2 GB on an accelerator): the bandwidth a memory-bound step can use."""
  n = (64 if jax.default_backend() == "cpu" else 512) << 20  # float32 elements
  f = jax.jit(lambda a: a + 1, donate_argnums=0)  # in place: no allocation timed
  x = f(jnp.ones((n,), jnp.float32)).block_until_ready()
  best = float("inf")
  for _ in range(rounds):
    t = time.perf_counter()
    x = f(x).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * 4 * n / best


def parse_models(text: str) -> list[str]:
  """A comma-separated list of registry names, each checked (ValueError: unknown)."""
  models = [m.strip() for m in text.split(",") if m.strip()]
  for m in models:
    registry.model_spec(m)
  return models


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.bench_train", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default=",".join(DEFAULT_MODELS))
  p.add_argument("--shape", default="proxy", choices=tuple(SHAPES))
  p.add_argument("--batch", type=int, default=0, help="0: the shape's default")
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                 help="pointwise:depthwise[:pool[:units]] (defaults: window, fused), "
                 "'auto' or 'all' "
                 f"(the pairs {', '.join(ALL_IMPLS)}); the default: the CPU default and "
                 "its settings one at a time, and the group-major layout with them")
  timing.add_arguments(p)
  p.add_argument("--no_torch", action="store_true", help="skip the PyTorch reference")
  p.add_argument("--no_eval", action="store_true", help="skip the eval-step table")
  p.add_argument("--bound", action="store_true",
                 help="add the train step's memory bound: its bytes accessed (XLA's cost "
                 "analysis) at the device's measured copy bandwidth, in img/s")
  p.add_argument("--out", help="write the markdown table here (e.g. results/bench_train.md)")
  args = p.parse_args(argv)

  try:
    models = parse_models(args.models)
    impls = []
    for spec in args.impls.split(","):
      spec = spec.strip()
      impls += ALL_IMPLS if spec == "all" else [check_impl(spec)]
    impls = list(dict.fromkeys(impls))
    timing.check_arguments(args)
    if not args.no_torch:
      try:
        import torch
      except ImportError:
        raise ValueError("PyTorch is not installed: pip install -r requirements-bench.txt "
                         "(or pass --no_torch)")
      torch.set_num_threads(os.cpu_count() or 1)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  shape = SHAPES[args.shape]
  batch = args.batch or (256 if args.shape == "imagenet" and jax.default_backend() == "gpu"
                         else shape["batch"])
  kinds = ("train",) if args.no_eval else ("train", "eval")
  results = []  # (model, candidate, kind, img/s, compile s)
  bounds = {}  # (model, candidate) -> bytes accessed per train step
  bandwidths = [copy_bandwidth()] if args.bound else []  # again at the end: the max counts
  for model in models:
    cands = {}
    for impl in impls:
      print(f"[{model}] compiling jax {impl} ...", flush=True)
      cands[f"jax {impl}"] = JaxCandidate(model, shape, batch, args.dtype, impl)
      if args.bound:
        bounds[(model, f"jax {impl}")] = step_bytes(cands[f"jax {impl}"])
    if not args.no_torch:
      cands["pytorch"] = TorchCandidate(model, shape, batch, args.dtype)
    for kind in kinds:
      speeds = time_side_by_side(cands, kind, batch, args.steps, args.rounds, args.warmup)
      for name, ips in speeds.items():
        results.append((model, name, kind, ips, cands[name].compile_s))
        ref = speeds.get("pytorch")
        ratio = f"  x{ips / ref:.2f} of pytorch" if ref and name != "pytorch" else ""
        print(f"[{model}] {kind:5s} {name:22s} {ips:8.1f} img/s{ratio}", flush=True)

  if args.bound:
    bandwidths.append(copy_bandwidth())
  report(_table(results, args, shape, batch, bounds, bandwidths), args.out)
  return 0


def report(md: list[str], out: str | None) -> None:
  """Print a benchmark's markdown lines; write them to ``out`` too when given."""
  print("\n".join(md))
  if out:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(md) + "\n")
    print(f"wrote {out}")


def _table(results, args, shape, batch, bounds=None, bandwidths=()) -> list[str]:
  from experiments.arm_timing import versions
  import platform
  torch_version = ""
  if not args.no_torch:
    import torch
    torch_version = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
  device = jax.devices()[0]
  v = versions()
  md = [f"# Training-step throughput: JAX layer implementations vs PyTorch ({args.shape} shape)",
        "",
        f"Images/s, median of {args.rounds} rounds of {args.steps} steps after {args.warmup} "
        "untimed rounds; every candidate timed once per round, in turn (each round starting "
        "one candidate later), in one process. Ratio = JAX / PyTorch (same network, "
        "batch and thread count; PyTorch channels_last). Synthetic inputs.",
        ""]
  for kind in ("train", "eval"):
    rows = [r for r in results if r[2] == kind]
    if not rows:
      continue
    ref = {r[0]: r[3] for r in rows if r[1] == "pytorch"}
    header = ["model", "implementation", "img/s", "× PyTorch", "compile s"]
    table = [[model, name, f"{ips:.1f}",
              f"{ips / ref[model]:.2f}" if model in ref and name != "pytorch" else "",
              f"{comp:.1f}"] for model, name, _, ips, comp in rows]
    if bounds and kind == "train":
      header += ["GB accessed / step", "memory bound img/s", "% of bound"]
      for row, (model, name, _, ips, _) in zip(table, rows):
        nbytes = bounds.get((model, name))  # None for PyTorch: no XLA cost analysis
        if not nbytes:
          row += ["", "", ""]
          continue
        bound = batch * max(bandwidths) / nbytes
        row += [f"{nbytes / 1e9:.2f}", f"{bound:.0f}", f"{ips / bound:.0%}"]
    md += [f"## {kind} step", "", *mdtable.markdown(header, table), ""]
    if bounds and kind == "train":
      md += [f"Memory bound: the step's bytes accessed (XLA's cost analysis of the compiled "
             f"step: every fused op's operands and outputs once) moved at the device's "
             f"copy bandwidth, the faster of two measurements before and after the steps "
             f"({' and '.join(f'{b / 1e9:.1f}' for b in bandwidths)} GB/s: `x + 1` in place "
             f"on a large array); a step at 100% would be limited by memory traffic alone.",
             ""]
  md += ["## Provenance", "",
         f"- Shape: {shape['size']}x{shape['size']}x{shape['channels']}, {shape['stem']} stem, "
         f"{shape['classes']} classes, batch {batch}, {args.dtype}.",
         f"- Device: {device.platform} ({getattr(device, 'device_kind', '')}); CPU "
         f"{records.cpu_description()}, {os.cpu_count()} cores; "
         f"Python {platform.python_version()}.",
         f"- Libraries: jax {v['jax']}, flax {v['flax']}, optax {v.get('optax', '?')}"
         f"{torch_version}; allocator: {malloc.describe()} (shared by both frameworks).",
         f"- Commit {records.git_commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
         f"command: python -m benchmarks.bench_train {' '.join(sys.argv[1:])}".rstrip(),
         ""]
  return md


if __name__ == "__main__":
  malloc.reexec_with_tcmalloc()
  sys.exit(main())
