"""Checks finished training workdirs: their records parse, result.json agrees with
metrics.jsonl and config.json, and the newest checkpoint restores at the final step.

  python -m shufflenet_jax.verify runs/quick               # one run's workdir
  python -m shufflenet_jax.verify runs/ablation_shuffle-power   # every run of a sweep

One line per run (``ok:`` or ``FAILED:`` with every problem found); exit status 0 when all
pass, 1 when any fails, 2 for a path that is not a workdir. Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shufflenet_jax.records import TIMING_KEYS
from shufflenet_jax.validate import RECORD_FILES

EVAL_KEYS = ("eval_loss", "eval_top1_err", "eval_top5_err", "eval_examples")
TRAIN_KEYS = ("train_loss", "train_top1_err")


def _read(path: Path):
  """(parsed JSON, None) or (None, the problem)."""
  if not path.is_file():
    return None, f"{path.name} is missing" if not path.exists() else f"{path.name} is not a file"
  try:
    return json.loads(path.read_text()), None
  except (ValueError, UnicodeDecodeError) as e:
    return None, f"{path.name} does not parse ({str(e).splitlines()[0]})"


def _metrics_lines(path: Path) -> tuple[list[dict], list[str]]:
  rows, problems = [], []
  if not path.is_file():
    return rows, [f"{path.name} is missing" if not path.exists() else f"{path.name} is not a file"]
  for i, line in enumerate(path.read_text().splitlines(), 1):
    try:
      row = json.loads(line)
      if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        raise ValueError("no integer step")
      rows.append(row)
    except ValueError as e:
      problems.append(f"metrics.jsonl line {i} does not parse ({str(e).splitlines()[0]})")
  return rows, problems


def problems(workdir: Path, restore: bool = True) -> tuple[list[str], str]:
  """(every problem found in the finished run in ``workdir``, a one-line summary)."""
  out = []
  config, p = _read(workdir / "config.json")
  out += [p] if p else []
  result, p = _read(workdir / "result.json")
  out += [p] if p else []
  rows, ps = _metrics_lines(workdir / "metrics.jsonl")
  out += ps
  if result is None:
    if not (workdir / "result.json").exists():  # a run still training, or killed
      out = [p for p in out if p not in ("result.json is missing", "metrics.jsonl is missing")]
      out.insert(0, "not finished: no result.json yet (metrics up to step "
                 f"{max((r['step'] for r in rows), default=0)})")
    return out, ""
  metrics, steps = result.get("metrics", {}), result.get("metrics", {}).get("steps")
  if config is not None and result.get("config") != config:
    differ = sorted(k for k in set(config) | set(result.get("config", {}))
                    if config.get(k) != result.get("config", {}).get(k))
    out.append(f"result.json's config differs from config.json in {', '.join(differ[:5])}")
  untimed = [json.dumps({k: v for k, v in r.items() if k not in TIMING_KEYS}, sort_keys=True)
             for r in rows]
  if len(set(untimed)) != len(untimed):
    out.append("metrics.jsonl holds a line twice")
  if any(b["step"] < a["step"] for a, b in zip(rows, rows[1:])):
    out.append("metrics.jsonl's steps go backwards")
  finals = [r for r in rows if "eval_top1_err" in r]
  if not finals or finals[-1] is not rows[-1] or finals[-1]["step"] != steps:
    out.append(f"metrics.jsonl does not end with the final eval at step {steps}")
  else:
    differ = [k for k in EVAL_KEYS if finals[-1].get(k) != metrics.get(k)]
    if differ:
      out.append(f"result.json's {', '.join(differ)} differ from metrics.jsonl's final eval")
  train_rows = [r for r in rows if "train_loss" in r]
  if train_rows:
    differ = [k for k in TRAIN_KEYS if train_rows[-1].get(k) != metrics.get(k)]
    if differ:
      out.append(f"result.json's {', '.join(differ)} differ from metrics.jsonl's last train "
                 f"line")
  checkpoint = "not restored"
  if restore and config is not None:
    try:
      from shufflenet_jax import train
      _, step = train.restore_model(workdir)
      checkpoint = f"checkpoint of step {step} restores"
      if step != steps:
        out.append(f"the newest checkpoint is of step {step}, the result of step {steps}")
    except Exception as e:  # noqa: BLE001 - any failure to restore is the finding
      out.append(f"the newest checkpoint does not restore ({type(e).__name__}: "
                 f"{str(e).splitlines()[0][:200] if str(e) else ''})")
  err = metrics.get("eval_top1_err")
  summary = (f"{steps} steps, top-1 err {100 * err:.2f}%" if isinstance(err, float)
             else f"{steps} steps") + f", {checkpoint}"
  return out, summary


def workdirs(path: Path) -> list[Path]:
  """``path`` itself when it is a run's workdir, else the runs of the sweep under it."""
  if any((path / n).exists() for n in RECORD_FILES):
    return [path]
  return sorted(d for d in (path / "runs").glob("*") if d.is_dir())


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("paths", nargs="+", type=Path,
                      help="a run's workdir, or a sweep's (its runs/ are checked)")
  parser.add_argument("--no_restore", action="store_true",
                      help="skip restoring the checkpoints (records only; no JAX work)")
  args = parser.parse_args(argv)
  failed = checked = 0
  for path in args.paths:
    dirs = workdirs(path) if path.is_dir() else []
    if not dirs:
      print(f"error: {path} is neither a run's workdir (config.json, metrics.jsonl, "
            f"result.json) nor a sweep's (runs/<run>/)", file=sys.stderr)
      return 2
    for d in dirs:
      found, summary = problems(d, restore=not args.no_restore)
      checked += 1
      failed += bool(found)
      print(f"FAILED: {d}: " + "; ".join(found) if found else f"ok: {d} ({summary})",
            flush=True)
  print(f"{checked - failed}/{checked} workdirs verified")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
