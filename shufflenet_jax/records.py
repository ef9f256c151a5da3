"""The run records in a workdir (docs/design.md section 5): config.json, metrics.jsonl, result.json.

Tables are built from result.json alone; everything a table states about provenance
(device, library versions, commit) is recorded here, when the run finishes.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import jax

_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def writes_records() -> bool:
  """Only process 0 of a multi-process run writes run records, tables and wandb."""
  return jax.process_index() == 0


def atomic_write(path: Path, text: str) -> None:
  # A name of this process's own: no other writer can move or replace it midway.
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  try:
    tmp.write_text(text)
    os.replace(tmp, path)  # a kill leaves the old file or the new one, never half of one
  finally:
    tmp.unlink(missing_ok=True)


def write_config(config, workdir: Path) -> None:
  if writes_records():
    atomic_write(workdir / "config.json", config.to_json_best_effort(indent=1, sort_keys=True))


# The timing fields of a metrics line: they differ between two runs of the same training.
TIMING_KEYS = ("img_per_s", "elapsed_s")


def truncate_metrics(workdir: Path, step: int, final: bool = False,
                     lost_after: int | None = None) -> float:
  """Drops metrics logged after ``step`` (a run killed after its last checkpoint), so a
  resumed run's metrics.jsonl equals an uninterrupted one's. ``final``: ``step`` is the
  run's last, whose final eval line (written after its checkpoint) is written again.

  ``lost_after``: refuse (ValueError) to drop lines beyond ``step + lost_after``: they were
  checkpointed once, so the checkpoints are missing, and the metrics stay as they are.
  Returns the training time of the earlier attempts (the largest ``elapsed_s`` logged)."""
  path = workdir / "metrics.jsonl"
  if not writes_records() or not path.exists():
    return 0.0
  keep, newest, elapsed = [], None, 0.0
  for line in path.read_text().splitlines():
    try:
      row = json.loads(line)
      newest = row["step"] if newest is None else max(newest, row["step"])
      elapsed = max(elapsed, float(row.get("elapsed_s", 0.0)))
      if row["step"] < step or (row["step"] == step and not (final and "eval_top1_err" in row)):
        keep.append(line)
    except (KeyError, TypeError, ValueError):  # JSONDecodeError is a ValueError
      pass  # a line cut short by a kill
  if lost_after is not None and newest is not None and newest > step + lost_after:
    raise ValueError(
        f"{path} has metrics up to step {newest} but the newest readable checkpoint in "
        f"{workdir / 'checkpoints'} is " + (f"at step {step}" if step else "none")
        + ": the checkpoints were lost. Put them back to resume, or move metrics.jsonl "
        f"away to train again from step {step}")
  atomic_write(path, "".join(l + "\n" for l in keep))
  return elapsed


class MetricsWriter:
  """Appends one JSON object per logged step to metrics.jsonl and mirrors it. Each line
  carries ``elapsed_s``: the run's training time so far, over every attempt (the earlier
  attempts' ``earlier_s`` plus this one's since ``started``, a ``time.time()``)."""

  def __init__(self, workdir: Path, mirror=None, earlier_s: float = 0.0,
               started: float | None = None):
    self._path = workdir / "metrics.jsonl"
    self._mirror = mirror
    self._last: dict = {}
    self._earlier_s, self._t0 = earlier_s, time.time() if started is None else started
    if self._path.exists():  # a resumed run: remember what was logged before the kill
      for line in self._path.read_text().splitlines():
        self._last.update({k: v for k, v in json.loads(line).items() if k != "step"})

  def elapsed_s(self) -> float:
    """Training time over every attempt so far (an attempt's time after its last logged
    line is not known, so this is a lower bound after a kill)."""
    return self._earlier_s + time.time() - self._t0

  def write(self, step: int, metrics: dict) -> None:
    if writes_records():
      with open(self._path, "a") as f:
        f.write(json.dumps({"step": step, **metrics,
                            "elapsed_s": round(self.elapsed_s(), 1)}) + "\n")
    self._last.update(metrics)
    if self._mirror is not None:
      self._mirror.log(step, metrics)

  def last(self, *keys: str) -> dict:
    return {k: self._last[k] for k in keys if k in self._last}


@functools.cache
def git_commit() -> str:
  """HEAD's short hash, with "+dirty" when a tracked file outside results/ differs from it
  (the committed records and tables under results/ change while sweeps run; the code that
  produced a record does not). Read once per process, at its first run: a sweep that runs
  for hours executes the code it started with, whatever is committed meanwhile."""
  try:
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=_PROJECT_ROOT,
                            capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)results"],
                           cwd=_PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    return commit + ("+dirty" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def cpu_description() -> str:
  """The CPU's model name and its vector ISA extensions: speed depends on them (e.g. int8
  on AVX-512 VNNI), and hosts of one model name can differ."""
  name, flags = platform.processor() or platform.machine(), []
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        name = line.split(":", 1)[1].strip()
      elif line.startswith("flags"):
        flags = [f for f in line.split(":", 1)[1].split()
                 if f.startswith(("avx", "amx")) or "vnni" in f]
        break
  except OSError:
    pass
  return f"{name} ({' '.join(flags) or 'no AVX'})"


def library_versions() -> dict:
  import flax
  import jaxlib
  import optax
  import orbax.checkpoint
  out = {"python": platform.python_version(), "jax": jax.__version__,
         "jaxlib": jaxlib.__version__,
         "flax": flax.__version__, "optax": optax.__version__,
         "orbax-checkpoint": orbax.checkpoint.__version__}
  try:  # not installed where the on-device pipeline runs without TensorFlow
    import tensorflow_datasets
    out["tensorflow-datasets"] = tensorflow_datasets.__version__
  except ImportError:
    pass
  return out


def device_description() -> dict:
  """The accelerator and the host CPU (model name and vector extensions): runs of one config
  on different CPUs of a pool can differ in their last digits and then in their errors
  (docs/ablations.md, "Runs shared between sweeps")."""
  d = jax.devices()[0]
  return {"platform": d.platform, "device_kind": d.device_kind, "device_count": jax.device_count(),
          "process_count": jax.process_count(), "cpu_count": os.cpu_count(),
          "processor": platform.processor() or platform.machine(), "cpu": cpu_description()}


def run_record(config, *, final_metrics: dict, complexity: dict, mflops_imagenet224: float,
               wall_time_s: float, commit: str, implementations: dict | None = None,
               wall_time_all_attempts_s: float | None = None) -> dict:
  return {
      # the layer implementations the run trained with (``auto`` resolved; train.py)
      "implementations": implementations or {},
      "model": config.model, "dataset": config.dataset, "seed": config.seed,
      "metrics": final_metrics, "params": complexity["params"],
      "mflops": complexity["mflops"], "mflops_resolution": complexity["resolution"],
      "mflops_imagenet224": mflops_imagenet224,
      # this attempt's wall time; and the training time over every attempt of a resumed
      # run (records.MetricsWriter.elapsed_s)
      "wall_time_s": round(wall_time_s, 1),
      "wall_time_all_attempts_s": round(wall_time_all_attempts_s
                                        if wall_time_all_attempts_s is not None
                                        else wall_time_s, 1),
      "device": device_description(),
      "versions": library_versions(), "git_commit": commit,
      "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      "config": json.loads(config.to_json_best_effort()),
  }


def write_result(workdir: Path, result: dict) -> None:
  if writes_records():
    atomic_write(workdir / "result.json", json.dumps(result, indent=1, sort_keys=True) + "\n")
