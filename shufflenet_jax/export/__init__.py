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

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shufflenet_jax.export.verify import (  # noqa: E402
    FLOAT32_TOLERANCE, ExportCheckError, ExportReport, check, classifier_dtype, exact_logits,
    graph_ops, interpreter, jax_logits, run_tflite, xnnpack_coverage)
from shufflenet_jax.export.quantize import (  # noqa: E402
    CALIBRATION_DATASET, RANGE_CHUNK, average_ranges, calibrate_batch_stats, dataset_images,
    tensor_ranges, train_images)
from shufflenet_jax.export.convert import (  # noqa: E402
    PRECISIONS, export, export_overrides, export_registry_model, to_tflite)
from shufflenet_jax.export.timing import latency, latency_side_by_side  # noqa: E402
from shufflenet_jax.export.runs import export_run, int8_agreement  # noqa: E402
from shufflenet_jax.export.cli import main  # noqa: E402

__all__ = [
    "FLOAT32_TOLERANCE", "ExportCheckError", "ExportReport", "check", "classifier_dtype",
    "exact_logits", "graph_ops", "interpreter", "jax_logits", "run_tflite", "xnnpack_coverage",
    "CALIBRATION_DATASET", "RANGE_CHUNK", "average_ranges", "calibrate_batch_stats",
    "dataset_images", "tensor_ranges", "train_images", "PRECISIONS", "export",
    "export_overrides", "export_registry_model", "to_tflite", "latency", "latency_side_by_side",
    "export_run", "int8_agreement", "main"]
