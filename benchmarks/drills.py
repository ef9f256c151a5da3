"""The reliability drills (issue 30), each a table in results/reliability.md:

- bad command lines: each must fail up front (before TensorFlow or data) with exit status
  2, one `error:` line naming the setting, no traceback and nothing written;
- corrupt workdirs: each is recovered (the rerun ends equal to an uninterrupted run) or
  refused in one line naming the file with the workdir left as it was, or (a finished run)
  reported by `python -m shufflenet_jax.verify`;
- kills at random points: SIGKILLs spread over one short run, each restart resuming; the
  end must be bitwise equal to an uninterrupted run;
- two writers on one workdir, a sweep started twice, a run whose loss becomes non-finite,
  and the wandb service after a SIGKILL (no orphans).

  python -m benchmarks.drills                 # prints the tables
  python -m benchmarks.drills --out results/reliability.md
  python -m benchmarks.drills --only bad,kills

tests/test_drills.py runs the same cases in `make test`; this script also measures each
bad command line's time to the error (the target: <= 5 s on a 2-core machine).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import signal
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shufflenet_jax import mdtable
from tests.tiny import tiny_flags

ROOT = Path(__file__).resolve().parents[1]

QUICK = "--config=configs/default.py:quick"
SWEEP = "--config=configs/ablation_depth.py"

# (command-line arguments after main.py; {w} is a fresh workdir), the setting the one
# error line must name.
BAD = [
    ([QUICK, "--config.batch_size=-8"], "batch_size=-8"),
    ([QUICK, "--config.batch_size=0"], "batch_size=0"),
    ([QUICK, "--config.eval_batch_size=-1"], "eval_batch_size=-1"),
    ([QUICK, "--config.eval_batch_size=0"], "eval_batch_size=0"),
    ([QUICK, "--config.image_size=-5"], "image_size=-5"),
    ([QUICK, "--config.image_size=2"], "image_size=2"),
    ([QUICK, "--config.augment=bogus"], "augment='bogus'"),
    ([QUICK, "--config.dtype=float16"], "dtype='float16'"),
    ([QUICK, "--config.pointwise_impl=fast"], "pointwise_impl='fast'"),
    ([QUICK, "--config.depthwise_impl=bogus"], "depthwise_impl='bogus'"),
    ([QUICK, "--config.pool_impl=bogus"], "pool_impl='bogus'"),
    ([QUICK, "--config.materialize_units=maybe"], "materialize_units='maybe'"),
    ([QUICK, "--config.wandb.mode=loud"], "wandb.mode='loud'"),
    ([QUICK, "--config.model=shufflenet_1.0x_g5"], "shufflenet_1.0x_g5"),
    ([QUICK, "--config.model=resnet18"], "resnet18"),
    ([QUICK, "--config.dataset=mnist"], "dataset='mnist'"),
    ([QUICK, "--config.log_every_steps=0"], "log_every_steps=0"),
    ([QUICK, "--config.checkpoint_every_steps=0"], "checkpoint_every_steps=0"),
    ([QUICK, "--config.checkpoint_every_steps=-3"], "checkpoint_every_steps=-3"),
    ([QUICK, "--config.num_train_steps=0"], "num_train_steps=0"),
    ([QUICK, "--config.num_train_steps=-7"], "num_train_steps=-7"),
    ([QUICK, "--config.num_epochs=0"], "num_epochs=0"),
    ([QUICK, "--config.num_epochs=-1"], "num_epochs=-1"),
    ([QUICK, "--config.learning_rate=-0.1"], "learning_rate=-0.1"),
    ([QUICK, "--config.learning_rate=0"], "learning_rate=0"),
    ([QUICK, "--config.weight_decay=-1e-4"], "weight_decay=-0.0001"),
    ([QUICK, "--config.momentum=1.5"], "momentum=1.5"),
    ([QUICK, "--config.label_smoothing=2.0"], "label_smoothing=2.0"),
    ([QUICK, "--config.warmup_steps=-5"], "warmup_steps=-5"),
    ([QUICK, "--config.classifier_lr_scale=-1"], "classifier_lr_scale=-1"),
    ([QUICK, "--config.lr_reference_batch=0"], "lr_reference_batch=0"),
    ([QUICK, "--config.shuffle_buffer=0"], "shuffle_buffer=0"),
    ([QUICK, "--config.crop_padding=-2"], "crop_padding=-2"),
    ([QUICK, "--config.seed=-1"], "seed=-1"),
    ([QUICK, "--config.train_split=train[:100]"], "batch_size=128"),
    ([QUICK, "--config.seeds_per_program=4"], "seeds_per_program=4"),
    ([QUICK, "--config.seeds_per_program=0"], "seeds_per_program=0"),
    ([QUICK, "--config.augment=random_resized_crop", "--config.crop_area=(0.5,0.2)"],
     "crop_area=(0.5, 0.2)"),
    ([QUICK, "--config.bogus_key=1"], "bogus_key"),
    ([QUICK, "--config.batch_size=abc"], "--config.batch_size"),
    (["--config=configs/default.py:fast"], "fast"),
    (["--config=configs/nonexistent.py"], "nonexistent.py"),
    ([QUICK, "--workdir=/etc/passwd"], "--workdir=/etc/passwd"),
    ([QUICK, "--workdir=/etc/passwd/run"], "--workdir=/etc/passwd/run"),
    ([QUICK, "--workdir="], "--workdir"),
    ([QUICK, "--process_id=2", "--num_processes=2", "--coordinator_address=localhost:9"],
     "--process_id=2"),
    ([QUICK, "--num_processes=-1"], "--num_processes=-1"),
    ([SWEEP, "--config.seeds=()"], "seeds"),
    ([SWEEP, "--config.seeds=(0,0)"], "seeds=(0, 0)"),
    ([SWEEP, "--config.sweep.width=()"], "width"),
    ([SWEEP, "--config.sweep.width=(0.3,)"], "0.3"),
    ([SWEEP, "--config.sweep_name=my_sweep"], "sweep_name='my_sweep'"),
    ([SWEEP, "--worker=2/2"], "--worker='2/2'"),
    ([SWEEP, "--config.learning_rate=-1"], "learning_rate=-1"),
    (["--config=configs/imagenet.py:eval", "--workdir={w}"], "init_from=''"),
    (["--config=configs/imagenet.py:eval", "--config.init_from=/nonexistent", "--workdir={w}"],
     "init_from='/nonexistent'"),
    (["--config=configs/imagenet.py:evaluate", "--workdir={w}"], "evaluate"),
    ([QUICK, "--config.model_kwargs.shuffle_order=reverse"], "shuffle_order"),
]


def run_bad(args, workdir: Path):
  args = [a.replace("{w}", str(workdir)) for a in args]
  if not any(a.startswith("--workdir") for a in args):
    args.append(f"--workdir={workdir}")
  t0 = time.time()
  p = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                     text=True, timeout=300, env={**os.environ, "JAX_COORDINATOR_ADDRESS": ""})
  return p, time.time() - t0



def check(args, named: str, p: subprocess.CompletedProcess) -> str | None:
  """None when the case failed as it must, else what went wrong."""
  errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
  if p.returncode != 2:
    return f"exit status {p.returncode}"
  if len(errors) != 1:
    return f"{len(errors)} error lines"
  if named not in errors[0]:
    return f"the error does not name {named!r}"
  return traceback_in(p)


def traceback_in(p: subprocess.CompletedProcess) -> str | None:
  """None without a traceback in ``p``'s output, else 'a traceback' and its last lines (what
  raised, and where: enough to fix a failure seen once, e.g. in CI)."""
  text = p.stdout + p.stderr
  if "Traceback" not in text:
    return None
  tail = text[text.rindex("Traceback"):].splitlines()
  return "a traceback: " + " | ".join(l.strip() for l in tail[-6:])


def run_all(workers: int = 4):
  """[(args, named, process, seconds, workdir created)] for every case."""
  with tempfile.TemporaryDirectory() as tmp:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      out = list(pool.map(lambda i: run_bad(BAD[i][0], Path(tmp) / f"w{i}"), range(len(BAD))))
    created = {i for i in range(len(BAD)) if (Path(tmp) / f"w{i}").exists()}
  return [(a, n, p, s, i in created) for i, ((a, n), (p, s)) in enumerate(zip(BAD, out))]


# ------------------------------------------------------------------ runs, kills, corruption

# A short real run (the tiny model on Fashion-MNIST): 24 steps, a checkpoint every 4.
RUN = [QUICK, "--config.wandb.mode=disabled",
       *tiny_flags(num_train_steps=24, log_every_steps=2, checkpoint_every_steps=4)]


def main_py(workdir: Path, *extra: str, wrap: list[str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
  """``main.py`` on the drill's short run in ``workdir`` (``wrap``: a command before it)."""
  return subprocess.run([*(wrap or []), sys.executable, "main.py", *RUN, *extra,
                         f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)


def reference_run(workdir: Path) -> Path:
  """An uninterrupted run of the drill's short run: what every recovered run must equal."""
  p = main_py(workdir)
  if p.returncode != 0:
    raise RuntimeError(f"the reference run failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
  return workdir


def untimed_metrics(workdir: Path) -> list[dict]:
  from shufflenet_jax import records
  return [{k: v for k, v in json.loads(l).items() if k not in records.TIMING_KEYS}
          for l in (workdir / "metrics.jsonl").read_text().splitlines()]


def differs_from(workdir: Path, reference: Path) -> str | None:
  """None when ``workdir`` holds the same finished run as ``reference`` (bitwise: every
  metrics line but its timing, result.json's metrics, config.json), else how it differs."""
  if not (workdir / "result.json").is_file():
    return "no result.json"
  if untimed_metrics(workdir) != untimed_metrics(reference):
    return "metrics.jsonl differs"
  metrics = lambda d: json.loads((d / "result.json").read_text())["metrics"]  # noqa: E731
  if metrics(workdir) != metrics(reference):
    return "result.json's metrics differ"
  if (workdir / "config.json").read_text() != (reference / "config.json").read_text():
    return "config.json differs"
  return None


def snapshot(workdir: Path) -> dict:
  """Every file under ``workdir`` (but the lock) and its bytes: 'nothing was changed'."""
  return {str(f.relative_to(workdir)): f.read_bytes() for f in sorted(workdir.rglob("*"))
          if f.is_file() and f.name != ".lock"}


def _cut_last_metrics_line(d: Path) -> None:
  text = (d / "metrics.jsonl").read_text()
  (d / "metrics.jsonl").write_text(text[:len(text) - 25])


def _truncate_checkpoint(d: Path, step: int = 24) -> None:
  for f in (d / "checkpoints" / str(step)).rglob("*"):
    if f.is_file() and f.stat().st_size > 100:
      f.write_bytes(f.read_bytes()[:50])


def _replace_with_dir(name: str):
  def prepare(d: Path) -> None:
    (d / name).unlink()
    (d / name).mkdir()
  return prepare


def _replace_checkpoints_with_file(d: Path) -> None:
  shutil.rmtree(d / "checkpoints")
  (d / "checkpoints").write_text("not a checkpoint directory\n")


def _garbage(name: str):
  def prepare(d: Path) -> None:
    (d / name).write_text('{"model": "shufflenet_tiny", "batch_si')
  return prepare


def _rm(name: str):
  def prepare(d: Path) -> None:
    (d / name).unlink()
  return prepare


def _all(*steps):
  def prepare(d: Path) -> None:
    for step in steps:
      step(d)
  return prepare


def _stale_lock(d: Path) -> None:
  (d / ".lock").write_text("999999\n")  # a lock file whose holder is long gone


def _read_only_wrap(d: Path) -> list[str] | None:
  """A command that runs what follows with ``d`` mounted read-only (a user and mount
  namespace: no root needed where the kernel allows them); None where it cannot."""
  try:
    ok = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
  except (OSError, subprocess.TimeoutExpired):
    return None
  if ok.returncode:
    return None
  return ["unshare", "-rm", "sh", "-c", f'mount --bind "{d}" "{d}" && mount -o remount,ro,'
          f'bind "{d}" "{d}" && exec "$@"', "sh"]


# (case, how the finished reference run is damaged, extra command-line arguments, outcome,
# what the one error line (refused) or verify's line (verify) must name). Outcomes:
# recovers: exit 0, the run ends equal to the uninterrupted one; refused: exit 2, one
# error line, the workdir unchanged; verify: the rerun skips the finished run (exit 0) and
# `python -m shufflenet_jax.verify` fails it naming the damage.
CORRUPT = [
    ("a metrics line cut mid-line, no result.json",
     _all(_cut_last_metrics_line, _rm("result.json")), [], "recovers", None),
    ("result.json deleted (killed between the final eval and result.json)",
     _rm("result.json"), [], "recovers", None),
    ("newest checkpoint truncated, no result.json",
     _all(_truncate_checkpoint, _rm("result.json")), [], "recovers", None),
    ("a stale lock file of a killed run, no result.json",
     _all(_stale_lock, _rm("result.json")), [], "recovers", None),
    ("garbage config.json, no result.json",
     _all(_garbage("config.json"), _rm("result.json")), [], "refused", "config.json"),
    ("garbage config.json, finished run", _garbage("config.json"), [], "refused",
     "config.json"),
    ("config.json of other settings than the command line", _rm("result.json"),
     ["--config.learning_rate=0.5"], "refused", "learning_rate=0.8 there, 0.5 now"),
    ("finished run rerun with other settings", lambda d: None,
     ["--config.num_train_steps=30"], "refused", "num_train_steps=24 there, 30 now"),
    ("garbage result.json", _garbage("result.json"), [], "refused", "result.json"),
    ("checkpoints/ replaced by a file", _all(_replace_checkpoints_with_file,
                                             _rm("result.json")), [], "refused", "checkpoints"),
    ("metrics.jsonl is a directory", _all(_replace_with_dir("metrics.jsonl"),
                                          _rm("result.json")), [], "refused", "metrics.jsonl"),
    ("result.json is a directory", _replace_with_dir("result.json"), [], "refused",
     "result.json"),
    ("config.json is a directory", _all(_replace_with_dir("config.json"), _rm("result.json")),
     [], "refused", "config.json"),
    ("checkpoints deleted, metrics kept, no result.json",
     _all(lambda d: shutil.rmtree(d / "checkpoints"), _rm("result.json")), [], "refused",
     "the checkpoints were lost"),
    ("read-only file system, no result.json", _rm("result.json"), ["READ_ONLY"], "refused",
     "is not writable"),
    ("newest checkpoint truncated, finished run", _truncate_checkpoint, [], "verify",
     "checkpoint does not restore"),
    ("a metrics line cut mid-line, finished run", _cut_last_metrics_line, [], "verify",
     "metrics.jsonl line"),
]


def corrupt_case(case, reference: Path, workdir: Path) -> tuple[str, str, str]:
  """(outcome seen, 'ok' or what went wrong, the line it printed) for one CORRUPT case, on
  a copy of ``reference`` in ``workdir``."""
  _, prepare, extra, outcome, named = case
  shutil.copytree(reference, workdir, ignore=shutil.ignore_patterns(".lock"))
  prepare(workdir)
  wrap = None
  if "READ_ONLY" in extra:
    extra, wrap = [], _read_only_wrap(workdir)
    if wrap is None:
      return "not run", "no user/mount namespace here (unshare -rm)", ""
  before = snapshot(workdir)
  p = main_py(workdir, *extra, wrap=wrap)
  errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
  line = errors[0] if errors else ""
  if outcome == "recovers":
    if p.returncode != 0:
      return f"exit {p.returncode}", (errors or p.stderr.splitlines() or [""])[-1][:200], line
    problem = differs_from(workdir, reference)
    return ("recovered" if problem is None else "resumed"), problem or "ok", line
  if outcome == "refused":
    if p.returncode != 2 or len(errors) != 1:
      return f"exit {p.returncode}", f"{len(errors)} error lines: {p.stderr[-300:]}", line
    problem = (f"the error does not name {named!r}" if named not in line
               else traceback_in(p) or ("the workdir was changed"
                                        if snapshot(workdir) != before else "ok"))
    return "refused", problem, line
  # verify: the finished run is left alone by a rerun, and verify finds the damage
  if p.returncode != 0:
    return f"exit {p.returncode}", (errors or [""])[-1][:200], line
  v = subprocess.run([sys.executable, "-m", "shufflenet_jax.verify", str(workdir)], cwd=ROOT,
                     capture_output=True, text=True, timeout=600)
  line = next((l for l in v.stdout.splitlines() if l.startswith("FAILED")), "")
  if v.returncode != 1 or named not in v.stdout:
    return f"verify exit {v.returncode}", v.stdout[-300:] + v.stderr[-300:], line
  return "found by verify", "ok", line


def run_corrupt(reference: Path, root: Path, workers: int = 2):
  """[(case, outcome seen, 'ok' or the problem, the line printed)] for every case."""
  def one(i):
    return corrupt_case(CORRUPT[i], reference, root / f"c{i}")
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    return [(c, *r) for c, r in zip(CORRUPT, pool.map(one, range(len(CORRUPT))))]


def kill_drill(reference: Path, workdir: Path, kills: int = 6, seed: int = 0) -> dict:
  """SIGKILLs the drill's short run ``kills`` times at random points (the first at a random
  moment of its start-up, the others a random 0-2 s after the attempt logs its first new
  line, before its second), restarting it each time; then lets it finish. Returns what
  happened and whether the end is bitwise equal to ``reference``."""
  rng = random.Random(seed)
  points, attempts = [], 0
  while len(points) < kills:
    attempts += 1
    proc = subprocess.Popen([sys.executable, "main.py", *RUN, f"--workdir={workdir}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines0 = _line_count(workdir)
    deadline = time.time() + (rng.uniform(1, 8) if not points else 900)
    while proc.poll() is None and time.time() < deadline and (
        not points or _line_count(workdir) <= lines0):
      time.sleep(0.02)
    if points:  # a random 0-2 s more, but no further than the attempt's second new line
      until = time.time() + rng.uniform(0, 2)  # (a fast machine would otherwise finish the
      while (proc.poll() is None and time.time() < until  # run before the last kill)
             and _line_count(workdir) < lines0 + 2):
        time.sleep(0.02)
    if proc.poll() is not None:  # finished before the kill: start over from a copy
      points.append(None)
      break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    points.append((_line_count(workdir), _checkpoints(workdir)))
  killed = [p for p in points if p is not None]
  final = main_py(workdir)
  problem = (f"the last run exited {final.returncode}" if final.returncode
             else differs_from(workdir, reference))
  return {"kills": len(killed), "attempts": attempts + 1, "points": killed,
          "problem": problem}


def _line_count(workdir: Path) -> int:
  try:
    return (workdir / "metrics.jsonl").read_text().count("\n")
  except OSError:
    return 0


def _checkpoints(workdir: Path) -> list[int]:
  return sorted(int(d.name) for d in (workdir / "checkpoints").glob("*") if d.name.isdigit())


def two_writers(workdir: Path) -> str:
  """'ok' when a second process on a working run's workdir is refused at once naming the
  first's pid, the first ends normally, and no metrics line is written twice."""
  first = subprocess.Popen([sys.executable, "main.py", *RUN, f"--workdir={workdir}"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
  try:
    deadline = time.time() + 600
    while not (workdir / "config.json").exists():  # written under the lock
      if first.poll() is not None or time.time() > deadline:
        return f"the first run ended early: {first.stdout.read()[-300:]}"
      time.sleep(0.05)
    second = main_py(workdir)
  finally:
    out, _ = first.communicate(timeout=900)
  if second.returncode != 2 or f"(pid {first.pid}" not in second.stderr:
    return f"second writer: exit {second.returncode}: {second.stderr[-300:]}"
  if first.returncode != 0:
    return f"the first run failed: {out[-300:]}"
  lines = [json.dumps(l, sort_keys=True) for l in untimed_metrics(workdir)]
  return "ok" if len(lines) == len(set(lines)) else "a metrics line written twice"


def sweep_twice(root: Path) -> str:
  """'ok' when a second copy of a running sweep (same workdir, same --worker) is refused at
  once naming the first's pid, and the first goes on."""
  args = [sys.executable, "main.py", "--config=configs/ablation_depth.py",
          "--config.wandb.mode=disabled", *tiny_flags(num_train_steps=24)[1:],
          "--config.seeds=(0,)", f"--workdir={root}"]  # the sweep's own models, tiny budget
  first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
  try:
    deadline = time.time() + 600
    while not list(root.glob("runs/*/config.json")):  # the first run has started
      if first.poll() is not None or time.time() > deadline:
        return f"the first sweep ended early: {first.stderr.read()[-300:]}"
      time.sleep(0.05)
    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    alive = first.poll() is None
  finally:
    first.kill()
    first.communicate()
  if second.returncode != 2 or f"(pid {first.pid}" not in second.stderr:
    return f"second sweep: exit {second.returncode}: {second.stderr[-300:]}"
  return "ok" if alive else "the first sweep stopped when the second started"


def non_finite(workdir: Path) -> str:
  """'ok' when a run whose loss becomes non-finite stops with one line (exit 2), writes no
  result.json and keeps what it had."""
  p = main_py(workdir, "--config.learning_rate=1e30")
  errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
  if p.returncode != 2 or len(errors) != 1 or "non-finite" not in errors[0]:
    return f"exit {p.returncode}: {p.stderr[-300:]}"
  if (workdir / "result.json").exists():
    return "a result.json was written"
  return "ok: " + errors[0]


def orphans_after_kill(workdir: Path, wait_s: float = 30) -> tuple[str, float]:
  """('ok' or the problem, seconds the wandb service outlived its run after a SIGKILL) for
  a run with wandb in offline mode."""
  proc = subprocess.Popen([sys.executable, "main.py", *RUN, "--config.wandb.mode=offline",
                           "--config.num_train_steps=400", f"--workdir={workdir}"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline, core = time.time() + 600, None
  while core is None and proc.poll() is None and time.time() < deadline:
    core = _wandb_core_of(proc.pid)
    time.sleep(0.2)
  if core is None:
    proc.kill()
    return "no wandb service was started", 0.0
  helpers = _processes_watching(core, b"--parent-pid")  # wandb-symon, the system monitor
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  t0 = time.time()
  while any(map(_alive, [core, *helpers])) and time.time() - t0 < wait_s:
    time.sleep(0.1)
  lived = time.time() - t0
  left = [pid for pid in [core, *helpers] if _alive(pid)]
  for pid in left:
    os.kill(pid, signal.SIGKILL)
  if left:
    return f"wandb processes {left} still running {wait_s:.0f} s after the kill", lived
  return "ok", lived


def _wandb_core_of(pid: int) -> int | None:
  """The pid of the wandb service started for process ``pid`` (it is passed --pid)."""
  found = _processes_watching(pid, b"--pid")
  return found[0] if found else None


def _processes_watching(pid: int, flag: bytes) -> list[int]:
  """Processes started with ``<flag> <pid>`` on their command line."""
  out = []
  for d in Path("/proc").glob("[0-9]*"):
    try:
      cmd = (d / "cmdline").read_bytes().split(b"\0")
    except OSError:
      continue
    if flag in cmd and cmd[cmd.index(flag) + 1:cmd.index(flag) + 2] == [str(pid).encode()]:
      out.append(int(d.name))
  return out


def _alive(pid: int) -> bool:
  try:
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
  except OSError:
    return False
  return state != "Z"


SECTIONS = ("bad", "corrupt", "kills", "writers", "orphans")


def bad_section(workers: int) -> tuple[list[str], int]:
  rows, bad = [], 0
  for case, named, p, seconds, created in run_all(workers):
    problem = check(case, named, p) or ("wrote its workdir" if created else None)
    bad += problem is not None
    line = next((l for l in p.stderr.splitlines() if l.startswith("error:")), "")
    rows.append([f"`{' '.join(case)}`", p.returncode, f"{seconds:.1f}", problem or "ok",
                 line[:110].replace("|", "/")])
    print(mdtable.row(rows[-1]), flush=True)
  times = sorted(float(r[2]) for r in rows)
  return ["## Bad command lines", "",
          f"{len(rows)} bad command lines of `main.py`; {len(rows) - bad} refused as required "
          f"(exit 2, one `error:` line naming the setting, no traceback, no workdir written), "
          f"{bad} not. Time to the error: median {times[len(times) // 2]:.1f} s, max "
          f"{times[-1]:.1f} s ({workers} case(s) at a time).", "",
          *mdtable.markdown(["command line (after `main.py`)", "exit", "s", "outcome",
                             "the error line"], rows), ""], bad


def corrupt_section(reference: Path, root: Path) -> tuple[list[str], int]:
  rows, bad = [], 0
  for (case, _, extra, expected, named), seen, problem, line in run_corrupt(reference, root):
    bad += problem != "ok"
    line = line.replace(str(root), "<tmp>").replace("|", "/")
    rows.append([case, expected, seen, problem.replace("|", "/")[:160], line[:240]])
    print(mdtable.row(rows[-1]), flush=True)
  return ["## Corrupt workdirs", "",
          f"{len(rows)} damaged copies of a finished {RUN_TEXT}, each rerun with the same "
          f"command line; {len(rows) - bad} handled as required, {bad} not. *recovers*: the "
          f"rerun ends bitwise equal to the uninterrupted run (metrics.jsonl but its timing, "
          f"result.json's metrics, config.json); *refused*: exit 2, one `error:` line naming "
          f"the file, the workdir unchanged; *verify*: the rerun leaves the finished run "
          f"alone and `python -m shufflenet_jax.verify` fails it, naming the damage.", "",
          *mdtable.markdown(["damage", "required", "seen", "check", "the line printed"], rows),
          ""], bad


def kills_section(reference: Path, workdir: Path, kills: int = 6) -> tuple[list[str], int]:
  out = kill_drill(reference, workdir, kills)
  ok = out["kills"] >= 5 and out["problem"] is None
  points = ", ".join(f"{lines} lines/ckpt {ckpts[-1] if ckpts else '-'}"
                     for lines, ckpts in out["points"])
  print(out, flush=True)
  return ["## Kills at random points", "",
          f"One {RUN_TEXT}, SIGKILLed {out['kills']} times at random points (the first in its "
          f"start-up, the others a random 0-2 s into training, before a second new metrics "
          f"line) and restarted each time: "
          f"{out['attempts']} starts. The end is "
          + ("**bitwise equal** to the uninterrupted run" if out["problem"] is None
             else f"**not** equal: {out['problem']}")
          + f". Where each kill landed (metrics lines written / newest checkpoint): {points}.",
          ""], 0 if ok else 1


def writers_section(workdir: Path) -> tuple[list[str], int]:
  result, sweeps, stop = two_writers(workdir / "run"), sweep_twice(workdir / "sweep"), \
      non_finite(workdir / "nonfinite")
  print("two writers:", result, "| sweep twice:", sweeps, "| non-finite:", stop, flush=True)
  return ["## Two writers, a failing run", "",
          "- A second `main.py` on the workdir of a run in progress: "
          + ("refused at once (exit 2, naming the first's pid); the first ran to the end "
             "and wrote no metrics line twice." if result == "ok" else f"FAILED: {result}"),
          "- The same sweep started twice (same workdir and `--worker`): "
          + ("the second refused at once (exit 2, naming the first's pid), the first "
             "training on." if sweeps == "ok" else f"FAILED: {sweeps}"),
          "- A run whose loss becomes non-finite (`--config.learning_rate=1e30`): "
          + (f"stopped with one line, exit 2, no result.json: `{stop[4:]}`"
             if stop.startswith("ok") else f"FAILED: {stop}"), ""], \
      sum(r != "ok" for r in (result, sweeps, stop[:2]))


def orphans_section(workdir: Path) -> tuple[list[str], int]:
  result, lived = orphans_after_kill(workdir)
  print("orphans:", result, f"{lived:.1f} s", flush=True)
  return ["## No orphans", "",
          "A run with wandb in offline mode, SIGKILLed once its wandb service was up: "
          + (f"`wandb-core` (started with the run's pid to watch) and its system monitor "
             f"were gone {lived:.1f} s later." if result == "ok" else f"FAILED: {result}")
          + " tf.data works in threads of the run's own process (no worker processes).", ""], \
      0 if result == "ok" else 1


RUN_TEXT = "short run (the tiny model on Fashion-MNIST, 24 steps of 32, a checkpoint every 4)"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description="The reliability drills.")
  parser.add_argument("--out", help="write the markdown report here")
  parser.add_argument("--only", default=",".join(SECTIONS),
                      help=f"comma-separated drills to run, of {', '.join(SECTIONS)}")
  parser.add_argument("--workers", type=int, default=1,
                      help="bad command lines run at once (1: each case's time is its own)")
  args = parser.parse_args(argv)
  only = args.only.split(",")
  if not set(only) <= set(SECTIONS):
    parser.error(f"--only={args.only!r}; valid: a comma-separated subset of "
                 f"{', '.join(SECTIONS)}")
  load = os.getloadavg()
  md, bad = ["# Reliability drills", "",
             f"`python -m benchmarks.drills --out results/reliability.md` (commit "
             f"{_commit()}), on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, load average {load[0]:.1f} when it started (other work "
             f"beside it slows every timing).", ""], 0
  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    reference = None
    if {"corrupt", "kills"} & set(only):
      reference = reference_run(tmp / "reference")
    for name in only:
      lines, n = {"bad": lambda: bad_section(args.workers),
                  "corrupt": lambda: corrupt_section(reference, tmp / "corrupt"),
                  "kills": lambda: kills_section(reference, tmp / "kills"),
                  "writers": lambda: writers_section(tmp / "writers"),
                  "orphans": lambda: orphans_section(tmp / "orphans")}[name]()
      md += lines
      bad += n
  if args.out:
    Path(args.out).write_text("\n".join(md))
  print("\n".join(l for l in md if not l.startswith("|")))
  return 1 if bad else 0


def _commit() -> str:
  from shufflenet_jax import records
  return records.git_commit()


if __name__ == "__main__":
  sys.exit(main())
