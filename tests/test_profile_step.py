"""benchmarks/profile_step.py: thunk times are mapped back to the JAX operations."""

import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from benchmarks import profile_step

ROOT = Path(__file__).resolve().parents[1]


def test_hlo_instructions_and_categories_of_a_compiled_gradient():
  def loss(w, x):
    return jnp.sum(jnp.maximum(x @ w, 0.0))
  x, w = jnp.ones((8, 4)), jnp.ones((4, 3))
  text = jax.jit(jax.grad(loss)).lower(w, x).compile().as_text()
  instrs = profile_step.hlo_instructions(text)
  cats = {profile_step.category(op, opcode) for _, opcode, op in instrs.values()}
  assert {"fwd dot_general", "bwd dot_general"} <= cats, cats
  shapes = {shape for shape, opcode, _ in instrs.values() if opcode in ("dot", "fusion")}
  assert any(s.startswith("f32[4,3]") for s in shapes), shapes  # the weight gradient
  assert profile_step.category("jit(f)/transpose(jvp())/select_n") == "bwd select_n"
  assert profile_step.category("") == "(no JAX op)"
  # tuple-shaped instructions (a variadic reduce, multi-output fusions, cuDNN custom-calls)
  text = jax.jit(lambda x: (jnp.argmax(x, 1), jnp.max(x, 1))).lower(jnp.ones((4, 8))).compile(
      ).as_text()
  tuples = {shape: op for shape, _, op in profile_step.hlo_instructions(text).values()
            if shape.startswith("(")}
  assert tuples.get("(f32[4]{0}, s32[4]{0})", "").endswith("/reduce"), tuples


def test_conv_details_name_a_convolution_by_window_and_groups():
  x, w = jnp.ones((1, 8, 8, 6)), jnp.ones((3, 3, 2, 6))
  conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3))
  details = profile_step.conv_details(conv.lower(x, w).compile().as_text())
  assert "window=3x3 groups=3" in details.values(), details


def test_profile_of_a_train_step_names_where_the_time_goes():
  # A subprocess: the per-thunk trace events must be switched on before JAX starts.
  out = subprocess.run(
      [sys.executable, "-m", "benchmarks.profile_step", "--model=shufflenet_0.25x_g3",
       "--impl=groupmajor:shift", "--steps=1", "--top=3"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stdout + out.stderr
  rows = re.findall(r"^\s*([\d.]+)\s+[\d.]+%\s+(\d+)\s+(.+)$", out.stdout, re.M)
  ms = {key: float(t) for t, _, key in rows}
  assert {"fwd dot_general", "bwd dot_general", "bwd reduce_sum"} <= set(ms), out.stdout
  named = sum(t for k, t in ms.items() if k not in ("(runtime)", "(no JAX op)"))
  assert named >= 0.8 * sum(ms.values()), out.stdout  # thunks mapped to their JAX ops
  assert "slowest 3 thunks:" in out.stdout
  bad = subprocess.run([sys.executable, "-m", "benchmarks.profile_step", "--impl=fast"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2
  assert "implementation 'fast'; valid: auto, or pointwise:depthwise" in bad.stderr


def test_device_times_of_a_gpu_trace_count_the_stream_lines_once(tmp_path):
  # A GPU trace in miniature: two kernels of fusion.3 and one of custom-call.1 on a stream
  # line, the same time repeated on the derived "XLA Ops" line, and a host plane.
  from jax.profiler import ProfileData

  def event(meta, ps, op_ref):
    return (f"events {{ metadata_id: {meta} offset_ps: 0 duration_ps: {ps} "
            f"stats {{ metadata_id: 1 ref_value: {op_ref} }} }}")
  gpu = ('planes { id: 1 name: "/device:GPU:0" '
         'lines { id: 1 name: "Stream #13(Compute)" '
         + event(10, 3_000_000_000, 2) + event(11, 1_000_000_000, 2)
         + event(12, 2_000_000_000, 3) + " } "
         'lines { id: 2 name: "XLA Ops" ' + event(13, 6_000_000_000, 2) + " } "
         'event_metadata { key: 10 value { id: 10 name: "loop_fusion_kernel" } } '
         'event_metadata { key: 11 value { id: 11 name: "loop_fusion_kernel_1" } } '
         'event_metadata { key: 12 value { id: 12 name: "cudnn_conv" } } '
         'event_metadata { key: 13 value { id: 13 name: "fusion.3" } } '
         'stat_metadata { key: 1 value { id: 1 name: "hlo_op" } } '
         'stat_metadata { key: 2 value { id: 2 name: "fusion.3" } } '
         'stat_metadata { key: 3 value { id: 3 name: "custom-call.1" } } } '
         'planes { id: 2 name: "/host:CPU" lines { id: 1 name: "python" '
         'events { metadata_id: 1 offset_ps: 0 duration_ps: 9000000000 } } '
         'event_metadata { key: 1 value { id: 1 name: "train_step" } } }')
  path = tmp_path / "t.xplane.pb"
  path.write_bytes(ProfileData.text_proto_to_serialized_xspace(gpu))
  times, lines = profile_step.device_times(str(path), steps=2)
  assert times == {"fusion.3": 2.0, "custom-call.1": 1.0}  # ms per step, 2 steps
  assert lines == {"/device:GPU:0 Stream #13(Compute)": 3.0, "/device:GPU:0 XLA Ops": 3.0}
