"""Run the process on tcmalloc when the system has it (Linux, CPU training).

XLA:CPU gives every execution of a compiled step one temporary buffer for all of its
intermediate values (1.18 GB for the ShuffleNet 1x g3 train step at batch 128, 28x28,
matmul:shiftvjp: ``temp_size_in_bytes`` of the compiled step's ``memory_analysis()``).
glibc's malloc serves an allocation that large with a fresh ``mmap`` and returns it with
``munmap`` when the step ends, so every step page-faults its whole working set in again.
On the 2-core CPU, side by side (results/bench_allocator.md,
``python -m benchmarks.bench_allocator``, the CPU default implementations at commit
60c7dca): 1214 ms per 1x g3 train step, 836 ms of kernel (sys) CPU time, on glibc; 760 ms
and 9 ms of sys time on tcmalloc, which keeps the freed pages for the next step (1.60x).
glibc's own knobs (``mallopt`` from inside the process) did not stop it reliably: the
buffer is allocated on XLA's threads, whose arenas fall back to ``mmap`` for anything
above their 64 MB heaps.

An allocator can only be chosen before the process starts, so :func:`reexec_with_tcmalloc`
re-executes the same command line once with ``LD_PRELOAD`` set, before any work is done.
Set ``SHUFFLENET_NO_TCMALLOC=1`` to keep the system allocator. Debian/Ubuntu:
``apt-get install libtcmalloc-minimal4`` (``make setup`` does).
"""

from __future__ import annotations

import os
import sys

OPT_OUT = "SHUFFLENET_NO_TCMALLOC"
_REEXEC_MARK = "SHUFFLENET_TCMALLOC_REEXEC"
_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
         "/usr/local/lib")


def find_tcmalloc() -> str | None:
  """The path of the system's tcmalloc shared library, or None."""
  for d in _DIRS:
    for name in _NAMES:
      path = os.path.join(d, name)
      if os.path.isfile(path):
        return path
  return None


def loaded_tcmalloc() -> str | None:
  """The tcmalloc library mapped into this process (so malloc is tcmalloc's), or None."""
  try:
    with open("/proc/self/maps") as f:
      for line in f:
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if "libtcmalloc" in os.path.basename(path):
          return path
  except OSError:
    pass
  return None


def describe() -> str:
  """This process's allocator, for provenance lines."""
  path = loaded_tcmalloc()
  return f"tcmalloc ({path})" if path else "system malloc (glibc)"


def reexec_with_tcmalloc() -> None:
  """Re-execute this command line under tcmalloc when it is installed and not loaded yet.

  Call it first thing in a ``__main__`` block. It returns (doing nothing) when tcmalloc is
  already loaded, when ``SHUFFLENET_NO_TCMALLOC`` is set, when it already re-executed once,
  off Linux, or when no tcmalloc is installed (then it logs how to get one).
  """
  if (not sys.platform.startswith("linux") or os.environ.get(OPT_OUT)
      or os.environ.get(_REEXEC_MARK) or loaded_tcmalloc()):
    return
  lib = find_tcmalloc()
  if lib is None:
    print("note: tcmalloc is not installed; on CPU, train steps run slower on the system "
          "malloc (apt-get install libtcmalloc-minimal4; shufflenet_jax/malloc.py)",
          file=sys.stderr)
    return
  env = dict(os.environ)
  env["LD_PRELOAD"] = ":".join(p for p in (lib, env.get("LD_PRELOAD", "")) if p)
  env[_REEXEC_MARK] = "1"
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
