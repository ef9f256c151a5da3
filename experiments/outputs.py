"""Writing a table's markdown and csv files: one way for every table builder."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def write_md_csv(out: Path, name: str, md: list[str], header: list, rows: list) -> list[Path]:
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
