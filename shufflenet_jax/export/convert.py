"""Lowering and conversion: the model with the plain lax layer implementations ->
``jax2tf.convert`` (native serialization: StableHLO) -> ``tf.function`` with a static input
shape -> ``tf.lite.TFLiteConverter`` (builtin ops only; int8: post-training quantization
calibrated on real images) -> checked ``.tflite`` bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flax import nnx

from shufflenet_jax.export import PRECISIONS, RANGE_CHUNK
from shufflenet_jax.export.quantize import (average_ranges, calibrate_batch_stats,
                                            dataset_images)
from shufflenet_jax.export.verify import ExportCheckError, ExportReport, check
from shufflenet_jax.models import registry


def export_overrides(name: str, precision: str) -> dict:
  """Constructor arguments for export: the plain lax convolutions (they map to CONV_2D and
  DEPTHWISE_CONV_2D) and, for int8, the stride-2 average pool as a depthwise conv
  (XNNPACK takes no quantized AVERAGE_POOL_2D). Only arguments the model accepts."""
  _check("precision", precision, PRECISIONS)
  wanted = dict(pointwise_impl="lax", depthwise_impl="lax",
                pool_impl="depthwise" if precision == "int8" else "window",
                materialize_units=False)  # its while loop is a training-speed device
  accepted = registry.model_arguments(name)
  return {k: v for k, v in wanted.items() if accepted is None or k in accepted}


def _check(what: str, value, valid) -> None:
  if value not in valid:
    raise ValueError(f"{what}={value!r}; valid: {', '.join(map(str, valid))}")


def to_tflite(model: nnx.Module, input_shape: tuple[int, ...], precision: str = "float32",
              representative: np.ndarray | None = None, *,
              float_classifier: bool = True, range_chunk: int = RANGE_CHUNK) -> bytes:
  """The model (eval mode) as a .tflite flatbuffer for a static ``input_shape`` (N, H, W, C).
  int8 needs ``representative`` images (N', H, W, C) to calibrate the activation ranges;
  weights and activations are int8, the input and output stay float32.

  ``float_classifier`` (int8 only) keeps the last op (the classifier, which produces the
  logits) in float32 behind a DEQUANTIZE: one int8 scale for all logits is coarse when
  they spread widely (a Fashion-MNIST ShuffleNet trained without label smoothing has
  logits over +-600: an int8 step of 4.5, enough to swap the top two classes on ~7% of the
  test images). It costs one small float matmul; XNNPACK takes it like the rest.

  ``range_chunk`` (int8): each activation tensor's range is the mean over chunks of
  ``range_chunk`` calibration images of the chunk's min and max (:func:`average_ranges`),
  not the converter's min and max over every image: a few rare extreme values otherwise
  set the int8 step for all images. 0 keeps the converter's ranges."""
  import tensorflow as tf
  from jax.experimental import jax2tf
  _check("precision", precision, PRECISIONS)
  model.eval()
  graphdef, state = nnx.split(model)

  def forward(x):
    return nnx.merge(graphdef, state)(x)

  import warnings
  with warnings.catch_warnings():  # native_serialization=True is the default and the path
    warnings.simplefilter("ignore", DeprecationWarning)
    converted = jax2tf.convert(forward, native_serialization=True, with_gradient=False)
  fn = tf.function(converted, input_signature=[tf.TensorSpec(input_shape, tf.float32)],
                   autograph=False)
  converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if precision == "int8":
    if representative is None or len(representative) == 0:
      raise ValueError("int8 export needs representative images to calibrate on")
    if range_chunk < 0:
      raise ValueError(f"range_chunk={range_chunk}; valid: 0 (min/max over all images) or a "
                       "positive number of images per chunk")
    batch = input_shape[0]
    chunks = [[np.asarray(representative[i:i + batch], np.float32)]
              for i in range(0, len(representative) - batch + 1, batch)]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(chunks)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # Calibrate, then quantize through the debugger's path, which can leave named ops in
    # float (selective quantization): the op that writes the output tensor, the classifier.
    output = fn.get_concrete_function().outputs[0].name.split(":")[0]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: iter(chunks),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=[output] if float_classifier else []))
    if range_chunk:
      per = max(1, range_chunk // batch)
      debugger.calibrated_model = average_ranges(
          debugger.calibrated_model, [chunks[i:i + per] for i in range(0, len(chunks), per)])
    return debugger.get_nondebug_quantized_model()
  return converter.convert()


def export(model: nnx.Module, name: str, input_shape: tuple[int, ...], precision: str,
           *, calibration: np.ndarray, out: str | Path | None = None,
           num_check_images: int = 8, float_classifier: bool = True, equalize: bool = True,
           range_chunk: int = RANGE_CHUNK) -> tuple[bytes, ExportReport]:
  """Converts and checks; writes ``out`` only if every check passes (else raises
  ExportCheckError; the rejected file is kept as ``<out>.rejected`` for inspection).

  ``equalize`` (int8, ShuffleNet): a copy of the model has its per-channel activation
  ranges equalized on the calibration images before conversion (:mod:`equalize`; the
  float function is unchanged). The checks compare against ``model`` itself."""
  from shufflenet_jax.equalize import equalize_ranges
  from shufflenet_jax.models.shufflenet import ShuffleNet
  converted = model
  equalized = precision == "int8" and equalize and isinstance(model, ShuffleNet)
  if equalized:
    converted = nnx.clone(model)
    equalize_ranges(converted, calibration)
  tflite = to_tflite(converted, input_shape, precision, calibration,
                     float_classifier=float_classifier, range_chunk=range_chunk)
  batch = input_shape[0]
  n = max(batch, num_check_images // batch * batch)
  report = check(name, tflite, model, input_shape, precision, calibration[:n])
  report.equalized = equalized
  if out is not None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    target = out if report.ok else out.with_name(out.name + ".rejected")
    target.write_bytes(tflite)
  if not report.ok:
    raise ExportCheckError(report, tflite)
  return tflite, report


def export_registry_model(name: str, resolution: tuple[int, int], precision: str, *,
                          batch: int = 1, seed: int = 0, num_calibration: int = 64,
                          out: str | Path | None = None, float_classifier: bool = True,
                          equalize: bool = True, range_chunk: int = RANGE_CHUNK,
                          **model_kwargs):
  """A fresh registry model, its BN statistics calibrated on real images (see
  :func:`calibrate_batch_stats`), exported and checked. Returns (tflite, report)."""
  model = registry.create_model(name, rngs=registry.KeyStream(seed),
                                **export_overrides(name, precision), **model_kwargs)
  channels = model_kwargs.get("in_channels", 3)
  images = dataset_images(num_calibration, (*resolution, channels))
  calibrate_batch_stats(model, images)
  return export(model, name, (batch, *resolution, channels), precision, calibration=images,
                out=out, float_classifier=float_classifier, equalize=equalize,
                range_chunk=range_chunk)
