"""Runs a sweep: skips finished runs, resumes partial ones, splits the work between
workers, and rebuilds the sweep's table when every run has its result.json.

Layout under the sweep's workdir (default ``runs/<sweep>-<preset>``):
  runs/<run id>/      one training workdir per run (config.json, metrics.jsonl,
                      checkpoints/, result.json)
  results/<sweep>.md|csv|png   the table, rebuilt from the runs' result.json files
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from absl import logging

from experiments import sweep
from shufflenet_jax import records, seed_group, train, workdir_lock


default_workdir = sweep.default_workdir


def run_sweep(config, workdir: str | Path | None = None, worker: str = "0/1",
              reuse: str | Path | None = None) -> list[Path]:
  """Trains this worker's share of the sweep; returns the table files if it built them.
  ``reuse``: a directory of ``<sweep>/<run id>/`` records (results/records) whose runs of
  the same training config are copied in instead of trained again (:func:`reuse_record`)."""
  root = Path(workdir) if workdir else default_workdir(config)
  # Seed-major: every grid point at the first seed, then at the next, so the paired arms of
  # an ablation finish together and a partly done sweep already has whole pairs.
  order = {s: i for i, s in enumerate(config.seeds)}
  runs = sorted(sweep.expand(config), key=lambda r: order[r.point["seed"]])
  worker_index, workers = sweep.parse_worker(worker)
  mine = sweep.for_worker(runs, (worker_index, workers))
  if not records.writes_records():
    return _run(config, root, runs, mine, worker)
  # One process per worker of a sweep: a second copy of the same worker fails at once.
  with workdir_lock.hold(root, f".lock-worker-{worker_index}-of-{workers}"):
    return _run(config, root, runs, mine, worker, reuse)


def _run(config, root: Path, runs, mine, worker: str, reuse=None) -> list[Path]:
  logging.info("sweep %s (%s): %d runs, %d for worker %s, in %s", config.sweep_name,
               config.preset, len(runs), len(mine), worker, root)
  t0, trained = time.time(), 0
  groups = sweep.seed_groups(mine, config)
  for k, group in enumerate(groups, 1):
    dirs = [root / "runs" / run.run_id for run in group]
    todo = [run for run, d in zip(group, dirs)
            if not finished(run, d) and not (reuse and reuse_record(run, d, Path(reuse)))]
    names = ", ".join(run.run_id for run in group)
    if not todo:
      logging.info("[%d] %s: done already, skipped", k, names)
      continue
    logging.info("[%d] %s: training%s", k, ", ".join(r.run_id for r in todo),
                 f" ({len(todo)} seeds in one program)" if len(group) > 1 else "")
    label = train.PROGRESS.set(f"[{k}/{len(groups)}] {names}: ")
    try:
      if run_on_device(config):
        results = seed_group.train_group([r.config for r in group], dirs)
      else:
        results = [train.train_and_evaluate(group[0].config, dirs[0])]
    finally:
      train.PROGRESS.reset(label)
    trained += len(todo)
    for run, result in zip(group, results):
      if run not in todo:
        continue
      m = result["metrics"]
      logging.info("%s: top-1 err %.2f%% (%d steps, %.0f s)", run.run_id,
                   100 * m["eval_top1_err"], m["steps"], result["wall_time_s"])
    eta = (time.time() - t0) / trained * _count_missing(root, mine)
    logging.info("sweep %d/%d runs done, this worker's ETA %.0f min",
                 len(runs) - _count_missing(root, runs), len(runs), eta / 60)
  missing = _count_missing(root, runs)
  if not records.writes_records():
    return []  # process 0 of a multi-process sweep builds the table
  if missing:
    logging.info("%d runs of the sweep are still missing (other workers?); the table is "
                 "built when all are done: python -m experiments.tables --records %s/runs "
                 "--out %s/results", missing, root, root)
    return []
  finished_runs = [json.loads((root / "runs" / r.run_id / "result.json").read_text())
                   for r in runs]
  try:
    from experiments import tables  # matplotlib, scipy: absent from some GPU images
  except ImportError as e:
    logging.warning("every run is done, but the table needs %s: build it elsewhere with "
                    "python -m experiments.tables --records %s/runs --sweep %s", e.name, root,
                    config.sweep_name)
    return []
  paths = tables.build(config.sweep_name, finished_runs, root / "results")
  logging.info("table written: %s", ", ".join(map(str, paths)))
  print(summary(paths[0]))
  print("\n".join(map(str, paths)))
  return paths


def summary(md_path: Path) -> str:
  """The table and its findings from the markdown file, for the end of a sweep's output."""
  lines = md_path.read_text().splitlines()
  end = lines.index("**Provenance:**") if "**Provenance:**" in lines else len(lines)
  return "\n".join(l for l in lines[:end] if l.startswith(("|", "- ", "#")))


# What a finished run must share with the sweep's run of the same id to count as done.
# data_on_device: the two pipelines draw different epoch orders and crops for a seed, so a
# run of the other one would not pair with this sweep's arms.
# exact_epochs likewise; a record without the field predates it and repeated, then shuffled.
_SAME = ("model", "seed", "dataset", "preset", "num_epochs", "num_train_steps", "batch_size",
         "learning_rate", "image_size", "train_split", "eval_split", "data_on_device",
         "exact_epochs")
# Fields older records lack, at the value every run had before the field existed.
_MISSING_MEANS = {"exact_epochs": False, "data_on_device": False, "seeds_per_program": 1}


def finished(run, workdir: Path) -> bool:
  """Whether ``workdir`` holds ``run``'s result. A result of another budget or recipe (a
  record copied from another preset) is refused, not silently counted as this run."""
  path = workdir / "result.json"
  if not path.exists():
    return False
  done = json.loads(path.read_text()).get("config", {})
  done = {**_MISSING_MEANS, **done}
  differ = [k for k in _SAME
            if k in done and done[k] != run.config.get(k, _MISSING_MEANS.get(k))]
  if differ:
    raise ValueError(f"{workdir} holds a finished run whose " + ", ".join(
        f"{k}={done[k]!r}" for k in differ) + " differ from this sweep's (" + ", ".join(
        f"{k}={run.config.get(k)!r}" for k in differ) + "); move it out of the sweep's workdir")
  return True


# Settings that do not change what a run trains or measures: where data and logs go, how
# often it logs and checkpoints (a resumed run equals an uninterrupted one, tests/test_train.py).
_NOT_TRAINING = ("wandb", "data_dir", "download", "cache", "log_every_steps",
                 "checkpoint_every_steps")


def training_config(config) -> dict:
  """A run's config without the settings of :data:`_NOT_TRAINING`, missing fields at the
  value they had before they existed: two runs with equal training configs are the same
  experiment (on the same machine and code, the same numbers: the CPU runs are deterministic)."""
  c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  c = json.loads(json.dumps(c))  # tuples as a record's JSON holds them: lists
  return {**_MISSING_MEANS, **{k: v for k, v in c.items() if k not in _NOT_TRAINING}}


def reuse_record(run, workdir: Path, reuse: Path) -> bool:
  """Copies into ``workdir`` the record of ``run.run_id`` from another sweep under ``reuse``
  (``<sweep>/<run id>/result.json`` + config.json) whose training config equals this run's,
  with ``reused_from`` added to its result; whether one was found. A sweep then does not
  train again what another sweep already ran (Table 3's, 2's and the width sweep's g3 rows
  are the same runs)."""
  if (workdir / "result.json").exists():
    return False
  want = training_config(run.config)
  for path in sorted(reuse.glob(f"*/{run.run_id}/result.json")):
    done = json.loads(path.read_text())
    if training_config(done.get("config", {})) != want:
      continue
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = path.with_name("config.json")
    if cfg.exists():
      records.atomic_write(workdir / "config.json", cfg.read_text())
    done["reused_from"] = str(path.parent.relative_to(reuse))
    records.atomic_write(workdir / "result.json", json.dumps(done, indent=1, sort_keys=True) + "\n")
    logging.info("%s: reused the record of %s (same training config), not trained again",
                 run.run_id, path.parent)
    return True
  return False


def run_on_device(config) -> bool:
  """Whether the sweep trains with the on-device pipeline (seed groups): data_on_device."""
  return bool(config.get("data_on_device", False))


def _count_missing(root: Path, runs) -> int:
  return sum(not (root / "runs" / r.run_id / "result.json").exists() for r in runs)
