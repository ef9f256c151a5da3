"""The checks every export passes before it is written (see the package docstring):
builtin ops only, XNNPACK takes every op, float32 logits against the float64 JAX model,
int8 top-1 agreement; and running a .tflite on images."""

from __future__ import annotations

import dataclasses
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

FLOAT32_TOLERANCE = 1e-4  # max abs difference on the logits, TFLite vs the float64 JAX model


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
