"""Exporting a training run's latest checkpoint, and its int8 model's agreement with the
float model over the whole eval split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from shufflenet_jax.export.convert import PRECISIONS, export, export_overrides
from shufflenet_jax.export import RANGE_CHUNK
from shufflenet_jax.export.quantize import dataset_images, train_images
from shufflenet_jax.export.verify import ExportReport, jax_logits, run_tflite


def export_run(workdir: str | Path, precision: str, *, out: str | Path | None = None,
               num_calibration: int = 256, calibration_dataset: str | None = None,
               **kw) -> tuple[bytes, ExportReport]:
  """The run's latest checkpoint exported at the run's input shape (batch 1), calibrated
  and checked on the first ``num_calibration`` images of the run's train split, or of
  ``calibration_dataset``'s eval split (resized and tiled to the run's input shape: e.g.
  Fashion-MNIST for converted ImageNet weights on a machine without ImageNet); ``kw`` as
  :func:`export`."""
  from shufflenet_jax import train
  plan, shape = _run_plan(workdir)
  model, _ = train.restore_model(workdir, **export_overrides(plan.model, precision))
  images = (train_images(plan.config, num_calibration, shape) if calibration_dataset is None
            else dataset_images(num_calibration, shape, dataset=calibration_dataset,
                                input_norm=plan.config.get("input_norm", "mean_std")))
  return export(model, plan.model, (1, *shape), precision, calibration=images, out=out, **kw)


def _run_plan(workdir):
  """(the run's plan, its input shape H, W, C)."""
  from shufflenet_jax import plan as run_plan, train
  plan = run_plan.make(train.run_config(workdir), check=False)  # as the run trained
  return plan, (*plan.resolution, plan.dataset.channels)


def int8_agreement(workdir: str | Path, *, num_images: int = 10000, num_calibration: int = 500,
                   out_dir: str | Path | None = None, float_classifier: bool = True,
                   equalize: bool = True, range_chunk: int = RANGE_CHUNK) -> dict:
  """For the run in ``workdir`` (its latest checkpoint): exports float32 and int8 at the
  run's input shape, and measures on ``num_images`` eval images the int8 model's top-1
  agreement with the JAX float model, and each one's accuracy. Calibration uses the
  train split's first images, never the ones measured."""
  from shufflenet_jax import train
  plan, shape = _run_plan(workdir)
  config = plan.config
  images, labels = dataset_images(num_images, shape, dataset=config.dataset,
                                  data_dir=config.get("data_dir"), labels=True)
  calib = train_images(config, num_calibration, shape)
  result = dict(workdir=str(workdir), model=config.model, eval_images=len(images),
                calibration_images=len(calib), float_classifier=float_classifier,
                equalize=equalize, range_chunk=range_chunk)
  float_model = None
  for precision in PRECISIONS:
    model, _ = train.restore_model(workdir, **export_overrides(config.model, precision))
    float_model = float_model or model
    out = Path(out_dir) / f"{config.model}_{precision}.tflite" if out_dir else None
    tflite, report = export(model, config.model, (1, *shape), precision, calibration=calib,
                            out=out, float_classifier=float_classifier, equalize=equalize,
                            range_chunk=range_chunk)
    logits = run_tflite(tflite, images)
    result[precision] = dict(report=dataclasses.asdict(report),
                             top1_acc=float(np.mean(logits.argmax(-1) == labels)),
                             pred=logits.argmax(-1))
  ref = jax_logits(float_model, images).argmax(-1)
  result["jax_float_top1_acc"] = float(np.mean(ref == labels))
  result["int8_vs_jax_float_top1_agreement"] = float(np.mean(result["int8"].pop("pred") == ref))
  result["float32_tflite_vs_jax_top1_agreement"] = float(
      np.mean(result["float32"].pop("pred") == ref))
  return result
