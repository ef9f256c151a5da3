"""JAX -> TFLite / LiteRT export, its checks, and a CPU latency harness (docs/design.md section 6).

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

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from shufflenet_jax import input_pipeline
from shufflenet_jax.models import registry

PRECISIONS = ("float32", "int8")
FLOAT32_TOLERANCE = 1e-4  # max abs difference on the logits, TFLite vs the float64 JAX model
CALIBRATION_DATASET = "fashion_mnist"  # the offline dataset every machine here has
# int8 activation ranges: the mean, over chunks of this many calibration images, of each
# chunk's min and max (0: the converter's min and max over all of them). See to_tflite.
RANGE_CHUNK = 5


class ExportCheckError(RuntimeError):
  """An exported model failed a check; ``report`` says which and why."""

  def __init__(self, report: "ExportReport", tflite: bytes = b""):
    self.report = report
    self.tflite = tflite  # the rejected model, for inspection or timing
    super().__init__(f"{report.name}: export check failed: {'; '.join(report.problems)}")


@dataclasses.dataclass
class ExportReport:
  name: str
  input_shape: tuple[int, ...]
  precision: str
  size_bytes: int
  ops: dict[str, int]
  non_builtin_ops: list[str]
  delegate_partitions: int
  undelegated_ops: list[str]
  max_abs_diff: float | None = None     # float32: TFLite vs the float64 JAX logits
  jax_float32_abs_diff: float | None = None  # float32: JAX float32 vs the float64 logits
  top1_agreement: float | None = None   # int8: TFLite vs JAX float top-1 on the check images
  classifier_dtype: str = ""            # the input type of the op that writes the logits
  equalized: bool = False               # int8: activation ranges equalized (equalize.py)
  problems: list[str] = dataclasses.field(default_factory=list)

  @property
  def ok(self) -> bool:
    return not self.problems


# ------------------------------------------------------------------------------ models

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


def calibrate_batch_stats(model: nnx.Module, images: np.ndarray) -> None:
  """Sets every BatchNorm's running statistics to the batch statistics of ``images``
  (layer by layer, in one train-mode pass), so an untrained model has the activation
  scale of a trained one: logits of order 1 for the float check, realistic ranges for
  int8 calibration. Leaves the model in eval mode."""
  bns = [m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)]
  saved = [bn.momentum for bn in bns]
  for bn in bns:
    bn.momentum = 0.0
  model.train()
  model(jnp.asarray(images))
  for bn, momentum in zip(bns, saved):
    bn.momentum = momentum
  model.eval()


def dataset_images(n: int, shape: tuple[int, int, int], *, dataset: str = CALIBRATION_DATASET,
                   data_dir: str | None = None, labels: bool = False, offset: int = 0):
  """``n`` normalized images of the eval split (from ``offset``), resized to ``shape``
  (H, W, C) and tiled to C channels when the dataset has fewer (Fashion-MNIST images for an
  ImageNet-shaped timing model). With ``labels``: (images, labels)."""
  import tensorflow as tf
  spec = input_pipeline.dataset_spec(dataset)
  h, w, c = shape
  config = ml_collections.ConfigDict(dict(
      dataset=dataset, data_dir=data_dir, download=False, train_split="",
      eval_split=f"{spec.eval_split}[{offset}:{offset + n}]", image_size=_native_size(dataset),
      augment="pad_crop_flip", eval_batch_size=n, cache=False))
  ds, _ = input_pipeline.eval_dataset(config)
  batch = next(ds.as_numpy_iterator())
  images = batch["image"][batch["mask"] > 0]
  if images.shape[1:3] != (h, w):
    images = tf.image.resize(images, (h, w)).numpy()
  if images.shape[-1] != c:
    if c % images.shape[-1]:
      raise ValueError(f"cannot tile {images.shape[-1]} channels to {c}")
    images = np.tile(images, (1, 1, 1, c // images.shape[-1]))
  images = images.astype(np.float32)
  return (images, batch["label"][batch["mask"] > 0]) if labels else images


def _native_size(dataset: str) -> int:
  return {"fashion_mnist": 28, "cifar10": 32}.get(dataset, 224)


# ------------------------------------------------------------------------------ conversion

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


def tensor_ranges(calibrated: bytes) -> dict[int, tuple[np.ndarray, np.ndarray]]:
  """{tensor index: (min, max)} of the calibration statistics in a calibrated model."""
  from tensorflow.lite.tools import flatbuffer_utils
  ranges = {}
  model = flatbuffer_utils.read_model_from_bytearray(calibrated)
  for i, tensor in enumerate(model.subgraphs[0].tensors):
    q = tensor.quantization
    if q is not None and q.min is not None and len(q.min):
      ranges[i] = (np.asarray(q.min, np.float32), np.asarray(q.max, np.float32))
  return ranges


def average_ranges(calibrated: bytes, chunks: list[list]) -> bytes:
  """``calibrated`` (a model carrying min/max calibration statistics) with every tensor's
  range replaced by the mean over ``chunks`` (each a list of converter samples) of that
  chunk's own min and max: the averaged min/max of quantization-aware training's range
  observers, which lets a value that only a few images reach saturate rather than widen
  the step for every image. Each range lies inside the min/max over all the samples."""
  from tensorflow.lite.python.optimize import calibrator
  from tensorflow.lite.tools import flatbuffer_utils
  per_chunk = [tensor_ranges(calibrator.Calibrator(calibrated).calibrate(lambda c=c: iter(c)))
               for c in chunks]
  model = flatbuffer_utils.read_model_from_bytearray(calibrated)
  for i in per_chunk[0]:
    q = model.subgraphs[0].tensors[i].quantization
    q.min = np.mean([r[i][0] for r in per_chunk], axis=0).astype(np.float32)
    q.max = np.mean([r[i][1] for r in per_chunk], axis=0).astype(np.float32)
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# ------------------------------------------------------------------------------ checks

def classifier_dtype(tflite: bytes) -> str:
  """The tensor type ('FLOAT32', 'INT8', ...) of the first input of the op that writes the
  graph's output: the classifier's precision."""
  from tensorflow.lite.python import schema_py_generated as schema
  types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
  sub = schema.Model.GetRootAsModel(tflite, 0).Subgraphs(0)
  out = sub.Outputs(0)
  for o in range(sub.OperatorsLength()):
    op = sub.Operators(o)
    if out in op.OutputsAsNumpy():
      return types[sub.Tensors(op.Inputs(0)).Type()]
  raise ValueError("no op writes the graph's output")


def graph_ops(tflite: bytes) -> tuple[Counter, list[str]]:
  """(op name -> count over all subgraphs, the names that are not plain builtins: custom,
  Flex and STABLEHLO_* ops), read from the flatbuffer itself."""
  from tensorflow.lite.python import schema_py_generated as schema
  names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
  model = schema.Model.GetRootAsModel(tflite, 0)
  codes = []
  for i in range(model.OperatorCodesLength()):
    oc = model.OperatorCodes(i)
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    if code == schema.BuiltinOperator.CUSTOM:
      codes.append(f"CUSTOM:{oc.CustomCode().decode()}")
    else:
      codes.append(names.get(code, f"UNKNOWN_{code}"))
  ops = Counter()
  for s in range(model.SubgraphsLength()):
    sub = model.Subgraphs(s)
    for o in range(sub.OperatorsLength()):
      ops[codes[sub.Operators(o).OpcodeIndex()]] += 1
  bad = sorted(n for n in ops if n.startswith(("CUSTOM", "STABLEHLO_", "Flex", "UNKNOWN")))
  return ops, bad


def interpreter(tflite: bytes, *, num_threads: int = 1, xnnpack: bool = True):
  """An allocated LiteRT interpreter; XNNPACK is LiteRT's default CPU delegate."""
  from ai_edge_litert import interpreter as litert
  kind = (litert.OpResolverType.AUTO if xnnpack
          else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  it = litert.Interpreter(model_content=tflite, num_threads=num_threads,
                          experimental_op_resolver_type=kind)
  it.allocate_tensors()
  return it


def xnnpack_coverage(tflite: bytes) -> tuple[int, list[str]]:
  """(number of XNNPACK partitions, the ops XNNPACK left to the interpreter).

  After delegation the graph has one DELEGATE node per partition; an op the delegate did
  not take stays a node of its own whose output some DELEGATE node or the graph output
  needs. Walking back from the graph outputs and the partitions' inputs to what the
  partitions and the graph input provide finds exactly those ops."""
  from ai_edge_litert import interpreter as litert
  it = litert.Interpreter(model_content=tflite, num_threads=1)
  n_original = it._interpreter.NumNodes()  # noqa: SLF001 - LiteRT exposes no public graph API
  it.allocate_tensors()
  ops = it._get_ops_details()  # noqa: SLF001
  delegates = [o for o in ops[n_original:] if o["op_name"] == "DELEGATE"]
  producer = {int(t): o for o in ops[:n_original] for t in o["outputs"]}
  available = {int(d["index"]) for d in it.get_input_details()}
  for d in delegates:
    available |= {int(t) for t in d["outputs"]}
  todo = [int(d["index"]) for d in it.get_output_details()]
  todo += [int(t) for d in delegates for t in d["inputs"]]
  seen, left = set(), {}
  while todo:
    t = todo.pop()
    if t < 0 or t in seen or t in available or t not in producer:
      continue  # none, done, provided, or a constant
    seen.add(t)
    op = producer[t]
    left[op["index"]] = op["op_name"]
    todo += [int(x) for x in op["inputs"]]
  return len(delegates), [f"{name} (node {i})" for i, name in sorted(left.items())]


def run_tflite(tflite: bytes, images: np.ndarray, **kw) -> np.ndarray:
  """Logits for ``images``, in batches of the model's static batch size."""
  it = interpreter(tflite, **kw)
  inp, out = it.get_input_details()[0], it.get_output_details()[0]
  batch = int(inp["shape"][0])
  if len(images) % batch:
    raise ValueError(f"{len(images)} images do not split into batches of {batch}")
  results = []
  for i in range(0, len(images), batch):
    it.set_tensor(inp["index"], np.asarray(images[i:i + batch], np.float32))
    it.invoke()
    results.append(it.get_tensor(out["index"]).copy())
  return np.concatenate(results)


def jax_logits(model: nnx.Module, images: np.ndarray, batch: int = 100) -> np.ndarray:
  model.eval()
  fn = nnx.jit(lambda m, x: m(x))
  return np.concatenate([np.asarray(fn(model, jnp.asarray(images[i:i + batch])))
                         for i in range(0, len(images), batch)])


def exact_logits(model: nnx.Module, images: np.ndarray, batch: int = 8) -> np.ndarray:
  """The model's logits computed in float64: the reference both float32 runtimes are
  measured against."""
  model.eval()
  graphdef, state = nnx.split(model)
  with jax.enable_x64(True):
    state64 = jax.tree.map(
        lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x,
        state)
    fn = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x).astype(jnp.float64))
    return np.concatenate([np.asarray(fn(state64, jnp.asarray(images[i:i + batch], jnp.float64)))
                           for i in range(0, len(images), batch)])


def check(name: str, tflite: bytes, model: nnx.Module, input_shape: tuple[int, ...],
          precision: str, check_images: np.ndarray) -> ExportReport:
  """Runs every check of the module docstring; problems go into ``report.problems``."""
  ops, non_builtin = graph_ops(tflite)
  report = ExportReport(name=name, input_shape=tuple(input_shape), precision=precision,
                        size_bytes=len(tflite), ops=dict(sorted(ops.items())),
                        non_builtin_ops=non_builtin, delegate_partitions=0, undelegated_ops=[],
                        classifier_dtype=classifier_dtype(tflite))
  if non_builtin:
    report.problems.append(f"non-builtin ops: {', '.join(non_builtin)}")
    return report  # the interpreter cannot even load custom ops
  report.delegate_partitions, report.undelegated_ops = xnnpack_coverage(tflite)
  if report.undelegated_ops or report.delegate_partitions != 1:
    report.problems.append(
        f"XNNPACK does not take every op ({report.delegate_partitions} partitions); left to "
        f"the interpreter: {', '.join(report.undelegated_ops) or 'none'}")
  ours = run_tflite(tflite, check_images)
  ref = jax_logits(model, check_images)
  if precision == "float32":
    exact = exact_logits(model, check_images)
    report.max_abs_diff = float(np.max(np.abs(ours - exact)))
    report.jax_float32_abs_diff = float(np.max(np.abs(ref - exact)))
    if not report.max_abs_diff <= FLOAT32_TOLERANCE:
      report.problems.append(f"logits differ from the model's (float64 JAX) by up to "
                             f"{report.max_abs_diff:.2e} (tolerance {FLOAT32_TOLERANCE:.0e}; "
                             f"JAX float32 differs by {report.jax_float32_abs_diff:.2e})")
  else:
    report.top1_agreement = float(np.mean(ours.argmax(-1) == ref.argmax(-1)))
  return report


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
  model = registry.create_model(name, rngs=nnx.Rngs(seed), **export_overrides(name, precision),
                                **model_kwargs)
  channels = model_kwargs.get("in_channels", 3)
  images = dataset_images(num_calibration, (*resolution, channels))
  calibrate_batch_stats(model, images)
  return export(model, name, (batch, *resolution, channels), precision, calibration=images,
                out=out, float_classifier=float_classifier, equalize=equalize,
                range_chunk=range_chunk)


# ------------------------------------------------------------------------------ timing

def latency(tflite: bytes, **kw) -> dict:
  """Milliseconds per invoke of one model on this CPU (see :func:`latency_side_by_side`)."""
  return latency_side_by_side({"model": tflite}, **kw)["model"]


def latency_side_by_side(models: dict[str, bytes], *, num_threads: int = 1,
                         xnnpack: bool = True, warmup: int = 3, rounds: int = 5,
                         min_runs: int = 10, max_runs: int = 100,
                         min_seconds: float = 2.0) -> dict[str, dict]:
  """Milliseconds per invoke of several models, measured side by side: after ``warmup``
  runs each, ``rounds`` rounds time every model in turn (per model and round at least
  ``min_runs / rounds`` runs and ``min_seconds / rounds`` seconds, at most
  ``max_runs / rounds`` runs), so a slow spell of a shared machine hits all models alike.
  Per model: the median over all timed runs, the quartiles and the extremes."""
  rng = np.random.default_rng(0)
  its = {}
  for name, tflite in models.items():
    it = interpreter(tflite, num_threads=num_threads, xnnpack=xnnpack)
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], rng.standard_normal(inp["shape"]).astype(np.float32))
    for _ in range(warmup):
      it.invoke()
    its[name] = it
  times = {name: [] for name in models}
  lo, hi = max(1, -(-min_runs // rounds)), max(1, max_runs // rounds)
  for _ in range(rounds):
    for name, it in its.items():
      start, n = time.perf_counter(), 0
      while n < hi and (n < lo or time.perf_counter() - start < min_seconds / rounds):
        t = time.perf_counter()
        it.invoke()
        times[name].append((time.perf_counter() - t) * 1e3)
        n += 1
  out = {}
  for name, ts in times.items():
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    out[name] = dict(median_ms=statistics.median(ts), q1_ms=q[0], q3_ms=q[2],
                     min_ms=min(ts), max_ms=max(ts), runs=len(ts), rounds=rounds,
                     num_threads=num_threads, xnnpack=xnnpack)
  return out


# ------------------------------------------------------------------------------ trained runs

def int8_agreement(workdir: str | Path, *, num_images: int = 10000, num_calibration: int = 500,
                   out_dir: str | Path | None = None, float_classifier: bool = True,
                   equalize: bool = True, range_chunk: int = RANGE_CHUNK) -> dict:
  """For the run in ``workdir`` (its latest checkpoint): exports float32 and int8 at the
  run's input shape, and measures on ``num_images`` eval images the int8 model's top-1
  agreement with the JAX float model, and each one's accuracy. Calibration uses the
  train split's first images, never the ones measured."""
  from shufflenet_jax import train
  config = train.run_config(workdir)
  spec = input_pipeline.dataset_spec(config.dataset)
  shape = (config.image_size, config.image_size, spec.channels)
  images, labels = dataset_images(num_images, shape, dataset=config.dataset,
                                  data_dir=config.get("data_dir"), labels=True)
  calib = _train_images(config, num_calibration, shape)
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


def _train_images(config, n: int, shape) -> np.ndarray:
  import tensorflow as tf
  spec = input_pipeline.dataset_spec(config.dataset)
  builder = input_pipeline.get_builder(config)
  ds = builder.as_dataset(split=f"{spec.train_split}[:{n}]", shuffle_files=False)
  images = np.stack([ex["image"] for ex in ds.as_numpy_iterator()]).astype(np.float32) / 255.0
  images = (images - np.asarray(spec.mean)) / np.asarray(spec.std)
  if images.shape[1:3] != shape[:2]:
    images = tf.image.resize(images, shape[:2]).numpy()
  return images.astype(np.float32)


# ------------------------------------------------------------------------------ CLI

def main(argv: list[str] | None = None) -> int:
  import argparse
  p = argparse.ArgumentParser(prog="python -m shufflenet_jax.export", description=__doc__,
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
  p.add_argument("--agreement", action="store_true",
                 help="with --workdir: int8 vs float top-1 agreement on the whole eval split")
  args = p.parse_args(argv)
  try:
    if bool(args.model) == bool(args.workdir):
      raise ValueError("give exactly one of --model NAME or --workdir DIR")
    if args.agreement:
      if not args.workdir:
        raise ValueError("--agreement needs --workdir (a model trained on the dataset)")
      print(json.dumps(int8_agreement(args.workdir, float_classifier=not args.int8_classifier,
                                      equalize=not args.no_equalize,
                                      range_chunk=args.range_chunk), indent=1))
      return 0
    if args.model:
      registry.model_spec(args.model)  # a clear error for an unknown name
      try:
        h, w = (int(v) for v in args.resolution.split(","))
      except ValueError:
        raise ValueError(f"--resolution={args.resolution!r}; expected H,W such as 224,224")
      tflite, report = export_registry_model(args.model, (h, w), args.precision, out=args.out,
                                             float_classifier=not args.int8_classifier,
                                             equalize=not args.no_equalize,
                                             range_chunk=args.range_chunk)
    else:
      from shufflenet_jax import train
      config = train.run_config(args.workdir)
      spec = input_pipeline.dataset_spec(config.dataset)
      shape = (config.image_size, config.image_size, spec.channels)
      model, _ = train.restore_model(args.workdir,
                                     **export_overrides(config.model, args.precision))
      tflite, report = export(model, config.model, (1, *shape), args.precision,
                              calibration=_train_images(config, 256, shape), out=args.out,
                              float_classifier=not args.int8_classifier,
                              equalize=not args.no_equalize, range_chunk=args.range_chunk)
  except ExportCheckError as e:
    print(f"error: {e}", file=sys.stderr)
    print(json.dumps(dataclasses.asdict(e.report), indent=1), file=sys.stderr)
    return 1
  except (ValueError, FileNotFoundError, input_pipeline.DatasetUnavailableError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(dataclasses.asdict(report), indent=1))
  if args.time:
    print(json.dumps(latency(tflite), indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
