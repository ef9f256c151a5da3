"""benchmarks.bench_compile runs end to end (a speed script: no timing is asserted), its
second process finds the first one's programs in the persistent cache, and a cached compile
is split into parts that add up."""

import importlib.util

import pytest

from benchmarks import bench_compile


def test_bench_compile_measures_a_cold_and_a_cached_process(tmp_path):
  out = tmp_path / "bench_compile.md"
  assert bench_compile.main(["--models=shufflenet_tiny", f"--out={out}"]) == 0
  lines = out.read_text().splitlines()
  header = next(l for l in lines if l.startswith("| model |")).strip("| ").split(" | ")
  rows = [dict(zip(header, l.strip("| ").split(" | "))) for l in lines
          if l.startswith("| shufflenet_tiny")]
  assert len(rows) == 1
  row = rows[0]
  # The train step and the eval step, each compiled once and written to the cache.
  assert int(row["cache entries"]) >= 2
  assert float(row["first compile s"]) > 0 and float(row["steps s"]) > 0
  assert float(row["cached compile s"]) < float(row["first compile s"])  # read, not compiled
  # jax's compile spans during the first calls + the rest (their first execution).
  parts = float(row["of which jax compile s"]) + float(row["of which first execution s"])
  assert parts == pytest.approx(float(row["cached compile s"]), abs=0.06)
  assert float(row["of which jax compile s"]) > 0  # the cache loads at least
  assert int(row["first-call faults k"]) > 0  # the steps' buffers are touched first then
  assert row["PyTorch first-call extra s"] == ""  # shufflenet_tiny has no PyTorch twin


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="benchmark-only: pip install -r requirements-bench.txt")
def test_the_pytorch_twin_first_calls_are_measured_in_their_own_process(tmp_path):
  twin = bench_compile.torch_first_calls("shufflenet_0.25x_g3", tmp_path)
  assert twin["first_calls_s"] > twin["step_s"] > 0
  assert twin["first_faults"] > 0 and twin["entries"] == 0  # torch leaves jax's cache empty


def test_bench_compile_refuses_an_unknown_model(capsys):
  assert bench_compile.main(["--models=shufflenet_0.25x_g3,shufflenet_1.0x_g5"]) == 2
  assert "unknown model name 'shufflenet_1.0x_g5'" in capsys.readouterr().err
