"""Where a training step's time goes: XLA thunk (CPU) or kernel (GPU) times by JAX operation.

  python -m benchmarks.profile_step                                  # 1.0x g3, auto impls
  python -m benchmarks.profile_step --model=shufflenet_1.0x_g8 --impl=matmul:shift --top=30
  python -m benchmarks.profile_step --shape=imagenet --batch=256 --dtype=bfloat16  # a GPU

Compiles the same train step as ``benchmarks.bench_train`` (proxy shape: 28x28x1, small
stem, batch 128), traces ``--steps`` steps with ``jax.profiler`` (XLA's per-thunk trace
events switched on), and maps every thunk to its HLO instruction in the compiled step. It
prints the step's wall time, then the thunk time per (pass, JAX primitive) -- ``bwd`` for
the instructions JAX's autodiff transposed -- and the ``--top`` single thunks with their
shapes. A thunk's time is the time it held its thread; work it hands to other threads of
the pool is not added again, so the sum is a lower bound of the CPU time. On a GPU the rows
are the device's kernels and copies (the trace's stream lines), each by the HLO instruction
that launched it; their sum against the wall time says how much of the step the GPU idles.
"""

from __future__ import annotations

import os

if "xla_cpu_enable_xprof_traceme" not in os.environ.get("XLA_FLAGS", ""):
  # Per-thunk trace events; must be set before JAX starts its CPU backend.
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_cpu_enable_xprof_traceme=true").strip()

import argparse  # noqa: E402
import collections  # noqa: E402
import glob  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

from benchmarks.bench_train import ALL_IMPLS, SHAPES, JaxCandidate, resolve_model_impl  # noqa: E402
from shufflenet_jax import malloc  # noqa: E402

# name = shape opcode(...): a shape is one array type or a tuple of them, "(f32[4]{0}, s32[4]{0})"
# (multi-output fusions, cuDNN's custom-calls)
_INSTR = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = (\(.*?\)|\S+) ([\w\-]+)\(")


def hlo_instructions(hlo_text: str) -> dict[str, tuple[str, str, str]]:
  """{instruction name: (shape, opcode, JAX op_name)} of a compiled module's text."""
  out = {}
  for line in hlo_text.splitlines():
    m = _INSTR.match(line)
    if m:
      op = re.search(r'op_name="([^"]*)"', line)
      out[m.group(1)] = (m.group(2), m.group(3), op.group(1) if op else "")
  return out


def conv_details(hlo_text: str) -> dict[str, str]:
  """{instruction name: "window=3x3 groups=240"} of the convolutions (XLA's, cuDNN's custom-
  calls) in a compiled module's text: which layer a slow convolution kernel belongs to."""
  out = {}
  for line in hlo_text.splitlines():
    m, win = _INSTR.match(line), re.search(r"window=\{size=(\S+?)[ }]", line)
    if m and win:
      groups = re.search(r"feature_group_count=(\d+)", line)
      out[m.group(1)] = f"window={win.group(1)} groups={groups.group(1) if groups else 1}"
  return out


def category(op_name: str, opcode: str = "") -> str:
  """'bwd mul' / 'fwd dot_general' ...: the pass and the last primitive of a JAX op_name
  (an HLO ``dot`` counts as dot_general whatever transpose rule produced it)."""
  if not op_name:
    return "(no JAX op)"
  last = "dot_general" if opcode == "dot" else re.sub(r"\[.*", "", op_name.split("/")[-1])
  return f"{'bwd' if 'transpose(' in op_name else 'fwd'} {last}"


def thunk_times(xplane_path: str, steps: int) -> collections.Counter:
  """{thunk name: ms per step} from a jax.profiler trace of ``steps`` steps."""
  from jax.profiler import ProfileData
  times = collections.Counter()
  for plane in ProfileData.from_file(xplane_path).planes:
    for line in plane.lines:
      if "Eigen" not in line.name and "PjRt" not in line.name:
        continue
      for ev in line.events:
        if "Execute" not in ev.name and "Await" not in ev.name:
          times[ev.name] += ev.duration_ns / 1e6 / steps
  return times


def device_times(xplane_path: str, steps: int) -> tuple[collections.Counter, dict]:
  """A GPU trace: ({HLO instruction: ms per step} of the kernels and copies on the device's
  stream lines, {line name: ms per step} of every device line, for the record)."""
  from jax.profiler import ProfileData
  times, lines = collections.Counter(), collections.Counter()
  for plane in ProfileData.from_file(xplane_path).planes:
    if not plane.name.startswith("/device:"):
      continue
    for line in plane.lines:
      for ev in line.events:
        ms = ev.duration_ns / 1e6 / steps
        lines[f"{plane.name} {line.name}"] += ms
        # Stream lines hold what ran; derived lines (XLA Ops, XLA Modules, Steps) repeat it.
        if line.name.startswith("Stream"):
          stats = {k: v for k, v in ev.stats}
          times[stats.get("hlo_op", ev.name)] += ms
  return times, dict(lines)


def profile(model: str, impl: str, steps: int, shape: str = "proxy", batch: int = 0,
            dtype: str = "float32") -> dict:
  # The candidate compiles and runs one step when it is built.
  cand = JaxCandidate(model, SHAPES[shape], batch or SHAPES[shape]["batch"], dtype, impl)
  text = cand.train_step.lower(cand.state, cand.batch).compile().as_text()
  instrs, convs = hlo_instructions(text), conv_details(text)
  with tempfile.TemporaryDirectory() as d:
    jax.profiler.start_trace(d)
    t = time.perf_counter()
    cand.run_train(steps)
    wall_ms = (time.perf_counter() - t) / steps * 1e3
    jax.profiler.stop_trace()
    files = glob.glob(f"{d}/**/*.xplane.pb", recursive=True)
    if not files:
      raise RuntimeError(f"jax.profiler wrote no trace under {d}")
    lines = {}
    if jax.default_backend() == "cpu":
      times = thunk_times(files[0], steps)
    else:
      times, lines = device_times(files[0], steps)
  return dict(wall_ms=wall_ms, times=times, instrs=instrs, convs=convs, lines=lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="shufflenet_1.0x_g3")
  p.add_argument("--impl", default="auto", help=f"auto or one of: {', '.join(ALL_IMPLS)}")
  p.add_argument("--shape", default="proxy", choices=sorted(SHAPES))
  p.add_argument("--batch", type=int, default=0, help="0: the shape's default batch")
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--steps", type=int, default=2)
  p.add_argument("--top", type=int, default=15, help="also list the N slowest thunks")
  args = p.parse_args(argv)
  try:
    impl = resolve_model_impl(args.model, args.impl)
    if args.steps < 1:
      raise ValueError(f"--steps={args.steps}; must be >= 1")
    if args.batch < 0:
      raise ValueError(f"--batch={args.batch}; must be >= 1 (or 0: the shape's default)")
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  batch = args.batch or SHAPES[args.shape]["batch"]
  print(f"[{args.model} {impl} {args.shape} batch {batch} {args.dtype} on "
        f"{jax.devices()[0].device_kind}] compiling and tracing {args.steps} steps ...",
        flush=True)
  r = profile(args.model, impl, args.steps, args.shape, batch, args.dtype)
  times, instrs = r["times"], r["instrs"]
  what = "thunks" if not r["lines"] else "kernels"
  for line, ms in sorted(r["lines"].items(), key=lambda kv: -kv[1]):
    print(f"  trace line {line}: {ms:.1f} ms/step")
  by_cat, count = collections.Counter(), collections.Counter()
  for name, ms in times.items():
    key = category(instrs[name][2], instrs[name][1]) if name in instrs else "(runtime)"
    by_cat[key] += ms
    count[key] += 1
  total = sum(times.values())
  where = "on their threads" if what == "thunks" else "on the device"
  print(f"wall {r['wall_ms']:.1f} ms/step; {what} {total:.1f} ms/step {where}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  print(f"{'ms/step':>9} {'share':>6} {what:>7}  pass + JAX primitive")
  for key, ms in by_cat.most_common():
    print(f"{ms:9.1f} {ms / total:6.1%} {count[key]:7d}  {key}")
  if args.top:
    print(f"\nslowest {args.top} {what}:")
    for name, ms in times.most_common(args.top):
      shape, opcode, op = instrs.get(name, ("?", "?", ""))
      conv = f" {r['convs'][name]}" if name in r["convs"] else ""
      print(f"{ms:9.2f}  {name} {shape}{conv} [{category(op, opcode)}]")
  return 0


if __name__ == "__main__":
  malloc.reexec_with_tcmalloc()
  sys.exit(main())
