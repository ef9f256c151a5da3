"""Compile time of the train and eval steps: first compile (an empty persistent cache)
against cached compile (the same programs in a new process, the cache warm), per model, and
what a cached compile is made of: jax's compile phases and the steps' first execution.

  python -m benchmarks.bench_compile                     # the sweep models at the proxy shape
  python -m benchmarks.bench_compile --out results/bench_compile.md

Each measurement is a fresh Python process (benchmarks/bench_train.py's JaxCandidate: the
`auto` implementations, batch 128, synthetic data) that builds the model and runs one train
step and one eval step; "compile s" is the wall time of those two first calls (tracing,
lowering, XLA compilation or a cache load) less the time of a train and an eval step once
compiled ("steps s": the fastest of three more pairs of calls in the same process);
"setup s" is the process's time before the first calls (imports, model construction,
optimizer state, placing the state on the device as the trainer does). A cached compile is
split into the time the first calls spent inside jax's tracing, lowering and cache-load
spans (``jax.monitoring``) and the rest: the first execution, whose first touches of the
steps' buffers show as minor page faults and system CPU time (``getrusage``). The PyTorch
twin (requirements-bench.txt; skipped where torch or the model's twin is missing) runs its
first train and eval calls in a fresh process too: PyTorch compiles nothing, so its first
calls' excess over a later pair is what a first execution of the same network costs
without a compiler. The cold and warm processes of one model run back to back with their
own cache directory (shufflenet_jax/compile_cache.py), model after model; the benchmark
caches every program, however short its compile (main.py caches those of 0.5 s and more).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import report
from shufflenet_jax import malloc, mdtable

DEFAULT_MODELS = ("shufflenet_0.25x_g3", "shufflenet_0.5x_g3", "shufflenet_1.0x_g3",
                  "shufflenet_1.0x_g8", "shufflenet_2.0x_g3", "mobilenet_v1_1.0")

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from benchmarks.bench_train import SHAPES, JaxCandidate, TorchCandidate, auto_impl
from shufflenet_jax import compile_cache
compile_cache.enable()
import jax
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # cache every program
spans = []  # jax's own compile phases: tracing, lowering, XLA compile or cache load
jax.monitoring.register_event_time_span_listener(
    lambda event, start, end, **kw: "/jax/core/compile/" in event and spans.append((start, end)))
if sys.argv[2] == "torch":
  c = TorchCandidate(sys.argv[1], SHAPES["proxy"], SHAPES["proxy"]["batch"], "float32")
else:
  c = JaxCandidate(sys.argv[1], SHAPES["proxy"], SHAPES["proxy"]["batch"], "float32",
                   auto_impl())
total_s = time.perf_counter() - t0

def union(spans):  # seconds inside any span (a nested jit's lie inside its caller's)
  total, last = 0.0, 0.0
  for start, end in sorted(spans):
    total += max(0.0, end - max(start, last))
    last = max(last, end)
  return total

steps, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):  # what the two first calls spent running rather than compiling
  t = time.perf_counter()
  c.run_train(1)
  c.run_eval(1)
  steps.append(time.perf_counter() - t)
print(json.dumps(dict(
    first_calls_s=c.first["s"], first_faults=c.first["faults"], first_sys_s=c.first["sys_s"],
    step_s=min(steps), step_faults=(resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                                    - faults) / len(steps),
    total_s=total_s, phases_s=union(spans),
    first_phases_s=union([(max(a, c.first["start"]), b) for a, b in spans
                          if b > c.first["start"]]),
    entries=len(list(compile_cache.default_dir().glob("*-cache"))))))
"""


def measure(model: str, cache: Path, framework: str = "jax") -> dict:
  env = dict(os.environ, SHUFFLENET_JAX_CACHE=str(cache), JAX_PLATFORMS="cpu")
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  r = subprocess.run([sys.executable, "-c", _CHILD, model, framework], env=env,
                     capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
  if r.returncode:
    raise RuntimeError(f"{model}: the timing process failed:\n{r.stderr[-2000:]}")
  out = json.loads(r.stdout.strip().splitlines()[-1])
  out["setup_s"] = out["total_s"] - out["first_calls_s"]
  out["compile_s"] = out["first_calls_s"] - out["step_s"]
  return out


def torch_first_calls(model: str, cache: Path) -> dict | None:
  """The PyTorch twin's first train and eval calls in a fresh process (no compile: what a
  first execution costs there), or None where torch or the model's twin is missing."""
  try:
    import torch  # noqa: F401  (requirements-bench.txt)
    from benchmarks import torch_reference
    torch_reference.from_registry_name(model, stem="small", num_classes=10, in_channels=1)
  except (ImportError, ValueError):
    return None
  return measure(model, cache, "torch")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--models", default=",".join(DEFAULT_MODELS))
  p.add_argument("--out")
  args = p.parse_args(argv)
  from shufflenet_jax import catalog
  try:
    for model in args.models.split(","):
      catalog.preset(model)  # ValueError naming the unknown model
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  rows = []
  for model in args.models.split(","):
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as d:
      cold, warm = measure(model, Path(d)), measure(model, Path(d))
      twin = torch_first_calls(model, Path(d))
    rows.append([model, f"{cold['compile_s']:.1f}", f"{warm['compile_s']:.1f}",
                 f"{warm['first_phases_s']:.2f}",
                 f"{warm['compile_s'] - warm['first_phases_s']:.2f}",
                 f"{warm['first_faults'] / 1e3:.0f}", f"{warm['first_sys_s']:.2f}",
                 f"{warm['step_faults'] / 1e3:.1f}", f"{warm['step_s']:.2f}",
                 f"{twin['compile_s']:.2f}" if twin else "",
                 f"{twin['first_faults'] / 1e3:.0f}" if twin else "",
                 f"{twin['first_sys_s']:.2f}" if twin else "",
                 f"{cold['setup_s']:.1f}", f"{warm['setup_s']:.1f}", cold["entries"]])
    print(mdtable.row(rows[-1]), flush=True)
  header = ["model", "first compile s", "cached compile s", "of which jax compile s",
            "of which first execution s", "first-call faults k", "first-call system s",
            "faults k / later step", "steps s", "PyTorch first-call extra s",
            "PyTorch first-call faults k", "PyTorch first-call system s", "setup s (cold)",
            "setup s (warm)", "cache entries"]
  md = ["# Compile time: first compile vs persistent cache", "",
        "Train step + eval step at the proxy shape (28x28x1, batch 128, `auto` "
        "implementations), each figure from its own fresh process: first with an empty "
        "cache directory, then again with the cache it filled. Compile s = the wall time of "
        "the first train and eval calls less that of one compiled train + eval step "
        "(steps s, the fastest of three). A cached compile splits into the time inside jax's "
        "own tracing, lowering and cache-load spans during those calls (jax.monitoring: "
        "\"of which jax compile\") and the rest, the steps' first execution (\"of which "
        "first execution\"): the first touch of their buffers, counted as the minor page "
        "faults and the system CPU time of the first calls (getrusage; a later step's faults "
        "beside them). The PyTorch twin (channels_last, same threads; no compile) in a fresh "
        "process of its own: its first train + eval calls less a later pair, and their "
        "faults: what a first execution of the same network costs there. "
        "benchmarks/bench_compile.py says what is timed.",
        "",
        *mdtable.markdown(header, rows), "",
        report.provenance("benchmarks.bench_compile", argv,
                          f"; allocator: {malloc.describe()} (the trainer's)"), ""]
  report.emit(md, args.out)
  return 0


if __name__ == "__main__":
  malloc.reexec_with_tcmalloc()  # the timing processes inherit it, as main.py's steps run on it
  sys.exit(main())
