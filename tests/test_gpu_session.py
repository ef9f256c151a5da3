"""benchmarks/gpu_session.sh's bookkeeping, with a stand-in for Python (no GPU, no
training): the GPU scripts run in order, runs a committed GPU session finished are copied
into the ablation's workdir (so the runner skips them) only when of the same preset, and
what comes back fits a device call's limits (at most 8 files, no deeper than 2 folders)
with every finished run's record packed and no unfinished one."""

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "fakepy $*" >> "$FAKEPY_LOG"
case "$*" in
  *bench_train*) for a; do case $a in --out=*) echo table > "${a#--out=}";; esac; done ;;
  *main.py*)
    for a; do case $a in --workdir=*) w=${a#--workdir=};; esac; done
    ls "$w/runs" > "$FAKEPY_LOG.seen.$(basename "$w")"
    mkdir -p "$w/runs/new-seed0" "$w/runs/half-seed1"
    echo '{"preset": "power"}' > "$w/runs/new-seed0/config.json"
    echo '{}' > "$w/runs/new-seed0/result.json"
    touch "$w/runs/half-seed1/checkpoint" ;;
esac
"""


def _record(d: Path, preset: str) -> None:
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps({"preset": preset}, indent=2))
  (d / "result.json").write_text("{}")


def test_gpu_session_packs_finished_runs_and_resumes_committed_ones(tmp_path):
  repo = tmp_path / "repo"
  (repo / "benchmarks").mkdir(parents=True)
  for name in ("gpu_session.sh", "gpu_train.sh", "gpu_ablation.sh", "gpu_env.sh"):
    shutil.copy2(ROOT / "benchmarks" / name, repo / "benchmarks" / name)
  (repo / "data").mkdir()
  (repo / "data" / "fashion_mnist.npz").write_bytes(b"")
  (repo / "configs").mkdir()
  for sweep in ("ablation_shuffle", "ablation_groups"):
    (repo / "configs" / f"{sweep}.py").write_text("")
  committed = repo / "results" / "gpu" / "records" / "ablation_shuffle"
  _record(committed / "done-seed0", "power")
  _record(committed / "other-seed0", "quick")
  fake = tmp_path / "fakepy"
  fake.write_text(FAKE_PYTHON)
  fake.chmod(0o755)
  out, work, log = tmp_path / "out", tmp_path / "work", tmp_path / "fakepy.log"
  env = {"PATH": "/usr/bin:/bin", "PYTHON": str(fake), "OUT": str(out), "WORK": str(work),
         "FAKEPY_LOG": str(log), "SWEEPS": "ablation_shuffle ablation_groups"}
  subprocess.run(["bash", "benchmarks/gpu_session.sh"], cwd=repo, env=env, check=True,
                 capture_output=True, text=True, timeout=120)
  calls = log.read_text()
  assert calls.index("--dtype=float32") < calls.index("--dtype=bfloat16") < calls.index(
      "profile_step --shape=imagenet --batch=256 --dtype=float32") < calls.index(
      "profile_step --shape=imagenet --batch=256 --dtype=bfloat16") < calls.index("main.py")
  assert calls.index("configs/ablation_shuffle.py:power") < calls.index(
      "configs/ablation_groups.py:power")  # the sweeps in SWEEPS' order
  assert f"--reuse={work}/records" in calls  # a later sweep reuses an earlier one's runs
  # the committed power run was in the workdir before the runner started; the quick one not
  assert (tmp_path / "fakepy.log.seen.ablation_shuffle").read_text().split() == ["done-seed0"]
  assert (tmp_path / "fakepy.log.seen.ablation_groups").read_text().split() == []
  files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
  assert files == ["ablation_records.tgz", "bench_train_gpu_bfloat16.md",
                   "bench_train_gpu_float32.md", "gpu_session.log", "profile_gpu_bfloat16.txt",
                   "profile_gpu_float32.txt"]
  with tarfile.open(out / "ablation_records.tgz") as tar:
    packed = sorted(n for n in tar.getnames() if n.endswith(".json"))
  assert packed == [f"records/{sweep}/{run}/{f}" for sweep, run in (
      ("ablation_groups", "new-seed0"), ("ablation_shuffle", "done-seed0"),
      ("ablation_shuffle", "new-seed0")) for f in ("config.json", "result.json")]
  assert "3 finished ablation runs packed" in (out / "gpu_session.log").read_text()
  # once their tables are committed, the train-step benchmark and the profiles are not run again
  for dtype in ("float32", "bfloat16"):
    (repo / "results" / f"bench_train_gpu_{dtype}.md").write_text("committed")
    (repo / "results" / "gpu" / f"profile_gpu_{dtype}.txt").write_text("committed")
  log.unlink()
  shutil.rmtree(out)
  subprocess.run(["bash", "benchmarks/gpu_session.sh"], cwd=repo, env=env, check=True,
                 capture_output=True, text=True, timeout=120)
  calls = log.read_text()
  assert "bench_train" not in calls and "profile_step" not in calls and "main.py" in calls


def test_gpu_ablation_names_a_sweep_it_does_not_know(tmp_path):
  env = {"PATH": "/usr/bin:/bin", "PYTHON": "true", "OUT": str(tmp_path / "out"),
         "SWEEPS": "ablation_shuffle ablation_shufle"}
  out = subprocess.run(["bash", "benchmarks/gpu_ablation.sh"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
  assert out.returncode == 2
  assert "SWEEPS names 'ablation_shufle'; valid: ablation_depth ablation_groups" in out.stderr
  assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("runs"))
