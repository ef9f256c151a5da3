"""Sweep expansion: a config's declared axes x seeds -> runs with deterministic ids.

The run-id scheme lives here and only here: ``<model name>[-<axis><value>...]-seed<k>``,
e.g. ``shufflenet_0.5x_g3_noshuffle-seed1`` or ``shufflenet_1.0x_g3-label_smoothing0.1-seed0``.
The same overrides always give the same id, so a rerun finds its finished and partial runs.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import ml_collections

from shufflenet_jax import catalog

# The sweeps that have a table builder (experiments/tables.py BUILDERS; a test keeps the two
# equal): a sweep is refused at config load, before training, if it has none.
TABLE_SWEEPS = ("ablation_groups", "ablation_shuffle", "ablation_width", "ablation_depth",
                "compare_units", "compare_mobilenet")

# Axes that choose the ShuffleNet architecture, i.e. the registry name.
MODEL_AXES = ("width", "groups", "shuffle", "depth", "se")


def default_workdir(config) -> Path:
  """Where a sweep works when --workdir is not given: ``runs/<sweep>-<preset>``."""
  return Path("runs") / f"{config.sweep_name}-{config.preset}"


@dataclasses.dataclass(frozen=True)
class Run:
  run_id: str
  point: dict          # the swept values (model-axis values, other axes, seed)
  config: ml_collections.ConfigDict


def _model_name(point: dict, base_model: str) -> str:
  if "model" in point:
    return point["model"]
  if not any(k in point for k in MODEL_AXES):
    return base_model
  preset = catalog.preset(base_model)
  kw = {k: point.get(k, preset.get(k)) for k in MODEL_AXES}
  return catalog.shufflenet_name(kw["groups"], kw["width"], depth=kw["depth"] or "standard",
                                  se=bool(kw["se"]), shuffle=kw["shuffle"] is not False)


def expand(config: ml_collections.ConfigDict) -> list[Run]:
  """Every run of the sweep, in a fixed order (grid in declaration order, then seeds)."""
  axes = config.sweep.to_dict()
  for name, values in axes.items():
    if name not in MODEL_AXES and name != "model" and name not in config:
      raise ValueError(f"sweep axis {name!r} is neither a model axis "
                       f"({', '.join(MODEL_AXES)}, model) nor a config field")
    if not isinstance(values, (list, tuple)) or not values:
      raise ValueError(f"sweep axis {name!r} needs a non-empty list of values, got {values!r}")
  seeds = list(config.seeds)
  if not seeds:
    raise ValueError("seeds is empty; give at least one seed, e.g. --config.seeds='(0,)'")
  runs = []
  for values in itertools.product(*axes.values()):
    point = dict(zip(axes, values))
    model = _model_name(point, config.model)
    catalog.preset(model)  # fail now, not after hours of other runs
    extras = "".join(f"-{k}{v}" for k, v in point.items() if k not in MODEL_AXES + ("model",))
    for seed in seeds:
      run_config = ml_collections.ConfigDict(config.to_dict())
      for k in ("sweep", "sweep_name", "seeds"):
        del run_config[k]
      run_config.model = model
      run_config.seed = int(seed)
      for k, v in point.items():
        if k not in MODEL_AXES + ("model",):
          run_config[k] = v
      run_config.wandb.tags = tuple(f"{k}={v}" for k, v in point.items()) + (f"seed={seed}",)
      run_id = f"{model}{extras}-seed{seed}"
      run_config.wandb.name = run_id
      runs.append(Run(run_id, {**point, "model": model, "seed": int(seed)}, run_config))
  ids = [r.run_id for r in runs]
  if len(set(ids)) != len(ids):
    raise ValueError("the sweep has duplicate points (repeated axis values or seeds)")
  return runs


def parse_worker(spec: str) -> tuple[int, int]:
  """'i/n' -> (i, n) with 0 <= i < n."""
  try:
    i, n = (int(x) for x in spec.split("/"))
    if not 0 <= i < n:
      raise ValueError
  except ValueError:
    raise ValueError(f"--worker={spec!r}; expected i/n with 0 <= i < n, e.g. 0/2") from None
  return i, n


def for_worker(runs: list[Run], worker: tuple[int, int]) -> list[Run]:
  """Worker i of n takes runs i, i+n, i+2n, ...: disjoint, and together all of them."""
  i, n = worker
  return runs[i::n]


def seed_groups(runs: list[Run], config) -> list[list[Run]]:
  """The runs in groups trained in one program: runs that differ only in seed, up to
  ``config.seeds_per_program`` per group (with ``data_on_device``); otherwise one run per
  group. Groups keep the order of ``runs`` (by their first member)."""
  k = int(config.get("seeds_per_program", 1))
  if k < 1:
    raise ValueError(f"seeds_per_program={k}; valid: an integer >= 1")
  if k > 1 and not config.get("data_on_device", False):
    raise ValueError(f"seeds_per_program={k} needs data_on_device=True (the vmapped seeds "
                     "draw their batches on the device)")
  if k == 1:
    return [[r] for r in runs]
  by_point: dict[str, list[Run]] = {}
  for r in runs:
    key = r.run_id.rsplit("-seed", 1)[0]
    by_point.setdefault(key, []).append(r)
  groups = []
  for members in by_point.values():
    groups += [members[i:i + k] for i in range(0, len(members), k)]
  first = {r.run_id: i for i, r in enumerate(runs)}
  return sorted(groups, key=lambda g: first[g[0].run_id])
