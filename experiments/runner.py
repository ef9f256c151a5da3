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

from experiments import sweep, tables
from shufflenet_jax import train


def default_workdir(config) -> Path:
  return Path("runs") / f"{config.sweep_name}-{config.preset}"


def run_sweep(config, workdir: str | Path | None = None, worker: str = "0/1") -> list[Path]:
  """Trains this worker's share of the sweep; returns the table files if it built them."""
  root = Path(workdir) if workdir else default_workdir(config)
  # Seed-major: every grid point at the first seed, then at the next, so the paired arms of
  # an ablation finish together and a partly done sweep already has whole pairs.
  order = {s: i for i, s in enumerate(config.seeds)}
  runs = sorted(sweep.expand(config), key=lambda r: order[r.point["seed"]])
  mine = sweep.for_worker(runs, sweep.parse_worker(worker))
  logging.info("sweep %s (%s): %d runs, %d for worker %s, in %s", config.sweep_name,
               config.preset, len(runs), len(mine), worker, root)
  t0, trained = time.time(), 0
  for k, run in enumerate(mine, 1):
    run_dir = root / "runs" / run.run_id
    if (run_dir / "result.json").exists():
      logging.info("[%d/%d] %s: done already, skipped", k, len(mine), run.run_id)
      continue
    logging.info("[%d/%d] %s: training", k, len(mine), run.run_id)
    result = train.train_and_evaluate(run.config, run_dir)
    trained += 1
    m = result["metrics"]
    eta = (time.time() - t0) / trained * _count_missing(root, mine)
    logging.info("[%d/%d] %s: top-1 err %.2f%% (%d steps, %.0f s) | sweep %d/%d runs done, "
                 "this worker's ETA %.0f min", k, len(mine), run.run_id,
                 100 * m["eval_top1_err"], m["steps"], result["wall_time_s"],
                 len(runs) - _count_missing(root, runs), len(runs), eta / 60)
  missing = _count_missing(root, runs)
  if missing:
    logging.info("%d runs of the sweep are still missing (other workers?); the table is "
                 "built when all are done: python -m experiments.tables --records %s/runs "
                 "--out %s/results", missing, root, root)
    return []
  records = [json.loads((root / "runs" / r.run_id / "result.json").read_text()) for r in runs]
  paths = tables.build(config.sweep_name, records, root / "results")
  logging.info("table written: %s", ", ".join(map(str, paths)))
  print("\n".join(map(str, paths)))
  return paths


def _count_missing(root: Path, runs) -> int:
  return sum(not (root / "runs" / r.run_id / "result.json").exists() for r in runs)
