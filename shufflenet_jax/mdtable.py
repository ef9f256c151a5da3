"""One way to write a table: markdown lines and a csv file, for every table builder and
benchmark (experiments.tables, experiments.arm_timing, shufflenet_jax.complexity,
benchmarks/*)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence


def row(cells: Sequence) -> str:
  """One markdown table line, each cell ``str()``-ed (format numbers before)."""
  return "| " + " | ".join(str(x) for x in cells) + " |"


def markdown(header: Sequence, rows: Iterable[Sequence]) -> list[str]:
  """A markdown table's lines: the header, the ``|---|`` rule and one line per row."""
  return [row(header), "|" + "---|" * len(header)] + [row(r) for r in rows]


def write_md_csv(out: Path, name: str, md: list[str], header: Sequence,
                 rows: Iterable[Sequence]) -> list[Path]:
  """Writes ``<out>/<name>.md`` (the lines ``md``) and ``<name>.csv`` (``header`` +
  ``rows``); returns [md, csv, png] paths, the png for the caller to draw."""
  paths = [out / f"{name}.md", out / f"{name}.csv", out / f"{name}.png"]
  paths[0].write_text("\n".join(md))
  buf = io.StringIO()
  w = csv.writer(buf, lineterminator="\n")
  w.writerow(header)
  w.writerows(rows)
  paths[1].write_text(buf.getvalue())
  return paths
