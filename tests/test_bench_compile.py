"""benchmarks.bench_compile runs end to end (a speed script: no timing is asserted), and its
second process finds the first one's programs in the persistent cache."""

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


def test_bench_compile_refuses_an_unknown_model(capsys):
  assert bench_compile.main(["--models=shufflenet_0.25x_g3,shufflenet_1.0x_g5"]) == 2
  assert "unknown model name 'shufflenet_1.0x_g5'" in capsys.readouterr().err
