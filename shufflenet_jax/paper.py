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

from shufflenet_jax.catalog import shufflenet_name

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


_BASELINE_LABELS = {"AlexNet": "alexnet", "VGG-16": "vgg16", "GoogLeNet": "googlenet"}


def baseline_label_to_name(label: str) -> str | None:
  """'0.5 MobileNet-224' -> 'mobilenet_v1_0.5', 'AlexNet' -> 'alexnet', 'VGG-16' ->
  'vgg16', 'GoogLeNet' -> 'googlenet'; None for models not (yet) in the registry."""
  m = re.match(r"^(?P<alpha>[0-9.]+) MobileNet-224$", label.strip())
  if m:
    return f"mobilenet_v1_{float(m['alpha'])}"
  return _BASELINE_LABELS.get(label.strip())


def baseline_complexity_rows() -> list[dict]:
  """The paper's baselines that the registry has: MobileNet v1 (Table 5 MFLOPs; params
  from the MobileNet paper); AlexNet, VGG-16, GoogLeNet (Table 6; params from their
  papers); ResNet-50 (its paper's 3.8 GFLOPs; the paper cites ResNet in the text); the
  Table 4 units at the complexity level each is fitted to."""
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
  rows.append(dict(name="resnet50", paper_table="resnet paper",
                   paper_mflops=other["resnet"]["resnet50"]))
  rows += [dict(name=c["name"], paper_table="table4", paper_mflops=c["level"])
           for c in table4_cells() if c["kind"] != "shufflenet"]
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


def table4_cells() -> list[dict]:
  """Table 4 as {level, kind, name, error}: every unit at every level the paper reports it,
  and the ShuffleNet row of each level ('shufflenet' kind)."""
  t4 = tables()["table4_structure_units"]
  out = []
  for level in ("140", "38", "13"):
    for kind, error in zip(t4["columns"], t4[level]):
      if error is None:
        continue
      if kind == "shufflenet":
        name = shufflenet_label_to_name(t4["shufflenet_rows"][level])
      else:
        name = f"unit_{kind}_{level}"
      out.append(dict(level=int(level), kind=kind, name=name, error=error))
  return out


def table4_models() -> list[str]:
  return [c["name"] for c in table4_cells()]


def table5_models() -> list[str]:
  """Table 5's rows as registry names, in the paper's order."""
  names = []
  for row in tables()["table5_vs_mobilenet"]:
    name = shufflenet_label_to_name(row["model"]) or baseline_label_to_name(row["model"])
    if name is None:
      raise ValueError(f"Table 5 row {row['model']!r} has no registry model")
    names.append(name)
  return names
