"""benchmarks.bench_seeds runs end to end (a speed script: no timing is asserted)."""

from benchmarks import bench_seeds


def test_bench_seeds_prints_a_table_with_every_k(tmp_path, capsys):
  out = tmp_path / "bench_seeds.md"
  assert bench_seeds.main(["--models=shufflenet_tiny", "--ks=1,2", "--steps=1", "--rounds=1",
                           "--batch=16", "--budget=10", f"--out={out}"]) == 0
  text = out.read_text()
  rows = [l for l in text.splitlines() if l.startswith("| shufflenet_tiny")]
  assert [r.split(" | ")[1] for r in rows] == ["1", "2"]
  assert "1.00x" in rows[0]  # k=1 against itself


def test_bench_seeds_refuses_bad_arguments(capsys):
  assert bench_seeds.main(["--ks=2,4"]) == 2
  assert "--ks='2,4'" in capsys.readouterr().err
  assert bench_seeds.main(["--steps=0"]) == 2
