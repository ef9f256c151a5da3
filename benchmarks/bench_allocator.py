"""The JAX train step on tcmalloc vs the system malloc, side by side.

  python -m benchmarks.bench_allocator                       # 1.0x g3, auto impls
  python -m benchmarks.bench_allocator --model=shufflenet_0.5x_g3 --rounds=8
  python -m benchmarks.bench_allocator --out=results/bench_allocator.md

Starts two worker processes that build the same compiled train step as
``benchmarks.bench_train`` (proxy shape: 28x28x1, small stem, batch 128), one with
tcmalloc preloaded (``LD_PRELOAD``) and one on the system allocator, then
asks them in turn (alternating which goes first), ``--rounds`` times, to time ``--steps``
steps, so both see the same machine load. Prints each round's ms/step and the kernel (sys) CPU time per step, the
medians and the ratio. Why it matters: shufflenet_jax/malloc.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shufflenet_jax import malloc, records, timing

ALLOCATORS = ("tcmalloc", "system")


def worker(model: str, impl: str, steps: int) -> None:
  """Build the step, then for every line on stdin time ``steps`` steps; answer in JSON."""
  from benchmarks.bench_train import SHAPES, JaxCandidate
  cand = JaxCandidate(model, SHAPES["proxy"], SHAPES["proxy"]["batch"], "float32", impl)
  cand.run_train(steps)  # first touches of the step's memory
  print(json.dumps(dict(ready=True, allocator=malloc.describe(), impl=impl)), flush=True)
  for _ in sys.stdin:
    r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cand.run_train(steps)
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps(dict(ms=wall / steps * 1e3, sys_ms=(r1.ru_stime - r0.ru_stime) / steps * 1e3,
                          user_ms=(r1.ru_utime - r0.ru_utime) / steps * 1e3)), flush=True)


def _start(allocator: str, args) -> subprocess.Popen:
  env = dict(os.environ)
  env.pop("LD_PRELOAD", None)
  if allocator == "tcmalloc":
    env["LD_PRELOAD"] = malloc.find_tcmalloc()
  cmd = [sys.executable, "-m", "benchmarks.bench_allocator", "--worker",
         f"--model={args.model}", f"--impl={args.impl}", f"--steps={args.steps}"]
  return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1])


def _read(proc: subprocess.Popen) -> dict:
  line = proc.stdout.readline()
  if not line:
    raise RuntimeError(f"a benchmark worker exited (status {proc.wait()}); see its stderr above")
  return json.loads(line)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.bench_allocator", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="shufflenet_1.0x_g3")
  p.add_argument("--impl", default="auto")
  timing.add_arguments(p, warmup=1, each="worker")
  p.add_argument("--out", help="write the markdown table here")
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    worker(args.model, args.impl, args.steps)
    return 0
  try:
    timing.check_arguments(args)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if malloc.find_tcmalloc() is None:
    print("error: tcmalloc is not installed (apt-get install libtcmalloc-minimal4)",
          file=sys.stderr)
    return 2
  from benchmarks.bench_train import report, resolve_model_impl
  try:
    args.impl = resolve_model_impl(args.model, args.impl)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"[{args.model}] starting one worker per allocator (compiles the step) ...", flush=True)
  procs = {a: _start(a, args) for a in ALLOCATORS}
  try:
    info = {a: _read(proc) for a, proc in procs.items()}
    runs = {a: [] for a in ALLOCATORS}
    for r in range(-args.warmup, args.rounds):
      for a in (ALLOCATORS if r % 2 == 0 else ALLOCATORS[::-1]):  # alternate who goes first
        proc = procs[a]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        runs[a].append(_read(proc))
      if r < 0:
        for a in ALLOCATORS:
          runs[a].pop()
        continue
      print(f"round {r + 1}: " + ", ".join(
          f"{a} {runs[a][-1]['ms']:.0f} ms/step (sys {runs[a][-1]['sys_ms']:.0f} ms)"
          for a in ALLOCATORS), flush=True)
  finally:
    for proc in procs.values():
      proc.stdin.close()
      proc.wait()
  med = {a: {k: statistics.median(x[k] for x in runs[a]) for k in ("ms", "sys_ms", "user_ms")}
         for a in ALLOCATORS}
  ratio = med["system"]["ms"] / med["tcmalloc"]["ms"]
  from experiments.arm_timing import versions
  from shufflenet_jax import mdtable
  v = versions()
  md = [f"# JAX train step: tcmalloc vs the system malloc ({args.model}, proxy shape)", "",
        f"Medians of {args.rounds} rounds of {args.steps} steps after {args.warmup} untimed, "
        "the two worker processes "
        "timed in turn (alternating which goes first). CPU ms = user / sys CPU time per "
        "step (both cores).", "",
        *mdtable.markdown(["allocator", "ms/step", "user CPU ms", "sys CPU ms"], [
            [info[a]["allocator"], f"{med[a]['ms']:.0f}", f"{med[a]['user_ms']:.0f}",
             f"{med[a]['sys_ms']:.0f}"] for a in ALLOCATORS])]
  md += ["", f"tcmalloc's step is {ratio:.2f}x as fast as the system malloc's.", "",
         "## Provenance", "",
         f"- {args.model}, implementation {info['tcmalloc']['impl']}, 28x28x1, small stem, "
         "batch 128, float32; synthetic inputs.",
         f"- CPU {records.cpu_description()}, {os.cpu_count()} cores; "
         f"Python {platform.python_version()}; "
         f"jax {v['jax']}, flax {v['flax']}.",
         f"- Commit {records.git_commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
         f"command: python -m benchmarks.bench_allocator {' '.join(sys.argv[1:])}".rstrip(), ""]
  report(md, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
