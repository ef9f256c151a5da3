"""JAX -> TFLite / LiteRT export, its checks, and a CPU latency harness (docs/design.md section 6).

Modules: ``convert`` (lowering and conversion), ``quantize`` (int8 calibration),
``verify`` (the checks, running a .tflite), ``timing`` (latency), ``runs`` (a training
run's checkpoint, int8 agreement), ``cli``. Everything below is importable from here.

Path: the model (fresh, or the latest checkpoint of a run's workdir) with the plain ``lax``
layer implementations -> ``jax2tf.convert`` (native serialization: StableHLO) ->
``tf.function`` with a static input shape -> ``tf.lite.TFLiteConverter`` (builtin ops only;
int8: post-training quantization calibrated on real images, after equalizing a ShuffleNet's
per-channel activation ranges, see ``equalize.py``) -> ``.tflite``.

Every export is checked before it is written:
  * the graph holds only TFLite builtin ops (no STABLEHLO_*, custom or Flex ops);
  * XNNPACK takes every op (one delegate partition and no op left to the interpreter);
  * float32: the logits match the model's (max abs difference <= ``FLOAT32_TOLERANCE``) on
    real images, the reference being the JAX model evaluated in float64, so that the check
    measures the export's own rounding; JAX's float32 logits are reported beside it (at
    720x1280 each float32 runtime is ~5e-5 from the exact logits, and the two can differ
    from each other by twice that); int8: the top-1 class agrees with JAX's float32 model.
A model that fails a check raises :class:`ExportCheckError` naming the offending ops, and
nothing is written under the requested name.

  python -m shufflenet_jax.export --model=shufflenet_0.5x_g3 --resolution=224,224 \\
      --precision=int8 --out=/tmp/shufflenet_0.5x_g3_int8.tflite --time
  python -m shufflenet_jax.export --workdir=runs/proxy --precision=int8 --out=... --agreement
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Light constants, here so that the CLI checks its flags before TensorFlow is imported.
PRECISIONS = ("float32", "int8")
# int8 activation ranges: the mean, over chunks of this many calibration images, of each
# chunk's min and max (0: the converter's min and max over all of them). See to_tflite.
RANGE_CHUNK = 5

# Everything else loads on first use (PEP 562): `python -m shufflenet_jax.export` with a bad
# flag answers in about a second instead of after importing TensorFlow and LiteRT.
_FROM = {
    "verify": ("FLOAT32_TOLERANCE", "ExportCheckError", "ExportReport", "check",
               "classifier_dtype", "exact_logits", "graph_ops", "interpreter", "jax_logits",
               "run_tflite", "xnnpack_coverage"),
    "quantize": ("CALIBRATION_DATASET", "average_ranges", "calibrate_batch_stats",
                 "dataset_images", "tensor_ranges", "train_images"),
    "convert": ("export", "export_overrides", "export_registry_model", "to_tflite"),
    "timing": ("latency", "latency_side_by_side"),
    "runs": ("export_run", "int8_agreement"),
    "cli": ("main",),
}
_MODULE_OF = {name: module for module, names in _FROM.items() for name in names}

__all__ = ["PRECISIONS", "RANGE_CHUNK", *_MODULE_OF]


def __getattr__(name: str):
  if name in _MODULE_OF:
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
