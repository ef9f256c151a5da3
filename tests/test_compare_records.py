"""experiments/compare_records.py: two record sets paired by run id."""

import json
from pathlib import Path

import pytest

from experiments import compare_records


def _write(root, model, seed, err, **config):
  d = root / f"{model}-seed{seed}"
  d.mkdir(parents=True)
  (d / "result.json").write_text(json.dumps(dict(
      model=model, seed=seed, metrics=dict(eval_top1_err=err),
      device=dict(device_kind="cpu"), versions=dict(jax="0.10.2"))))
  (d / "config.json").write_text(json.dumps(dict(model=model, seed=seed, data_dir=str(root),
                                                 **config)))


def test_gaps_are_paired_by_run_id_and_name_what_differs(tmp_path, capsys):
  a, b = tmp_path / "a", tmp_path / "b"
  shifts = [0.010, 0.012, 0.008, 0.010]  # A - B in error fraction: 1.0 point on average
  for seed, s in enumerate(shifts):
    _write(a, "m1", seed, 0.20 + 0.01 * seed + s)  # (exact_epochs missing: False)
    _write(b, "m1", seed, 0.20 + 0.01 * seed, exact_epochs=True)
    _write(a, "m2", seed, 0.30 - 0.02 * seed)
    _write(b, "m2", seed, 0.30 - 0.02 * seed, exact_epochs=True)
  _write(a, "m3", 0, 0.5)  # only in A: not paired
  gaps, overall = compare_records.paired(compare_records.load(a), compare_records.load(b),
                                         "eval_top1_err")
  assert set(gaps) == {"m1", "m2"}
  assert gaps["m1"].n == 4 and gaps["m1"].gap == pytest.approx(1.0)
  assert gaps["m1"].sd == pytest.approx(0.1633, abs=1e-3)  # the differences' sd, in points
  assert gaps["m2"].gap == pytest.approx(0.0) and gaps["m2"].p == 1.0
  assert overall.n == 4 and overall.gap == pytest.approx(0.5)  # over the 4 seeds
  assert compare_records.main([str(a), str(b)]) == 0
  out = capsys.readouterr().out
  # data_dir differs too but does not change what is trained; the model sets differ (m3)
  # but only the pairs are compared
  assert "What differs between the paired runs:\n- exact_epochs: False vs True\n\n" in out
  # r: m1's sides move together (B plus a shift of sd 0.16 points; each side's sd ~1.3)
  assert "| m1 | 4 | +1.00 [+0.74, +1.26] p=0.001 | 0.16 | +0.99 |" in out
  assert gaps["m2"].r == 1.0
  assert "| all (per seed) | 4 |" in out and "8 run ids in both" in out


def test_the_overall_gap_is_tested_over_seeds_not_runs(tmp_path):
  """Runs of one seed share its data order within a set: a seed whose draws favour A moves
  every model's pair, so the overall test takes the seeds, not the runs, as its sample."""
  from scipy import stats as st
  a, b = tmp_path / "a", tmp_path / "b"
  seed_shift = [0.010, -0.006, 0.004]  # in error fraction, shared by every model of a seed
  noise = {("m1", 0): 0.0, ("m1", 1): 0.0005, ("m1", 2): -0.0005, ("m2", 0): 0.0005,
           ("m2", 1): -0.0005, ("m2", 2): 0.0, ("m3", 0): -0.0005, ("m3", 1): 0.0,
           ("m3", 2): 0.0005}  # sums to 0 per seed and per model
  for seed, shift in enumerate(seed_shift):
    for m in ("m1", "m2", "m3"):
      _write(a, m, seed, 0.2 + shift + noise[m, seed])
      _write(b, m, seed, 0.2)
  _, overall = compare_records.paired(compare_records.load(a), compare_records.load(b),
                                      "eval_top1_err")
  per_seed = [100 * s for s in seed_shift]
  assert overall.n == 3 and overall.gap == pytest.approx(sum(per_seed) / 3)
  assert overall.p == pytest.approx(st.ttest_1samp(per_seed, 0).pvalue)
  runs = [100 * (shift + noise[m, seed]) for seed, shift in enumerate(seed_shift)
          for m in ("m1", "m2", "m3")]
  assert overall.p > 2 * st.ttest_1samp(runs, 0).pvalue  # nine "pairs" would overstate it
  # the seed effect the report states: residuals (model means removed) grouped by seed
  sets = compare_records.load(a), compare_records.load(b)
  mean_shift = sum(seed_shift) / 3  # each model's mean difference (its noise sums to 0)
  residuals = [[100 * (shift + noise[m, seed] - mean_shift) for m in ("m1", "m2", "m3")]
               for seed, shift in enumerate(seed_shift)]
  p = compare_records.seed_effect(*sets, "eval_top1_err")
  assert p < 1e-3 and p == pytest.approx(st.f_oneway(*residuals).pvalue)
  one_seed = tmp_path / "one"
  for m in ("m1", "m2"):
    _write(one_seed, m, 0, 0.2)
  assert compare_records.seed_effect(compare_records.load(one_seed), sets[1],
                                     "eval_top1_err") is None


def test_bad_input_is_named(tmp_path, capsys):
  _write(tmp_path / "a", "m1", 0, 0.2)
  _write(tmp_path / "b", "m2", 0, 0.2)
  assert compare_records.main([str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
  assert "missing: no such directory" in capsys.readouterr().err
  assert compare_records.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
  assert "share no run id" in capsys.readouterr().err
  assert compare_records.main([str(tmp_path / "a"), str(tmp_path / "a"), "--metric=acc"]) == 2
  assert "has no metric 'acc'; it has: eval_top1_err" in capsys.readouterr().err
  (tmp_path / "empty").mkdir()
  assert compare_records.main([str(tmp_path / "empty"), str(tmp_path / "a")]) == 2
  assert "no <run id>/result.json records" in capsys.readouterr().err


# Each committed report: (its path, the two record directories it compares).
REPORTS = compare_records.COMMITTED


def test_committed_takes_no_directories_and_two_directories_are_needed_without_it(capsys):
  for argv in (["--committed", "results/records"], ["--committed", "--metric=train_loss"],
               ["results/records"], []):
    with pytest.raises(SystemExit) as e:
      compare_records.main(argv)
    assert e.value.code == 2
  assert "two record directories A and B are required" in capsys.readouterr().err


@pytest.mark.parametrize("report, a, b", REPORTS)
def test_the_committed_reports_are_reproduced(tmp_path, monkeypatch, report, a, b):
  root = Path(__file__).resolve().parents[1]
  monkeypatch.chdir(root)  # the report names the directories as given
  assert compare_records.main([a, b, f"--out={tmp_path / 'r.md'}"]) == 0
  assert (tmp_path / "r.md").read_text() == (root / report).read_text()
