"""Seed-runs per hour: k seeds vmapped in one program against k separate runs.

  python -m benchmarks.bench_seeds                       # 0.25x g3, 0.5x g3, 1x g8; k=1,4,8
  python -m benchmarks.bench_seeds --out=results/bench_seeds.md
  python -m benchmarks.bench_seeds --models=shufflenet_0.25x_g3 --ks=1,2 --steps=2 --rounds=1

For each model at the proxy shape (Fashion-MNIST 28x28 on the device, small stem, batch
128; shufflenet_jax/seed_group.py's programs) and each k: the first compile of the train
step (seconds) and the step time (median over ``--rounds`` rounds of ``--steps`` steps,
every candidate once per round, side by side in one process). A sweep run of ``--budget``
steps (default 469: one epoch, the ``power`` preset) then costs
  separate runs:  compile_1 + budget * step_1 per seed (compile_1 once per seed: no cache)
                  or budget * step_1 per seed (the persistent compilation cache: compiled once)
  vmapped group:  (compile_k + budget * step_k) / k per seed
and the table states seed-runs per hour for each, and the ratio vmapped / separate.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import jax

from shufflenet_jax import device_data, malloc, mdtable, records, seed_group, timing

DEFAULT_MODELS = ("shufflenet_0.25x_g3", "shufflenet_0.5x_g3", "shufflenet_1.0x_g8")


def _configs(model: str, k: int, batch: int):
  from configs import default
  out = []
  for s in range(k):
    c = default.get_config("proxy")
    c.model, c.seed, c.batch_size, c.data_on_device = model, s, batch, True
    c.wandb.mode = "disabled"
    out.append(c)
  return out


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_seeds", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
  ap.add_argument("--ks", default="1,4,8", help="seeds per program (1 = a separate run)")
  ap.add_argument("--batch", type=int, default=128)
  ap.add_argument("--steps", type=int, default=3, help="steps per round and candidate")
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--budget", type=int, default=469, help="steps of one sweep run")
  ap.add_argument("--out", help="write the markdown table here")
  args = ap.parse_args(argv)
  try:
    ks = sorted({int(x) for x in args.ks.split(",")})
    if not ks or min(ks) < 1 or 1 not in ks:
      raise ValueError
  except ValueError:
    print(f"error: --ks={args.ks!r}; valid: a comma-separated list of integers >= 1 that "
          "includes 1 (the separate run)", file=sys.stderr)
    return 2
  for name, v in (("--steps", args.steps), ("--rounds", args.rounds), ("--batch", args.batch),
                  ("--budget", args.budget)):
    if v < 1:
      print(f"error: {name}={v}; valid: an integer >= 1", file=sys.stderr)
      return 2
  models = args.models.split(",")
  splits = device_data.splits(_configs(models[0], 1, args.batch)[0])
  rows = []
  for model in models:
    progs, states, compile_s = {}, {}, {}
    for k in ks:
      try:
        progs[k] = seed_group.GroupProgram(_configs(model, k, args.batch), total_steps=1000,
                                           splits=splits)
      except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
      t = time.perf_counter()
      progs[k].compile()
      compile_s[k] = time.perf_counter() - t
      states[k] = progs[k].state
      states[k], m = progs[k].step(states[k])  # warm-up (the jit's own compile: cached)
      jax.block_until_ready(m)
      print(f"{model} k={k}: compiled in {compile_s[k]:.1f} s", flush=True)
    def steps(k):
      for _ in range(args.steps):
        states[k], m = progs[k].step(states[k])
      jax.block_until_ready(m)

    per = timing.side_by_side({k: functools.partial(steps, k) for k in ks}, args.rounds)
    times = {k: [s / args.steps for s in per[k]] for k in ks}
    for r in range(args.rounds):
      print(f"{model} round {r + 1}/{args.rounds}: " + ", ".join(
          f"k={k} {times[k][r] * 1000:.0f} ms/step" for k in ks), flush=True)
    step = {k: statistics.median(times[k]) for k in ks}
    per_hour_sep = 3600 / (compile_s[1] + args.budget * step[1])
    per_hour_cached = 3600 / (args.budget * step[1])
    for k in ks:
      per_hour = 3600 * k / (compile_s[k] + args.budget * step[k])
      rows.append([model, k, f"{compile_s[k]:.1f}",
                   f"{step[k] * 1000:.0f} [{min(times[k]) * 1000:.0f}-{max(times[k]) * 1000:.0f}]",
                   f"{k * args.batch / step[k]:.0f}", f"{per_hour:.1f}",
                   f"{per_hour / per_hour_sep:.2f}x", f"{per_hour / per_hour_cached:.2f}x"])
  header = ["model", "k", "first compile (s)", "step (ms): median [min-max]", "images/s (all seeds)",
            "seed-runs/hour", "vs k separate runs", "vs separate runs, cached compile"]
  md = ["# Seeds in one program: seed-runs per hour", "",
        f"`python -m benchmarks.bench_seeds --models={args.models} --ks={args.ks} "
        f"--steps={args.steps} --rounds={args.rounds} --budget={args.budget}`: proxy shape "
        f"(28x28x1, small stem, batch {args.batch}, data on the device), a sweep run of "
        f"{args.budget} steps; step = median of {args.rounds} rounds x {args.steps} steps, "
        "every k once per round, side by side in one process. k=1 is the separate run "
        "(no vmap); *vs k separate runs* counts a compile per separate run, *cached* "
        "counts none (the persistent compilation cache).", "",
        *mdtable.markdown(header, rows)]
  d = records.device_description()
  v = records.library_versions()
  md += ["", f"Machine: {d['device_count']}x {d['device_kind']} ({d['platform']}), "
         f"{d['cpu_count']} CPUs, {d['processor']}; allocator: {malloc.describe()}; jax "
         f"{v['jax']}, flax {v['flax']}; commit {records.git_commit()}.", ""]
  print("\n".join(md))
  if args.out:
    Path(args.out).write_text("\n".join(md))
    print(f"written: {args.out}")
  return 0


if __name__ == "__main__":
  malloc.reexec_with_tcmalloc()
  sys.exit(main())
