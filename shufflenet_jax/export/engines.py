"""The exported model on other CPU inference engines, each checked numerically against the
JAX model before anything times it.

  litert       the .tflite itself (LiteRT interpreter, XNNPACK delegate)
  onnxruntime  the .tflite converted to ONNX by tf2onnx (``to_onnx``), ONNX Runtime's CPU
               execution provider, all graph optimizations; an int8 .tflite becomes a
               QuantizeLinear/DequantizeLinear (QDQ) graph that ONNX Runtime fuses into
               integer kernels
  openvino     OpenVINO's CPU plugin reading the .tflite directly (its TFLite frontend),
               inference precision pinned to f32 so that a float32 model is not run in
               bf16/f16 on CPUs that have them

Every engine runs one image per call (the exported input shape, batch 1) with a stated
number of threads. ``onnxruntime`` (with ``tf2onnx``) and ``openvino`` are optional: the
benchmark (benchmarks/bench_engines.py) leaves out an engine that is not installed and
says so."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Callable

import numpy as np

from shufflenet_jax.export.verify import FLOAT32_TOLERANCE, exact_logits, interpreter, jax_logits

ENGINES = ("litert", "onnxruntime", "openvino")
ONNX_OPSET = 17


def available(engine: str) -> str | None:
  """None when ``engine`` can run here, else why not (one line)."""
  if engine not in ENGINES:
    raise ValueError(f"engine={engine!r}; valid: {', '.join(ENGINES)}")
  need = {"litert": ["ai_edge_litert"], "onnxruntime": ["onnxruntime", "tf2onnx"],
          "openvino": ["openvino"]}[engine]
  import importlib.util
  missing = [m for m in need if importlib.util.find_spec(m) is None]
  return f"not installed: {', '.join(missing)} (pip install -r requirements-bench.txt)" \
      if missing else None


def to_onnx(tflite: bytes, opset: int = ONNX_OPSET) -> bytes:
  """The .tflite as an ONNX model (tf2onnx's TFLite frontend; NHWC input kept)."""
  import tf2onnx
  with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "model.tflite")
    with open(path, "wb") as f:
      f.write(tflite)
    model_proto, _ = tf2onnx.convert.from_tflite(path, opset=opset)
  return model_proto.SerializeToString()


def runner(engine: str, tflite: bytes, *, num_threads: int = 1,
           onnx: bytes | None = None) -> Callable[[np.ndarray], np.ndarray]:
  """A function image batch (1, H, W, C) float32 -> logits, running ``tflite`` on
  ``engine`` with ``num_threads`` threads (``onnx``: the ONNX model already converted)."""
  why = available(engine)
  if why:
    raise RuntimeError(f"{engine}: {why}")
  if engine == "litert":
    it = interpreter(tflite, num_threads=num_threads)
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(x):
      it.set_tensor(inp, x)
      it.invoke()
      return it.get_tensor(out)
    return run
  if engine == "onnxruntime":
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Its pool's threads otherwise spin after each run, taking the CPU from whatever runs
    # next (the other engines, timed in turn).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(onnx if onnx is not None else to_onnx(tflite), opts,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]
  import openvino as ov
  core = ov.Core()
  with tempfile.TemporaryDirectory() as d:  # the TFLite frontend reads a file
    path = os.path.join(d, "model.tflite")
    with open(path, "wb") as f:
      f.write(tflite)
    model = core.read_model(path)
  compiled = core.compile_model(model, "CPU", {
      "INFERENCE_NUM_THREADS": num_threads, "PERFORMANCE_HINT": "LATENCY",
      "INFERENCE_PRECISION_HINT": "f32"})
  request = compiled.create_infer_request()
  return lambda x: np.asarray(request.infer({0: x})[0])


def run_images(run: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
  """Logits of ``images`` (N, H, W, C), one image per call."""
  return np.concatenate([run(images[i:i + 1].astype(np.float32)) for i in range(len(images))])


@dataclasses.dataclass
class EngineCheck:
  engine: str
  precision: str
  max_abs_diff: float      # against the float64 JAX logits
  top1_agreement: float    # against JAX's float32 model's top-1 on the check images
  vs_litert: float | None = None  # int8: largest logit difference from LiteRT's int8 model
  problems: list[str] = dataclasses.field(default_factory=list)

  @property
  def ok(self) -> bool:
    return not self.problems


def references(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(float64 JAX logits, float32 JAX logits) of ``images``: what :func:`check` compares
  against, computed once per model."""
  return exact_logits(model, images), jax_logits(model, images)


def check(engine: str, run: Callable[[np.ndarray], np.ndarray], precision: str,
          images: np.ndarray, refs: tuple[np.ndarray, np.ndarray],
          litert_int8: np.ndarray | None = None) -> EngineCheck:
  """The export's own criteria (verify.check) applied to another engine: float32 logits
  within ``FLOAT32_TOLERANCE`` of the float64 JAX model; int8: top-1 agreement with JAX's
  float32 model and (given LiteRT's int8 logits) the largest difference from them."""
  ours = run_images(run, images)
  exact, ref = refs
  result = EngineCheck(engine=engine, precision=precision,
                       max_abs_diff=float(np.max(np.abs(ours - exact))),
                       top1_agreement=float(np.mean(ours.argmax(-1) == ref.argmax(-1))))
  if litert_int8 is not None:
    result.vs_litert = float(np.max(np.abs(ours - litert_int8)))
  if precision == "float32" and not result.max_abs_diff <= FLOAT32_TOLERANCE:
    result.problems.append(f"{engine}: logits differ from the float64 JAX model's by up to "
                           f"{result.max_abs_diff:.2e} (tolerance {FLOAT32_TOLERANCE:.0e})")
  return result
