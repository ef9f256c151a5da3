"""The end of every benchmark's report: its command line and provenance, written to
``--out`` and printed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shufflenet_jax import records


def provenance(module: str, argv: list[str] | None, note: str = "") -> str:
  """"`python -m module args` at commit C; CPU, N CPUs, load average L at the end[note]."""
  args = " ".join(sys.argv[1:] if argv is None else argv)
  command = f"python -m {module}" + (f" {args}" if args else "")
  return (f"`{command}` at commit {records.git_commit()}; {records.cpu_description()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end{note}.")


def emit(md: list[str], out: str | None) -> None:
  """Writes the report to ``out`` (when given) and prints it."""
  if out:
    Path(out).write_text("\n".join(md))
  print("\n".join(md))
