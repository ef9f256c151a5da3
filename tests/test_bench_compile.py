"""benchmarks.bench_compile runs end to end (a speed script: no timing is asserted), and its
second process finds the first one's programs in the persistent cache."""

from benchmarks import bench_compile


def test_bench_compile_measures_a_cold_and_a_cached_process(tmp_path):
  out = tmp_path / "bench_compile.md"
  assert bench_compile.main(["--models=shufflenet_tiny", f"--out={out}"]) == 0
  rows = [l.split(" | ") for l in out.read_text().splitlines()
          if l.startswith("| shufflenet_tiny")]
  assert len(rows) == 1
  cold, warm, entries = float(rows[0][1]), float(rows[0][2]), int(rows[0][6].rstrip(" |"))
  assert entries >= 2  # the train step and the eval step were written to the cache
  assert cold > 0 and warm > 0


def test_bench_compile_refuses_an_unknown_model(capsys):
  assert bench_compile.main(["--models=shufflenet_0.25x_g3,shufflenet_1.0x_g5"]) == 2
  assert "unknown model name 'shufflenet_1.0x_g5'" in capsys.readouterr().err
