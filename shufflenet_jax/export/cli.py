"""``python -m shufflenet_jax.export``: export (and time) a registry model or a run."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import shufflenet_jax.export as export_package
from shufflenet_jax import catalog
from shufflenet_jax.export import PRECISIONS, RANGE_CHUNK


def _check_flags(args) -> tuple[int, int] | None:
  """Every flag that can be checked without TensorFlow or JAX (ValueError, one line);
  returns --model's (H, W)."""
  if bool(args.model) == bool(args.workdir):
    raise ValueError("give exactly one of --model NAME or --workdir DIR")
  if args.agreement and not args.workdir:
    raise ValueError("--agreement needs --workdir (a model trained on the dataset)")
  if args.workdir:
    config = Path(args.workdir) / "config.json"
    if not config.exists():
      raise ValueError(f"{config} does not exist: {args.workdir} is not a training run's "
                       "workdir")
    return None
  catalog.preset(args.model)  # a clear error for an unknown name
  try:
    h, w = (int(v) for v in args.resolution.split(","))
  except ValueError:
    raise ValueError(f"--resolution={args.resolution!r}; expected H,W such as 224,224") from None
  return h, w


def main(argv: list[str] | None = None) -> int:
  import argparse
  p = argparse.ArgumentParser(prog="python -m shufflenet_jax.export", description=export_package.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", help="registry name (a fresh model, BN calibrated on real images)")
  p.add_argument("--workdir", help="a training run: export its latest checkpoint")
  p.add_argument("--resolution", default="224,224", help="H,W for --model (default 224,224)")
  p.add_argument("--precision", default="float32", choices=PRECISIONS)
  p.add_argument("--out", help="where to write the .tflite (default: not written)")
  p.add_argument("--time", action="store_true", help="time it: 1 thread, XNNPACK")
  p.add_argument("--int8_classifier", action="store_true",
                 help="int8: quantize the classifier too (default: it stays float32)")
  p.add_argument("--no_equalize", action="store_true",
                 help="int8: skip the activation-range equalization (shufflenet_jax/equalize.py)")
  p.add_argument("--range_chunk", type=int, default=RANGE_CHUNK,
                 help="int8: activation ranges are the mean of per-chunk min/max over chunks "
                      f"of this many calibration images; 0: min/max over all (default "
                      f"{RANGE_CHUNK})")
  p.add_argument("--calibration_dataset", default="",
                 help="with --workdir: calibrate and check on this dataset's images (e.g. "
                      "fashion_mnist for converted ImageNet weights without ImageNet; "
                      "default: the run's own training images)")
  p.add_argument("--agreement", action="store_true",
                 help="with --workdir: int8 vs float top-1 agreement on the whole eval split")
  args = p.parse_args(argv)
  try:
    resolution = _check_flags(args)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  from shufflenet_jax import input_pipeline
  from shufflenet_jax.export.convert import export_registry_model
  from shufflenet_jax.export.runs import export_run, int8_agreement
  from shufflenet_jax.export.timing import latency
  from shufflenet_jax.export.verify import ExportCheckError
  try:
    if args.agreement:
      print(json.dumps(int8_agreement(args.workdir, float_classifier=not args.int8_classifier,
                                      equalize=not args.no_equalize,
                                      range_chunk=args.range_chunk), indent=1))
      return 0
    if args.model:
      tflite, report = export_registry_model(args.model, resolution, args.precision,
                                             out=args.out,
                                             float_classifier=not args.int8_classifier,
                                             equalize=not args.no_equalize,
                                             range_chunk=args.range_chunk)
    else:
      tflite, report = export_run(args.workdir, args.precision, out=args.out,
                                  calibration_dataset=args.calibration_dataset or None,
                                  float_classifier=not args.int8_classifier,
                                  equalize=not args.no_equalize, range_chunk=args.range_chunk)
  except ExportCheckError as e:
    print(f"error: {e}", file=sys.stderr)
    print(json.dumps(dataclasses.asdict(e.report), indent=1), file=sys.stderr)
    return 1
  except input_pipeline.DatasetUnavailableError as e:
    hint = (" To calibrate and check on other images, pass --calibration_dataset=fashion_mnist."
            if args.workdir else "")
    print(f"error: {e}{hint}", file=sys.stderr)
    return 2
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(dataclasses.asdict(report), indent=1))
  if args.time:
    print(json.dumps(latency(tflite), indent=1))
  return 0
