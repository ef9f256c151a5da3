"""The same exported model on several CPU inference engines, side by side in one process:
LiteRT (the .tflite, XNNPACK), ONNX Runtime (the .tflite converted by tf2onnx) and OpenVINO
(reading the .tflite), float32 and int8, one thread and all threads, each engine's output
checked against the JAX model before it is timed (shufflenet_jax/export/engines.py).

  python -m benchmarks.bench_engines                        # 1x g3 and 0.5x g3 at 224x224
  python -m benchmarks.bench_engines --out results/bench_engines.md

The model: the registry model with seed-0 weights and its BN statistics calibrated on real
images (as experiments/arm_timing.py), exported once per precision; every engine runs that
same .tflite (or its ONNX conversion). Latency does not depend on the weights' values; the
int8 top-1 agreement of an untrained model is only a coarse check (its logits are close
together), which is why the table also gives each int8 engine's largest logit difference
from LiteRT's int8 model, the graph they all come from.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks import report
from shufflenet_jax import mdtable
from shufflenet_jax.export import engines as eng


def exported(model_name: str, resolution: tuple[int, int], num_check: int):
  """({precision: tflite}, the JAX model, check images) for one registry model."""
  from shufflenet_jax.export import (PRECISIONS, calibrate_batch_stats, dataset_images,
                                     export, export_overrides)
  from shufflenet_jax.models import registry
  images = dataset_images(64 + num_check, (*resolution, 3))
  calib, check = images[:64], images[64:]
  out, model = {}, None
  for precision in PRECISIONS:
    m = registry.create_model(model_name, rngs=registry.KeyStream(0),
                              **export_overrides(model_name, precision))
    calibrate_batch_stats(m, calib)
    out[precision], _ = export(m, model_name, (1, *resolution, 3), precision,
                               calibration=calib)
    model = model or m  # the float model (the first precision) is the reference
  return out, model, check


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--models", default="shufflenet_1.0x_g3,shufflenet_0.5x_g3")
  p.add_argument("--resolution", default="224,224")
  p.add_argument("--engines", default=",".join(eng.ENGINES))
  p.add_argument("--threads", default=f"1,{os.cpu_count()}",
                 help="thread counts, each timed separately (default: 1 and all CPUs)")
  p.add_argument("--num_check", type=int, default=16, help="real images each engine is "
                 "checked on before timing")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--min_seconds", type=float, default=4.0)
  p.add_argument("--out")
  args = p.parse_args(argv)
  try:
    resolution, threads, models = _check_args(args)
    engines, skipped = [], []
    for e in args.engines.split(","):
      why = eng.available(e)  # ValueError for an unknown engine
      (skipped.append(f"{e}: {why}") if why else engines.append(e))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for s in skipped:
    print(f"warning: leaving out {s}", flush=True)

  rows, failed = [], []
  for model_name in models:
    t0 = time.time()
    tflites, model, images = exported(model_name, resolution, args.num_check)
    onnx = {prec: eng.to_onnx(t) for prec, t in tflites.items()} \
        if "onnxruntime" in engines else {}
    print(f"{model_name}: exported and converted in {time.time() - t0:.0f} s", flush=True)
    refs = eng.references(model, images)
    litert_int8 = eng.run_images(eng.runner("litert", tflites["int8"]), images)
    for n in threads:
      runs, checks = {}, {}
      for prec, tflite in tflites.items():
        for e in engines:
          run = eng.runner(e, tflite, num_threads=n, onnx=onnx.get(prec))
          c = eng.check(e, run, prec, images, refs,
                        litert_int8 if prec == "int8" else None)
          if not c.ok:
            failed += c.problems
            print(f"error: {model_name} {prec}: {'; '.join(c.problems)} (not timed)")
            continue
          x = images[:1].astype("float32")
          runs[(e, prec)], checks[(e, prec)] = (lambda run=run, x=x: run(x)), c
      lat = eng_latency(runs, args.rounds, args.min_seconds)
      for prec in tflites:
        best = min((v["median_ms"] for (e, pr), v in lat.items() if pr == prec),
                   default=None)
        for e in engines:
          if (e, prec) not in lat:
            continue
          v, c = lat[(e, prec)], checks[(e, prec)]
          check = (f"max diff {c.max_abs_diff:.1e}" if prec == "float32" else
                   f"top-1 {c.top1_agreement:.2f}, vs LiteRT {c.vs_litert:.2f}")
          rows.append([model_name, prec, n, e, f"{v['median_ms']:.2f}",
                       f"{v['q1_ms']:.2f}-{v['q3_ms']:.2f}", f"{v['median_ms'] / best:.2f}",
                       check])
          print(mdtable.row(rows[-1]), flush=True)

  header = ["model", "precision", "threads", "engine", "ms/image (median)", "IQR",
            "ratio to fastest", "check against JAX"]
  md = ["# CPU inference engines side by side", "",
        f"Milliseconds per {resolution[0]}x{resolution[1]} image (batch 1) of the same exported "
        f"model on each engine, all engines of one model, precision and thread count timed in "
        f"turn in one process ({args.rounds} rounds, at least {args.min_seconds:g} s per "
        "engine; shufflenet_jax/export/timing.py). Ratio: to the fastest engine of the same "
        "model, precision and thread count. Checked on "
        f"{args.num_check} Fashion-MNIST test images (resized, tiled to 3 channels) before "
        "timing: float32: largest logit difference from the float64 JAX model (tolerance "
        f"{eng.FLOAT32_TOLERANCE:.0e}); int8: top-1 agreement with JAX's float32 model and "
        "the largest logit difference from LiteRT's int8 model (untrained weights with "
        "calibrated BN: see benchmarks/bench_engines.py).", "",
        *mdtable.markdown(header, rows), ""]
  md += [f"Left out: {s}." for s in skipped] + [f"Failed its check: {f}." for f in failed]
  md += ["", report.provenance("benchmarks.bench_engines", argv, f"; {_versions()}"), ""]
  report.emit(md, args.out)
  return 1 if failed else 0


def _check_args(args) -> tuple[tuple[int, int], list[int], list[str]]:
  """(resolution, thread counts, models) from the flags, before anything heavy runs; a bad
  value is a ValueError that names it and what would be valid."""
  from shufflenet_jax import catalog
  try:
    resolution = tuple(int(x) for x in args.resolution.split(","))
    assert len(resolution) == 2 and min(resolution) >= 8
  except (ValueError, AssertionError):
    raise ValueError(f"--resolution={args.resolution!r}; expected H,W (each >= 8) such as "
                     "224,224") from None
  try:
    threads = sorted({int(t) for t in args.threads.split(",")})
    assert threads[0] >= 1
  except (ValueError, AssertionError):
    raise ValueError(f"--threads={args.threads!r}; expected thread counts >= 1 such as 1,2") \
        from None
  models = args.models.split(",")
  for m in models:
    catalog.preset(m)  # ValueError naming the unknown model
  if args.num_check < 1 or args.rounds < 1:
    raise ValueError(f"--num_check={args.num_check}, --rounds={args.rounds}; both must be >= 1")
  return resolution, threads, models


def eng_latency(runs: dict, rounds: int, min_seconds: float) -> dict:
  from shufflenet_jax.export.timing import invokes_side_by_side
  return invokes_side_by_side(runs, rounds=rounds, min_seconds=min_seconds,
                              max_runs=100000, warmup=5)


def _versions() -> str:
  from importlib.metadata import PackageNotFoundError, version
  out = []
  for pkg in ("ai-edge-litert", "onnxruntime", "tf2onnx", "openvino"):
    try:
      out.append(f"{pkg} {version(pkg)}")
    except PackageNotFoundError:
      pass
  return ", ".join(out)


if __name__ == "__main__":
  sys.exit(main())
