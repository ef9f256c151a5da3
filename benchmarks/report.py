"""The end of every benchmark's report: its command line and provenance, written to
``--out`` and printed."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from shufflenet_jax import records


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


def provenance(module: str, argv: list[str] | None, note: str = "") -> str:
  """"`python -m module args` at commit C; CPU, N CPUs, load average L at the end[note]."""
  args = " ".join(sys.argv[1:] if argv is None else argv)
  command = f"python -m {module}" + (f" {args}" if args else "")
  return (f"`{command}` at commit {records.git_commit()}; {cpu_description()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end{note}.")


def emit(md: list[str], out: str | None) -> None:
  """Writes the report to ``out`` (when given) and prints it."""
  if out:
    Path(out).write_text("\n".join(md))
  print("\n".join(md))
