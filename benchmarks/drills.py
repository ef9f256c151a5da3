"""The bad-command-line drill: every case must fail up front (before TensorFlow or data)
with exit status 2, one `error:` line naming the setting, no traceback and nothing written.

  python -m benchmarks.drills                 # prints the table
  python -m benchmarks.drills --out results/reliability.md

tests/test_drills.py runs the same cases in `make test`; this script also measures each
case's time to the error (the target: <= 5 s on a 2-core machine).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
  if "Traceback" in p.stdout + p.stderr:
    return "a traceback"
  return None


def run_all(workers: int = 4):
  """[(args, named, process, seconds, workdir created)] for every case."""
  with tempfile.TemporaryDirectory() as tmp:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      out = list(pool.map(lambda i: run_bad(BAD[i][0], Path(tmp) / f"w{i}"), range(len(BAD))))
    created = {i for i in range(len(BAD)) if (Path(tmp) / f"w{i}").exists()}
  return [(a, n, p, s, i in created) for i, ((a, n), (p, s)) in enumerate(zip(BAD, out))]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description="The bad-command-line drill.")
  parser.add_argument("--out", help="write the markdown table here")
  parser.add_argument("--workers", type=int, default=1,
                      help="cases run at once (1: each case's time is its own)")
  args = parser.parse_args(argv)
  rows, bad = [], 0
  for case, named, p, seconds, created in run_all(args.workers):
    problem = check(case, named, p) or ("wrote its workdir" if created else None)
    bad += problem is not None
    line = next((l for l in p.stderr.splitlines() if l.startswith("error:")), "")
    rows.append(f"| `{' '.join(case)}` | {p.returncode} | {seconds:.1f} | "
                f"{problem or 'ok'} | {line[:110].replace('|', '/')} |")
    print(rows[-1], flush=True)
  times = sorted(float(r.split(" | ")[2]) for r in rows)
  md = ["# Reliability drill: bad command lines", "",
        f"{len(rows)} bad command lines of `main.py`; {len(rows) - bad} refused as required "
        f"(exit 2, one `error:` line naming the setting, no traceback, no workdir written), "
        f"{bad} not. Time to the error: median {times[len(times) // 2]:.1f} s, max "
        f"{times[-1]:.1f} s ({args.workers} case(s) at a time).", "",
        "| command line (after `main.py`) | exit | s | outcome | the error line |",
        "|---|---|---|---|---|", *rows, "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs. "
        f"Rebuild: `python -m benchmarks.drills --out results/reliability.md`.", ""]
  if args.out:
    Path(args.out).write_text("\n".join(md))
  print("\n".join(md[:3]))
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
