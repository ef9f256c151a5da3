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
