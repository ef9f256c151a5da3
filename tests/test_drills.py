"""Reliability drills (pytest -m drill runs them alone): bad command lines are refused up
front in one line with exit status 2 and nothing written; a second process on a workdir is
refused while the first runs."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import drills
from tests.tiny import tiny_flags

ROOT = Path(__file__).resolve().parents[1]
QUICK = drills.QUICK
pytestmark = pytest.mark.drill


def test_bad_command_lines_fail_up_front_in_one_line():
  results = drills.run_all(workers=4)
  problems = [f"{args}: {drills.check(args, named, p) or 'wrote its workdir'}: "
              f"{p.stderr[-300:]}" for args, named, p, _, created in results
              if drills.check(args, named, p) or created]
  assert not problems, "\n".join(problems)
  assert len(results) >= 40


def test_a_second_process_on_a_workdir_is_refused_while_the_first_runs(tmp_path):
  flags = [QUICK, f"--workdir={tmp_path}", "--config.wandb.mode=disabled",
           *tiny_flags(num_train_steps=40, checkpoint_every_steps=40)]
  first = subprocess.Popen([sys.executable, "main.py", *flags], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    deadline = time.time() + 300
    while not (tmp_path / "config.json").exists():  # written under the lock
      assert first.poll() is None and time.time() < deadline, first.stdout.read()
      time.sleep(0.05)
    second = subprocess.run([sys.executable, "main.py", *flags], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stdout + second.stderr
    assert re.search(rf"error: {re.escape(str(tmp_path))} is in use by another process "
                     rf"\(pid {first.pid}", second.stderr), second.stderr
  finally:
    out, _ = first.communicate(timeout=600)
  assert first.returncode == 0, out
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == len(set(lines))  # one writer: no line twice


def test_an_unreadable_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
  """A truncated newest checkpoint (no result.json yet): the run resumes from the previous
  checkpoint, moves the bad one aside (not deleted) and ends as an uninterrupted run."""
  from shufflenet_jax import train
  from tests.tiny import tiny_config
  c = tiny_config()
  straight = train.train_and_evaluate(c, tmp_path)
  (tmp_path / "result.json").unlink()
  for f in (tmp_path / "checkpoints" / "12").rglob("*"):
    if f.is_file() and f.stat().st_size > 100:
      f.write_bytes(f.read_bytes()[:50])
  resumed = train.train_and_evaluate(c, tmp_path)
  assert resumed["metrics"] == straight["metrics"]
  assert "the checkpoint of step 12" in caplog.text and "unreadable" in caplog.text
  assert (tmp_path / "checkpoints.unreadable" / "12").is_dir()
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == len(set(lines)) == 4  # steps 4, 8, 12 and the final eval, once each
