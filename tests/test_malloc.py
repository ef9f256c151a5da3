"""shufflenet_jax.malloc: a command re-executes itself once under the system's tcmalloc
(LD_PRELOAD), keeps the system allocator when asked to, and says which one it runs on."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shufflenet_jax import malloc

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import os; from shufflenet_jax import malloc; print(os.getpid()); "
         "malloc.reexec_with_tcmalloc(); print(os.getpid(), malloc.describe(), flush=True)")


def _run(**env_changes):
  env = {k: v for k, v in os.environ.items()
         if k not in ("LD_PRELOAD", malloc.OPT_OUT, "SHUFFLENET_TCMALLOC_REEXEC")}
  env.update(env_changes)
  out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  return out


@pytest.mark.skipif(malloc.find_tcmalloc() is None, reason="no tcmalloc installed")
def test_reexec_runs_the_same_command_on_tcmalloc():
  out = _run()
  lines = out.stdout.split("\n")
  # exec keeps the pid; the first print comes from before the re-exec and again after it.
  assert lines[0] == lines[1] and lines[2].startswith(lines[0] + " tcmalloc ("), out.stdout
  assert out.stdout.count("tcmalloc (") == 1  # re-executed exactly once


def test_opt_out_keeps_the_system_allocator():
  out = _run(**{malloc.OPT_OUT: "1"})
  pid = out.stdout.split("\n")[0]
  assert out.stdout.split("\n")[1] == f"{pid} system malloc (glibc)"


def test_describe_reports_the_loaded_allocator():
  if malloc.loaded_tcmalloc():
    assert malloc.describe().startswith("tcmalloc (") and "libtcmalloc" in malloc.describe()
  else:
    assert malloc.describe() == "system malloc (glibc)"


def test_bench_allocator_rejects_bad_arguments():
  for args, match in ((["--model=shufflenet_9x"], "shufflenet_9x"),
                      (["--impl=fast:fast"],
                       "implementation 'fast:fast'; valid: auto, or pointwise:depthwise"),
                      (["--rounds=0"], "--rounds=0")):
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_allocator", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and match in out.stderr, (args, out.stderr[-500:])
