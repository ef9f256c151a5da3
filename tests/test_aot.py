"""Exported steps (shufflenet_jax/aot.py): a second process reads the program instead of
tracing it, runs the same program, and a different key, shape or environment never reuses
another's program."""

import os

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


def test_evict_deletes_the_least_recently_used_down_to_the_limit(tmp_path):
  paths = [tmp_path / f"{i}.jaxexport" for i in range(5)]
  for age, p in enumerate(paths):  # paths[0] is the newest
    p.write_bytes(b"x" * 1000)
    os.utime(p, (1e9 - age, 1e9 - age))
  (tmp_path / "jit_call-cache").write_bytes(b"y" * 5000)  # jax's own: not ours to delete
  deleted = aot.evict(tmp_path, 3000, keep=paths[4])
  assert deleted == [paths[3], paths[2]]  # the oldest, but never `keep`
  assert sorted(tmp_path.iterdir()) == sorted([paths[0], paths[1], paths[4],
                                               tmp_path / "jit_call-cache"])
  assert aot.evict(tmp_path, 10**6) == []


def test_a_new_step_evicts_old_ones_past_an_eighth_of_the_cap(cache, monkeypatch):
  from shufflenet_jax import compile_cache
  monkeypatch.setenv(compile_cache.MAX_ENV, "1")  # the kept steps: at most 128 KiB
  cache.mkdir(parents=True)
  old = [cache / f"old{i}.jaxexport" for i in range(3)]
  for p in old:
    p.write_bytes(b"x" * 50_000)
    os.utime(p, (1e9, 1e9))
  traces = []
  aot.step(_counting_step(traces), {"step": "t", "lr": 0.1})(*_args())
  kept = list(cache.glob("*.jaxexport"))
  assert len(kept) >= 2 and sum(p.stat().st_size for p in kept) <= 128 << 10
  assert sum(p in kept for p in old) < 3
  # the new entry survived, and is read back rather than traced
  aot.step(_counting_step(traces), {"step": "t", "lr": 0.1})(*_args())
  assert len(traces) == 1
  monkeypatch.setenv(compile_cache.MAX_ENV, "-1")  # no cap: nothing goes
  aot.step(_counting_step(traces), {"step": "t", "lr": 0.2})(*_args())
  assert set(kept) <= set(cache.glob("*.jaxexport"))


@pytest.mark.parametrize("value", ["0", "-2", "lots", "1.5"])
def test_a_bad_cache_cap_is_a_clear_error(monkeypatch, value):
  from shufflenet_jax import compile_cache
  monkeypatch.setenv(compile_cache.MAX_ENV, value)
  with pytest.raises(ValueError, match=f"SHUFFLENET_JAX_CACHE_MAX_MB='{value}'.*positive "
                                       "integer, or -1 for no cap"):
    compile_cache.max_bytes()


def test_the_cache_is_capped_by_default_and_on_request(tmp_path, monkeypatch):
  from shufflenet_jax import compile_cache
  before = (jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_max_size)
  try:
    monkeypatch.delenv(compile_cache.MAX_ENV, raising=False)
    assert compile_cache.enable(tmp_path) == tmp_path
    assert jax.config.jax_compilation_cache_max_size == 4096 << 20
    monkeypatch.setenv(compile_cache.MAX_ENV, "-1")
    compile_cache.enable(tmp_path)
    assert jax.config.jax_compilation_cache_max_size == -1
  finally:
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_compilation_cache_max_size", before[1])


def test_entries_from_an_uncapped_cache_get_the_stamp_eviction_reads(tmp_path):
  from shufflenet_jax import compile_cache
  old = tmp_path / "jit_step-abc-cache"
  old.write_bytes(b"program")
  os.utime(old, ns=(5 * 10**18, 5 * 10**18))
  (tmp_path / "jit_new-def-cache").write_bytes(b"program")
  (tmp_path / "jit_new-def-atime").write_bytes((7).to_bytes(8, "little"))
  assert compile_cache.stamp_entries(tmp_path) == 1
  assert int.from_bytes((tmp_path / "jit_step-abc-atime").read_bytes(), "little") == 5 * 10**18
  assert (tmp_path / "jit_new-def-atime").read_bytes() == (7).to_bytes(8, "little")
  assert compile_cache.stamp_entries(tmp_path) == 0
