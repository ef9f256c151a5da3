"""Sweeps: expansion and run ids, worker split, skip/resume, tables from records."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import ml_collections
import pytest

from configs import ablation_depth, ablation_groups, ablation_shuffle, ablation_width
from experiments import runner, sweep, tables
from tests.tiny import tiny_config, tiny_flags

ROOT = Path(__file__).resolve().parents[1]


def test_sweep_configs_expand_to_the_papers_grids():
  # The default job: one row (0.25x g3) with and without shuffle, 6 seeds per arm, vmapped.
  finding = ablation_shuffle.get_config()
  groups = sweep.seed_groups(sweep.expand(finding), finding)
  assert [[r.run_id for r in g] for g in groups] == [
      [f"shufflenet_0.25x_g3-seed{s}" for s in range(6)],
      [f"shufflenet_0.25x_g3_noshuffle-seed{s}" for s in range(6)]]
  ids = [r.run_id for r in sweep.expand(ablation_shuffle.get_config("quick"))]
  assert len(ids) == 12 and len(set(ids)) == 12
  assert "shufflenet_0.25x_g8_noshuffle-seed0" in ids and "shufflenet_1.0x_g3-seed0" in ids
  assert len(sweep.expand(ablation_groups.get_config())) == 15
  assert len(sweep.expand(ablation_width.get_config())) == 10
  assert [r.run_id for r in sweep.expand(ablation_depth.get_config())] == [
      "shufflenet_0.5x_g3-seed0", "shufflenet_0.5x_g3_shallow-seed0"]
  proxy = sweep.expand(ablation_shuffle.get_config("proxy"))
  assert len(proxy) == 24  # 2 seeds
  # Ids are a function of the overrides alone.
  assert [r.run_id for r in sweep.expand(ablation_shuffle.get_config("quick"))] == ids
  assert len(sweep.expand(ablation_shuffle.get_config("power"))) == 72  # 6 seeds


def test_bad_sweeps_and_presets_are_refused():
  with pytest.raises(ValueError, match="unknown preset; valid: finding, quick, proxy, power, long, imagenet"):
    ablation_shuffle.get_config("fast")
  c = ablation_shuffle.get_config("quick")
  c.sweep.colour = ("red",)
  with pytest.raises(ValueError, match="sweep axis 'colour'"):
    sweep.expand(c)
  c = ablation_shuffle.get_config("quick")
  c.sweep.groups = (3, 5)
  with pytest.raises(ValueError, match="groups=5|unknown model name"):
    sweep.expand(c)
  with pytest.raises(ValueError, match="--worker='2/2'"):
    sweep.parse_worker("2/2")
  c = ablation_shuffle.get_config("quick")
  c.seeds_per_program = 4
  with pytest.raises(ValueError, match="seeds_per_program=4 needs data_on_device=True"):
    sweep.seed_groups(sweep.expand(c), c)
  c.seeds_per_program = 0
  with pytest.raises(ValueError, match="seeds_per_program=0; valid: an integer >= 1"):
    sweep.seed_groups(sweep.expand(c), c)
  c = ablation_shuffle.get_config("quick")
  c.seeds = (0, 1, 1)
  with pytest.raises(ValueError, match="duplicate points"):
    sweep.expand(c)


def test_workers_partition_the_runs():
  runs = sweep.expand(ablation_groups.get_config())
  parts = [sweep.for_worker(runs, (i, 3)) for i in range(3)]
  ids = [r.run_id for p in parts for r in p]
  assert sorted(ids) == sorted(r.run_id for r in runs) and len(ids) == len(set(ids))


def _tiny_sweep(**over):
  c = tiny_config(num_train_steps=4, checkpoint_every_steps=2, log_every_steps=2, **over)
  c.sweep_name = "ablation_depth"
  c.preset = "test"
  c.sweep = ml_collections.ConfigDict({"width": (0.25,), "groups": (2,),
                                       "depth": ("standard", "shallow")})
  c.seeds = (0, 1)
  return c


def test_seed_groups_skip_finished_seeds_and_resume_partial_groups(tmp_path):
  """A sweep with 3 seeds per program: a group with one seed finished trains only the
  other two in one program; the table is the same as from separate runs' records."""
  c = _tiny_sweep(data_on_device=True)
  c.sweep.depth = ("standard",)
  c.seeds = (0, 1, 2)
  c.seeds_per_program = 3
  groups = sweep.seed_groups(sweep.expand(c), c)
  assert [len(g) for g in groups] == [3]
  runner.run_sweep(c, tmp_path)
  done = tmp_path / "runs" / "shufflenet_0.25x_g2-seed1" / "result.json"
  kept = done.read_text()
  for s in (0, 2):
    (tmp_path / "runs" / f"shufflenet_0.25x_g2-seed{s}" / "result.json").unlink()
  runner.run_sweep(c, tmp_path)
  assert done.read_text() == kept
  import json
  redone = json.loads((tmp_path / "runs" / "shufflenet_0.25x_g2-seed2" / "result.json")
                      .read_text())
  assert redone["trainer"]["seed_group"] == [0, 2]


def _sweep_cmd(workdir, *extra):
  flags = tiny_flags(num_train_steps=4, checkpoint_every_steps=2, log_every_steps=2,
                     model="shufflenet_0.25x_g2")
  return [sys.executable, "main.py", "--config=configs/ablation_depth.py",
          f"--workdir={workdir}", *flags, "--config.sweep.width=(0.25,)",
          "--config.sweep.groups=(2,)", "--config.seeds=(0,1)", "--config.wandb.mode=disabled",
          # The on-device pipeline: no TensorFlow to import in each of the four processes
          # (what is tested is the runner; test_distributed's sweep runs on tf.data).
          "--config.data_on_device=True", *extra]


def _popen(cmd):
  return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def test_two_workers_finish_a_sweep_together_without_overlap(tmp_path):
  """Two workers share a sweep's runs; a copy of the sweep killed mid-way and rerun redoes
  no finished run and ends with the same table."""
  procs = [_popen(_sweep_cmd(tmp_path, f"--worker={i}/2")) for i in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), outs
  trained = [set(re.findall(r"\] (\S+): training$", out, re.M)) for out in outs]
  assert len(trained[0]) == len(trained[1]) == 2 and not trained[0] & trained[1]
  assert len(list(tmp_path.glob("runs/*/result.json"))) == 4
  # Whichever worker finished last built the table, with the statistics and the paper's
  # number beside ours; the table builder reproduces it from the records alone.
  results = tmp_path / "results"
  assert sorted(p.name for p in results.iterdir()) == [
      "ablation_depth.csv", "ablation_depth.md", "ablation_depth.png"]
  md = (results / "ablation_depth.md").read_text()
  assert "(n=2)" in md and "Not ImageNet" in md and "Findings in our runs" in md
  assert "42.8" in md  # the paper's shallow 0.5x g3 error beside ours
  rebuilt = tmp_path / "rebuilt"
  assert tables.main(["--records", str(tmp_path / "runs"), "--sweep", "ablation_depth",
                      "--out", str(rebuilt)]) == 0
  for name in ("ablation_depth.csv", "ablation_depth.md"):
    assert (rebuilt / name).read_bytes() == (results / name).read_bytes(), name

  # SIGKILL a second copy of the sweep mid-way; the rerun completes it without redoing
  # finished runs, and its table equals the uninterrupted one.
  killed = tmp_path / "killed"
  p = _popen(_sweep_cmd(killed))
  deadline = time.time() + 300
  while not list(killed.glob("runs/*/result.json")):
    assert p.poll() is None and time.time() < deadline, p.stdout.read()
    time.sleep(0.05)
  time.sleep(3)  # into the next run
  p.send_signal(signal.SIGKILL)
  p.wait()
  done = {f: f.stat().st_mtime for f in killed.glob("runs/*/result.json")}
  assert 0 < len(done) < 4
  out, _ = (q := _popen(_sweep_cmd(killed))).communicate(timeout=600)
  assert q.returncode == 0, out
  assert out.count("done already, skipped") == len(done)
  assert {f: f.stat().st_mtime for f in done} == done
  assert ((killed / "results" / "ablation_depth.csv").read_bytes()
          == (tmp_path / "results" / "ablation_depth.csv").read_bytes())


@pytest.mark.parametrize("where", ["", "finding", "gpu", "lab/finding_24seeds", "lab/finding_lr0.8",
                                   "lab/exact_epochs", "lab/on_device", "lab/on_device_k1",
                                   "lab/epochs3",
                                   "archive/proxy_2seeds",
                                   "archive/quick_1seed"])
def test_committed_tables_are_reproduced_by_the_builder(tmp_path, where):
  """results/<where>/records/<sweep>/ rebuild results/<where>/<sweep>.md|csv byte for byte."""
  base = ROOT / "results" / where
  records = base / "records"
  if not records.is_dir():
    pytest.skip("no committed records")
  assert tables.main(["--records", str(records), "--out", str(tmp_path)]) == 0
  assert list(tmp_path.glob("*.md"))
  for built in list(tmp_path.glob("*.md")) + list(tmp_path.glob("*.csv")):
    assert built.read_bytes() == (base / built.name).read_bytes(), built.name


def test_comparison_sweeps_cover_the_papers_rows():
  from configs import compare_mobilenet, compare_units
  models = {r.point["model"] for r in sweep.expand(compare_units.get_config())}
  assert "unit_vgg_like_140" in models and "unit_vgg_like_38" not in models
  assert {"shufflenet_1.0x_g8", "shufflenet_0.5x_g4", "shufflenet_0.25x_g8"} <= models
  assert len(models) == 13  # 4 units at 140, 3 at 38 and at 13, 3 ShuffleNets
  models = [r.point["model"] for r in sweep.expand(compare_mobilenet.get_config())]
  assert models[:3] == ["mobilenet_v1_1.0", "shufflenet_2.0x_g3", "shufflenet_2.0x_g3_se"]
  assert "shufflenet_0.5x_g3_shallow" in models and len(models) == 10


def test_provenance_states_a_classifier_lr_scale():
  """A table's recipe line says when runs used a classifier lr other than the body's, and
  stays as before for runs that did not (or predate the field)."""
  import json
  path = next((ROOT / "results" / "records").rglob("*.json"))
  record = json.loads(path.read_text())
  record["config"].pop("classifier_lr_scale", None)
  plain = tables.provenance([record])
  assert not any("classifier lr" in line for line in plain)
  record["config"]["classifier_lr_scale"] = 0.1
  recipe = [line for line in tables.provenance([record]) if line.startswith("- Recipe")]
  assert len(recipe) == 1 and "classifier lr x0.1, " in recipe[0], recipe


def test_a_finished_run_of_another_budget_is_refused_not_skipped(tmp_path):
  """A result.json copied in from another preset must not count as this sweep's run."""
  import json
  c = _tiny_sweep()
  run = sweep.expand(c)[0]
  workdir = tmp_path / "runs" / run.run_id
  workdir.mkdir(parents=True)
  config = json.loads(run.config.to_json_best_effort())
  config.update(preset="proxy", num_train_steps=-1, num_epochs=0.5)
  (workdir / "result.json").write_text(json.dumps({"config": config}))
  with pytest.raises(ValueError, match=r"preset='proxy', num_epochs=0.5, num_train_steps=-1 "
                                       r"differ from this sweep's \(preset='test'"):
    runner.run_sweep(c, tmp_path)


def test_a_finished_run_of_the_other_data_pipeline_is_refused(tmp_path):
  """tf.data and the on-device pipeline give a seed different data: a record of the other
  one would not pair with this sweep's arms, so it is not counted as this sweep's run."""
  import json
  c = _tiny_sweep()
  run = sweep.expand(c)[0]
  workdir = tmp_path / "runs" / run.run_id
  workdir.mkdir(parents=True)
  config = json.loads(run.config.to_json_best_effort())
  config["data_on_device"] = not run.config.data_on_device
  (workdir / "result.json").write_text(json.dumps({"config": config}))
  with pytest.raises(ValueError, match=rf"data_on_device={config['data_on_device']} differ"):
    runner.run_sweep(c, tmp_path)
  # tf.data's two epoch orders likewise; a record without the field repeated, then shuffled
  del config["exact_epochs"]
  config["data_on_device"] = run.config.data_on_device
  (workdir / "result.json").write_text(json.dumps({"config": config}))
  c.exact_epochs = True
  with pytest.raises(ValueError, match=r"exact_epochs=False differ from this sweep's "
                                       r"\(exact_epochs=True\)"):
    runner.run_sweep(c, tmp_path)


def test_provenance_names_the_data_pipeline_and_flags_a_mix():
  import json
  path = next((ROOT / "results" / "records").rglob("result.json"))
  host, device = json.loads(path.read_text()), json.loads(path.read_text())
  host["config"]["data_on_device"], device["config"]["data_on_device"] = False, True
  line = lambda recs: [l for l in tables.provenance(recs) if l.startswith("- Data pipeline")]
  assert line([host]) == ["- Data pipeline: tf.data on the host, repeated then shuffled "
                          "(inexact epochs: docs/ablations.md)."]
  host["config"]["exact_epochs"] = True
  assert line([host]) == ["- Data pipeline: tf.data on the host, exact epochs."]
  assert "device_data.py" in line([device])[0] and "Mixed" not in line([device])[0]
  assert "**Mixed:**" in line([host, device])[0]


def test_tables_refuse_records_of_mixed_budgets():
  import json
  records = [json.loads(p.read_text()) for p in
             sorted((ROOT / "results/records/ablation_shuffle").glob("*/result.json"))[:4]]
  records[1]["config"]["preset"], records[1]["config"]["num_epochs"] = "proxy", 0.5
  with pytest.raises(ValueError, match=r"mix budgets: preset power, 1 epochs, .*; preset "
                                       r"proxy, 0.5 epochs"):
    tables.build("ablation_shuffle", records, "/nonexistent")


def test_every_sweep_with_a_name_has_its_table_builder():
  """main.py refuses a sweep without a builder up front (sweep.TABLE_SWEEPS)."""
  assert set(sweep.TABLE_SWEEPS) == set(tables.BUILDERS)


def test_a_sweep_reuses_another_sweeps_run_of_the_same_training_config(tmp_path):
  """--reuse: a run recorded by another sweep with the same training config (its wandb group
  and logging differ) is copied in, marked reused_from, and not trained; one whose learning
  rate differs is not reused; the table says how many runs came from elsewhere."""
  import json
  import shutil

  import main
  c = _tiny_sweep(data_on_device=True)
  c.sweep.depth = ("standard",)
  c.seeds = (0,)
  runner.run_sweep(c, tmp_path / "first")
  run = sweep.expand(c)[0]
  dst = tmp_path / "records" / "other_sweep" / run.run_id
  shutil.copytree(tmp_path / "first" / "runs" / run.run_id, dst,
                  ignore=shutil.ignore_patterns("checkpoints", "wandb", "*.jsonl"))
  record = json.loads((dst / "result.json").read_text())
  record["config"]["wandb"]["group"] = "other_sweep"
  record["config"]["log_every_steps"] = 1
  (dst / "result.json").write_text(json.dumps(record))
  paths = runner.run_sweep(c, tmp_path / "second", reuse=tmp_path / "records")
  reused = json.loads((tmp_path / "second" / "runs" / run.run_id / "result.json").read_text())
  assert reused["reused_from"] == f"other_sweep/{run.run_id}"
  assert reused["metrics"] == record["metrics"]
  assert not (tmp_path / "second" / "runs" / run.run_id / "checkpoints").exists()  # not trained
  assert "Of them, 1 from other_sweep's records (the same training config" in paths[0].read_text()
  # another learning rate is another experiment: not reused
  record["config"]["learning_rate"] *= 2
  (dst / "result.json").write_text(json.dumps(record))
  assert not runner.reuse_record(run, tmp_path / "third" / run.run_id, tmp_path / "records")
  assert not (tmp_path / "third").exists()
  # --reuse is checked before any work: a sweep's option, an existing directory
  with pytest.raises(ValueError, match=r"--reuse='nope': no such directory"):
    main.check_before_work(c, str(tmp_path / "third"), "0/1", reuse="nope")
  with pytest.raises(ValueError, match=r"--reuse=.* is for sweeps"):
    main.check_before_work(tiny_config(), str(tmp_path / "one"), "0/1",
                           reuse=str(tmp_path / "records"))
  # not with --distributed: every process must train the same runs, process 0 alone records
  out = subprocess.run([sys.executable, "main.py", "--config=configs/ablation_groups.py:power",
                        f"--reuse={tmp_path / 'records'}", "--distributed"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 2 and "is for single-process sweeps" in out.stderr, out.stderr


def test_training_config_reads_older_records_as_the_settings_they_had():
  """A record from before data_on_device / seeds_per_program / exact_epochs existed (tf.data,
  one seed per program, repeat-then-shuffle) is the same experiment as a run with those
  defaults; tuples compare equal to the lists a record's JSON holds; logging does not count."""
  import json
  c = _tiny_sweep()
  run = sweep.expand(c)[0]
  old = json.loads(run.config.to_json_best_effort())
  for key in ("data_on_device", "seeds_per_program", "exact_epochs"):
    old.pop(key)
  old["log_every_steps"] = 7
  old["wandb"]["group"] = "another sweep"
  assert runner.training_config(old) == runner.training_config(run.config)
  old["seeds_per_program"] = 6  # vmapped seeds: not the same float32 numbers
  assert runner.training_config(old) != runner.training_config(run.config)


def test_table4_states_the_gap_to_the_best_other_unit_beside_the_papers():
  """The paper's best other unit at 140 / 38 / 13 MFLOPs is ResNeXt (33.3 vs ShuffleNet's
  32.4), Xception-like (45.1 vs 41.6), Xception-like (57.1 vs 52.7); ours comes with its CI."""
  records = tables.load_records(ROOT / "results" / "records" / "compare_units")
  header, rows, findings, _ = tables.table_units(records)
  assert header[-2:] == ["best other unit - ShuffleNet, ours [95% CI] p",
                         "best other unit - ShuffleNet, paper"]
  assert [r[-1] for r in rows] == ["resnext: +0.9", "xception_like: +3.5", "xception_like: +4.4"]
  assert all(re.match(r"\w+: [+-]\d+\.\d\d \[", r[-2]) for r in rows), [r[-2] for r in rows]
  assert any(f.startswith("The paper's gap lies inside our 95% CI in") for f in findings)
