"""How fast could a better kernel make the train step? The step with one layer made free.

  python -m benchmarks.bench_bound                          # 1x g3 and 0.5x g3, proxy shape
  python -m benchmarks.bench_bound --models=shufflenet_1.0x_g8 --out=results/bench_bound.md

Issue 29 asks for a CPU train step 1.5x PyTorch's. The profile (docs/performance.md) puts
most of the step in memory-bound passes around the depthwise conv, batch norm + ReLU and
the channel shuffle, which oneDNN fuses into its kernels. Before writing a kernel for one of
them (oneDNN through ``jax.ffi``), this bounds what it could give: the same train step is
compiled with that layer replaced by a stand-in of the same shapes that costs almost
nothing, and timed side by side with the real step and PyTorch. No kernel can make the
layer cheaper than free, so the stand-in's speed is an upper bound on what replacing it
can reach. The stand-ins (numbers are wrong, shapes and gradient paths are kept):

  depthwise   the 3x3 depthwise conv -> its centre tap only: ``x[::s, ::s] * w[1, 1]``
  bn_act      batch norm (+ residual) + ReLU -> ``x * scale + bias`` (+ residual, ReLU),
              no batch statistics, no running averages
  shuffle     the channel shuffle -> the identity
  all         the three together

Prints images/s and the ratio to PyTorch per variant; synthetic inputs, as bench_train.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

os.environ.setdefault("SHUFFLENET_JAX_AOT", "off")  # a stand-in must not reuse a kept program

import jax  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.bench_train import (SHAPES, JaxCandidate, TorchCandidate,  # noqa: E402
                                    check_impl, parse_models, time_side_by_side)
from shufflenet_jax import malloc, timing  # noqa: E402
from shufflenet_jax.models import layers, ops  # noqa: E402

VARIANTS = ("as is", "depthwise", "bn_act", "shuffle", "all")


def _free_depthwise(x, kernel, stride=1, impl="lax"):
  return x[..., ::stride, ::stride, :] * kernel[1, 1, 0]


def _free_bn_act(bn, x, residual=None, relu=False, feature_axes=(-1,)):
  y = x * bn.scale[...] + bn.bias[...]
  if residual is not None:
    y = y + residual
  return jax.nn.relu(y) if relu else y


def _free_shuffle(x, groups, order="paper"):
  return x


STAND_INS = {"depthwise": (layers, "depthwise_conv", _free_depthwise),
             "bn_act": (layers, "batch_norm_act", _free_bn_act),
             "shuffle": (ops, "channel_shuffle", _free_shuffle)}


@contextlib.contextmanager
def stand_ins(variant: str):
  """Within the block, the layers ``variant`` names are their free stand-ins."""
  chosen = [p for name, p in STAND_INS.items() if variant in (name, "all")]
  saved = [(mod, attr, getattr(mod, attr)) for mod, attr, _ in chosen]
  try:
    for mod, attr, fn in chosen:
      setattr(mod, attr, fn)
    yield
  finally:
    for mod, attr, fn in saved:
      setattr(mod, attr, fn)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.bench_bound", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default="shufflenet_1.0x_g3,shufflenet_0.5x_g3")
  timing.add_arguments(p)
  p.add_argument("--out", help="write the markdown table here")
  args = p.parse_args(argv)
  try:
    models = parse_models(args.models)
    for m in models:
      if not m.startswith("shufflenet_"):
        raise ValueError(f"--models: {m} is not a ShuffleNet; the stand-ins replace "
                         "ShuffleNet's layers")
    timing.check_arguments(args)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
  except ImportError:
    print("error: PyTorch is not installed: pip install -r requirements-bench.txt",
          file=sys.stderr)
    return 2
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  shape = SHAPES["proxy"]
  batch = shape["batch"]
  impl = check_impl("auto")
  md = ["# The train step with one layer made free: an upper bound on a faster kernel",
        "", f"Images/s of the CPU default's train step (implementations {impl}; proxy "
        "shape, batch 128, float32) with the named layer replaced by a stand-in of the "
        "same shapes that costs almost nothing (benchmarks/bench_bound.py's docstring), side by side with the real step "
        f"and PyTorch: median of {args.rounds} rounds of {args.steps} steps after "
        f"{args.warmup} untimed rounds, in one process. A kernel for that layer cannot make "
        "the step faster than its stand-in does.", "",
        "| model | variant | img/s | x of as is | x of PyTorch |", "|---|---|---|---|---|"]
  for model in models:
    cands = {}
    for v in VARIANTS:
      print(f"[{model}] compiling the train step, {v} ...", flush=True)
      with stand_ins(v):
        cands[v] = JaxCandidate(model, shape, batch, "float32", impl)
    cands["pytorch"] = TorchCandidate(model, shape, batch, "float32")
    speeds = time_side_by_side(cands, "train", batch, args.steps, args.rounds, args.warmup)
    for v in VARIANTS:
      line = (f"| {model} | {v if v == 'as is' else v + ' free'} | {speeds[v]:.0f} | "
              f"{speeds[v] / speeds['as is']:.2f} | {speeds[v] / speeds['pytorch']:.2f} |")
      md.append(line)
      print(line, flush=True)
    md.append(f"| {model} | PyTorch {torch.__version__} | {speeds['pytorch']:.0f} | | 1.00 |")
  md += ["", report.provenance("benchmarks.bench_bound", argv,
                               f"; jax {jax.__version__}, {malloc.describe()}")]
  report.emit(md, args.out)
  return 0


if __name__ == "__main__":
  malloc.reexec_with_tcmalloc()
  sys.exit(main())
