"""Exported steps (shufflenet_jax/aot.py): a second process reads the program instead of
tracing it, runs the same program, and a different key, shape or environment never reuses
another's program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shufflenet_jax import aot


@pytest.fixture
def cache(tmp_path, monkeypatch):
  before = jax.config.jax_compilation_cache_dir
  jax.config.update("jax_compilation_cache_dir", str(tmp_path))
  monkeypatch.delenv(aot.ENV, raising=False)
  yield tmp_path / "aot"
  jax.config.update("jax_compilation_cache_dir", before)


def _counting_step(traces):
  def step(state, batch):
    traces.append(1)  # runs only while tracing
    new = {"w": state["w"] - 0.1 * jnp.mean(batch["x"], axis=0), "n": state["n"] + 1}
    return new, {"loss": jnp.sum(new["w"] ** 2)}
  return step


def _args(n=4):
  return ({"w": jnp.arange(3.0), "n": jnp.zeros((), jnp.int32)},
          {"x": jnp.ones((n, 3)) * jnp.arange(n)[:, None]})


def test_a_second_step_reads_the_program_and_computes_the_same(cache):
  traces = []
  first = aot.step(_counting_step(traces), {"step": "t", "lr": 0.1}, donate_argnums=(0,))
  out1 = first(*_args())
  assert len(traces) == 1 and len(list(cache.glob("*.jaxexport"))) == 1
  again = aot.step(_counting_step(traces), {"step": "t", "lr": 0.1}, donate_argnums=(0,))
  out2 = again(*_args())
  assert len(traces) == 1  # read from disk, not traced
  for a, b in zip(jax.tree.leaves(out1), jax.tree.leaves(out2), strict=True):
    np.testing.assert_array_equal(a, b)
  assert jax.tree.structure(out1) == jax.tree.structure(out2)
  expected = jnp.arange(3.0) - 0.1 * 1.5
  np.testing.assert_allclose(out2[0]["w"], expected, rtol=1e-6)
  assert int(out2[0]["n"]) == 1


def test_another_key_shape_or_corrupt_entry_is_traced_anew(cache):
  traces = []
  aot.step(_counting_step(traces), {"step": "t", "lr": 0.1})(*_args())
  aot.step(_counting_step(traces), {"step": "t", "lr": 0.2})(*_args())  # another key
  aot.step(_counting_step(traces), {"step": "t", "lr": 0.1})(*_args(n=8))  # another shape
  assert len(traces) == 3 and len(list(cache.glob("*.jaxexport"))) == 3
  for entry in cache.glob("*.jaxexport"):
    entry.write_bytes(b"not a program")
  out = aot.step(_counting_step(traces), {"step": "t", "lr": 0.1})(*_args())
  assert len(traces) == 4 and int(out[0]["n"]) == 1  # rebuilt, and right


def test_off_is_a_plain_jit(cache, monkeypatch):
  monkeypatch.setenv(aot.ENV, "off")
  traces = []
  f = aot.step(_counting_step(traces), {"step": "t"})
  assert not isinstance(f, aot.Step)
  f(*_args())
  assert not cache.exists()
