"""The paper's numbers (a copy of shared/paper/shufflenet_v1_tables.json shipped with the
package) and the mapping from the paper's row labels to registry names.

Every table builder and the complexity report read the paper's figures from here; no
other file types them in.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from shufflenet_jax.models.registry import shufflenet_name

_TABLES = Path(__file__).with_name("paper_tables.json")
_SHUFFLENET_LABEL = re.compile(
    r"^(?:ShuffleNet )?(?P<width>[0-9.]+)x(?P<shallow> shallow)? g(?P<groups>\d)"
    r"(?P<se> with SE)?$")


@functools.cache
def tables() -> dict:
  with open(_TABLES) as f:
    return json.load(f)


def shufflenet_label_to_name(label: str, shuffle: bool = True) -> str | None:
  """'ShuffleNet 0.5x shallow g3' -> 'shufflenet_0.5x_g3_shallow'; None if not ShuffleNet."""
  m = _SHUFFLENET_LABEL.match(label.strip())
  if not m:
    return None
  return shufflenet_name(int(m["groups"]), float(m["width"]),
                         depth="shallow" if m["shallow"] else "standard", se=bool(m["se"]),
                         shuffle=shuffle)


_BASELINE_LABELS = {"AlexNet": "alexnet"}


def baseline_label_to_name(label: str) -> str | None:
  """'0.5 MobileNet-224' -> 'mobilenet_v1_0.5', 'AlexNet' -> 'alexnet'; None for models
  not (yet) in the registry."""
  m = re.match(r"^(?P<alpha>[0-9.]+) MobileNet-224$", label.strip())
  if m:
    return f"mobilenet_v1_{float(m['alpha'])}"
  return _BASELINE_LABELS.get(label.strip())


def baseline_complexity_rows() -> list[dict]:
  """The paper's baselines that the registry has: MobileNet v1 (Table 5 MFLOPs; params
  from the MobileNet paper), AlexNet (Table 6; params from its paper)."""
  t = tables()
  other = t["other_model_complexity"]
  rows = []
  for row in t["table5_vs_mobilenet"]:
    name = baseline_label_to_name(row["model"])
    if name:
      alpha = name.rsplit("_", 1)[1]
      rows.append(dict(name=name, paper_table="table5", paper_mflops=row["mflops"],
                       paper_params_m=other["mobilenet_v1"][alpha]["params_m"]))
  for row in t["table6_vs_popular"]:
    name = baseline_label_to_name(row["model"])
    if name and name in other:
      rows.append(dict(name=name, paper_table="table6", paper_mflops=row["mflops"],
                       paper_params_m=other[name]["params_m"]))
  return rows


def shufflenet_complexity_rows() -> list[dict]:
  """Every ShuffleNet row the paper reports a complexity for (Tables 1, 2, 5, 8 and the
  official release), as {name, paper_table, paper_mflops[, paper_params_m]}."""
  t = tables()
  rows = []
  for g, mflops in t["table1_complexity_1x"].items():
    rows.append(dict(name=shufflenet_name(int(g[1:]), 1.0), paper_table="table1",
                     paper_mflops=mflops))
  # Table 2 states one nominal complexity per width row (140 / 38 / 13 MFLOPs).
  t2 = t["table2_error_vs_groups"]
  for width in ("1.0x", "0.5x", "0.25x"):
    for col in t2["columns"]:
      rows.append(dict(name=shufflenet_name(int(col[1:]), float(width[:-1])),
                       paper_table="table2", paper_mflops=t2[width]["mflops"]))
  for table, key in (("table5", "table5_vs_mobilenet"), ("table8", "table8_arm_latency_ms")):
    entries = t[key]["rows"] if isinstance(t[key], dict) else t[key]
    for row in entries:
      name = shufflenet_label_to_name(row["model"])
      if name:
        rows.append(dict(name=name, paper_table=table, paper_mflops=row["mflops"]))
  for row in t["official_release_megvii_shufflenet_v1"]["rows"]:
    rows.append(dict(name=shufflenet_label_to_name(row["model"]), paper_table="official",
                     paper_mflops=row["mflops"], paper_params_m=row["params_m"]))
  return rows
