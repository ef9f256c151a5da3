"""Reliability drills (pytest -m drill runs them alone; benchmarks/drills.py holds the cases
and writes results/reliability.md): bad command lines are refused up front in one line with
exit status 2 and nothing written; corrupt workdirs are recovered, refused in one line or
found by `verify`; kills at random points end bitwise equal to an uninterrupted run; a
second process on a workdir is refused; the wandb service ends with a killed run."""

import json
from pathlib import Path

import pytest

from benchmarks import drills

pytestmark = pytest.mark.drill


def _untimed_lines(workdir: Path) -> list[str]:
  """metrics.jsonl's lines without their timing fields (which differ between writers)."""
  from shufflenet_jax import records
  return [json.dumps({k: v for k, v in json.loads(l).items() if k not in records.TIMING_KEYS},
                     sort_keys=True)
          for l in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_bad_command_lines_fail_up_front_in_one_line():
  results = drills.run_all(workers=4)
  problems = [f"{args}: {drills.check(args, named, p) or 'wrote its workdir'}: "
              f"{p.stderr[-300:]}" for args, named, p, _, created in results
              if drills.check(args, named, p) or created]
  assert not problems, "\n".join(problems)
  assert len(results) >= 40


def test_a_second_process_on_a_workdir_is_refused_while_the_first_runs(tmp_path):
  assert drills.two_writers(tmp_path) == "ok"


def test_a_second_copy_of_a_running_sweep_is_refused(tmp_path):
  assert drills.sweep_twice(tmp_path) == "ok"


def test_a_non_finite_loss_stops_the_run_in_one_line(tmp_path):
  assert drills.non_finite(tmp_path).startswith("ok: error: the training loss became "
                                                "non-finite")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The drills' short run, uninterrupted (what a recovered run must equal)."""
  return drills.reference_run(tmp_path_factory.mktemp("drill") / "reference")


@pytest.mark.parametrize("case", drills.CORRUPT, ids=[c[0] for c in drills.CORRUPT])
def test_a_corrupt_workdir_is_recovered_or_refused_in_one_line(case, reference, tmp_path):
  seen, problem, line = drills.corrupt_case(case, reference, tmp_path / "run")
  if seen == "not run":
    pytest.skip(problem)
  assert problem == "ok", f"{case[0]}: {seen}: {problem}: {line}"


def test_kills_at_random_points_end_bitwise_equal(reference, tmp_path):
  """Six SIGKILLs (one in start-up, five at random moments of training), a restart after
  each: the run ends bitwise equal to the uninterrupted one."""
  out = drills.kill_drill(reference, tmp_path / "run", kills=6, seed=1)
  assert out["kills"] >= 5, out
  assert out["problem"] is None, out
  result = json.loads((tmp_path / "run" / "result.json").read_text())
  assert result["wall_time_all_attempts_s"] > result["wall_time_s"]


def test_the_wandb_service_ends_with_a_killed_run(tmp_path):
  result, lived = drills.orphans_after_kill(tmp_path / "run", wait_s=30)
  assert result == "ok", result


def test_verify_names_each_inconsistency_of_the_records(tmp_path):
  """`python -m shufflenet_jax.verify` on hand-made records (no checkpoint restore)."""
  from shufflenet_jax import verify
  config = {"model": "shufflenet_tiny", "seed": 0}
  train_line = {"step": 4, "train_loss": 1.5, "train_top1_err": 0.5}
  final = {"step": 4, "eval_loss": 1.0, "eval_top1_err": 0.25, "eval_top5_err": 0.0,
           "eval_examples": 500}
  result = {"config": config, "metrics": {"steps": 4, "train_loss": 1.5, "train_top1_err": 0.5,
                                          **{k: v for k, v in final.items() if k != "step"}}}

  def write(lines, result=result, config=config):
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "result.json").write_text(json.dumps(result))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    return verify.problems(tmp_path, restore=False)[0]

  assert write([train_line, final]) == []
  assert write([train_line, final, final]) == ["metrics.jsonl holds a line twice"]
  assert write([train_line]) == ["metrics.jsonl does not end with the final eval at step 4"]
  assert write([train_line, {**final, "eval_top1_err": 0.5}]) == [
      "result.json's eval_top1_err differ from metrics.jsonl's final eval"]
  assert write([train_line, final], config={**config, "seed": 1}) == [
      "result.json's config differs from config.json in seed"]
  (tmp_path / "metrics.jsonl").write_text('{"step": 4, "train_lo\n')
  assert "metrics.jsonl line 1 does not parse" in verify.problems(tmp_path, restore=False)[0][0]


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
  lines = _untimed_lines(tmp_path)
  assert len(lines) == len(set(lines)) == 4  # steps 4, 8, 12 and the final eval, once each
