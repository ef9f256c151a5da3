"""The same runs in two record sets, paired: what one setting that differs between them does.

  python -m experiments.compare_records results/records/ablation_shuffle \\
      results/gpu/records/ablation_shuffle            # tf.data on a CPU vs on-device data, GPU

Two directories of ``<run id>/result.json`` (+ ``config.json``) -- the same sweep run twice
with something changed: the data pipeline, ``exact_epochs``, the device, a library version.
Runs are paired by run id (``<model>-seed<n>``: the same model and seed, so the same
initialization), and the gap A - B of the metric (default: final top-1 error, in points) is
tested on the per-run differences (paired t) per model, and overall on the per-seed means over
the models (runs of one seed share its data order: one sample). It first prints
what differs between the two sets (config values, device, libraries), so that a gap is
read against what produced it. Exit status 2 with a message when a directory holds no
records or the two share no run id.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from pathlib import Path

from scipy import stats as scipy_stats

from experiments import runner, stats


def _flat(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, list) else v
  return out


def load(directory: Path) -> dict[str, tuple[dict, dict]]:
  """{run id: (result, flat config + device + library facts)} of a record directory."""
  if not directory.is_dir():
    raise ValueError(f"{directory}: no such directory (expected <run id>/result.json records)")
  runs = {}
  for path in sorted(directory.glob("*/result.json")):
    result = json.loads(path.read_text())
    cfg_path = path.with_name("config.json")
    # What is trained, as the runner's --reuse compares it (older records' missing fields at
    # the values they had), then where.
    facts = _flat(runner.training_config(json.loads(cfg_path.read_text()))
                  if cfg_path.exists() else {})
    device = result.get("device", {})
    facts.update({"device": device.get("device_kind", "?"),
                  "cpu": device.get("cpu", "(not recorded)"),
                  "jax": result.get("versions", {}).get("jax", "?")})
    runs[path.parent.name] = (result, facts)
  if not runs:
    raise ValueError(f"{directory}: no <run id>/result.json records")
  return runs


def differences(a: dict, b: dict) -> list[str]:
  """'key: values in A vs values in B' for each fact whose values differ between the sets'
  common runs (the pairs)."""
  common = set(a) & set(b)

  def values(runs):
    out = collections.defaultdict(set)
    for _, facts in (runs[r] for r in common):
      for k, v in facts.items():
        out[k].add(str(v))
    return out
  va, vb = values(a), values(b)
  return [f"{k}: {', '.join(sorted(va.get(k, {'(unset)'})))} vs "
          f"{', '.join(sorted(vb.get(k, {'(unset)'})))}"
          for k in sorted(set(va) | set(vb))
          if va.get(k) != vb.get(k)]


def _pairs(a: dict, b: dict, metric: str) -> list[tuple[str, object, float, float]]:
  """(model, seed, value in A, value in B) of every run id in both sets, in points for
  errors."""
  common = sorted(set(a) & set(b))
  if not common:
    raise ValueError("the two record sets share no run id; nothing to pair")

  def value(runs, rid):
    metrics = runs[rid][0].get("metrics", {})
    if metric not in metrics:
      raise ValueError(f"run {rid} has no metric {metric!r}; it has: {', '.join(sorted(metrics))}")
    return 100.0 * metrics[metric] if metric.endswith("_err") else metrics[metric]
  return [(a[rid][0].get("model", rid.rsplit("-seed", 1)[0]),
           a[rid][0].get("seed", rid.rsplit("-seed", 1)[-1]), value(a, rid), value(b, rid))
          for rid in common]


def paired(a: dict, b: dict, metric: str) -> tuple[dict[str, stats.Gap], stats.Gap]:
  """({model: gap A - B over its seeds}, the overall gap over the seeds), in points.

  Overall, each seed's values are averaged over the models before the paired test: runs of
  one seed share its data order and augmentation within each set, so their differences are
  not independent (a seed whose draws favour one set moves every model's pair: see
  seed_effect), and a test over all run ids would overstate n. A seed's mean is over the
  models it has in both sets: compare sets that hold the same models for every seed."""
  by_model = collections.defaultdict(lambda: ({}, {}))
  by_seed = collections.defaultdict(lambda: ([], []))
  for model, seed, va, vb in _pairs(a, b, metric):
    by_model[model][0][seed], by_model[model][1][seed] = va, vb
    by_seed[seed][0].append(va)
    by_seed[seed][1].append(vb)
  gaps = {m: stats.compare(xa, xb) for m, (xa, xb) in sorted(by_model.items())}
  overall = stats.compare({s: statistics.fmean(xa) for s, (xa, _) in by_seed.items()},
                          {s: statistics.fmean(xb) for s, (_, xb) in by_seed.items()})
  return gaps, overall


def seed_effect(a: dict, b: dict, metric: str) -> float | None:
  """p of a one-way ANOVA by seed of the differences A - B less their model's mean: small
  when a seed moves all its models' pairs together. None without two seeds of 2+ runs."""
  pairs = _pairs(a, b, metric)
  diffs = collections.defaultdict(list)
  for model, _, va, vb in pairs:
    diffs[model].append(va - vb)
  residuals = collections.defaultdict(list)
  for model, seed, va, vb in pairs:
    residuals[seed].append(va - vb - statistics.fmean(diffs[model]))
  groups = [r for r in residuals.values() if len(r) >= 2]
  if len(groups) < 2:
    return None
  p = float(scipy_stats.f_oneway(*groups).pvalue)
  return None if p != p else p  # NaN: no spread within the seeds


def report(path_a: Path, path_b: Path, a: dict, b: dict, metric: str,
           gaps: dict[str, stats.Gap], overall: stats.Gap) -> str:
  """The comparison as markdown: the command, what differs, the table, the detectable gap."""
  lines = [f"# {path_a} (A) vs {path_b} (B), paired by run id", "",
           f"`python -m experiments.compare_records {path_a} {path_b}"
           + (f" --metric={metric}`" if metric != "eval_top1_err" else "`"), "",
           f"A: {len(a)} runs; B: {len(b)} runs; {len(set(a) & set(b))} run ids in both. "
           f"{metric} A - B (points for errors): mean [95% CI] and two-sided p of a paired "
           "t-test on the per-run differences (same model and seed: same initialization); "
           "overall, on the per-seed means over the models (a seed's runs share its data "
           "order, so they are one sample, not several); r: how much the "
           "run id fixes the metric across the two sets (1 - the differences' variance over "
           "the two sides' summed variances, within models; Pearson's r for equal spreads).",
           "",
           "What differs between the paired runs:"]
  lines += [f"- {d}" for d in differences(a, b)] or ["- nothing"]
  lines += ["", "| model | pairs | A - B [95% CI] p | sd of the differences | r |",
            "|---|---|---|---|---|"]
  r_all = stats.pooled_r(list(gaps.values()))  # within models: their means would inflate it
  for model, g in list(gaps.items()) + [("all (per seed)", overall)]:
    r = r_all if g is overall else g.r
    lines.append(f"| {model} | {g.n} | {g} | {'—' if g.sd is None else f'{g.sd:.2f}'} | "
                 f"{'—' if r is None else f'{r:+.2f}'} |")
  if overall.sd:
    lines += ["", f"Minimal detectable gap over {overall.n} seeds (80% power, 5% two-sided): "
              f"{stats.minimal_detectable_gap(overall.sd, overall.n):.2f}."]
  p = seed_effect(a, b, metric)
  if p is not None:
    lines += ["", "Seed effect: the differences less their model's mean, grouped by seed, "
              f"one-way ANOVA p={p:.3f} (a small p: a seed moves its models' pairs together, "
              "why the overall test takes the seeds as its sample)."]
  return "\n".join(lines) + "\n"


# The committed reports (report, A, B), rebuilt by `--committed` (cpu_evidence.sh's harvest
# does it after each harvest, so new records and their reports are committed together) and
# checked to be reproduced by tests/test_compare_records.py. Paths from the project root.
_SHUFFLE = "records/ablation_shuffle"
COMMITTED = [
    ("results/gpu/cpu_vs_gpu.md", f"results/{_SHUFFLE}", f"results/gpu/{_SHUFFLE}"),
    ("results/lab/exact_epochs/inexact_vs_exact.md", f"results/{_SHUFFLE}",
     f"results/lab/exact_epochs/{_SHUFFLE}"),
    ("results/lab/exact_epochs/exact_vs_gpu.md", f"results/lab/exact_epochs/{_SHUFFLE}",
     f"results/gpu/{_SHUFFLE}"),
    ("results/lab/on_device/tfdata_vs_on_device.md", f"results/{_SHUFFLE}",
     f"results/lab/on_device/{_SHUFFLE}"),
    ("results/lab/on_device/exact_vs_on_device.md", f"results/lab/exact_epochs/{_SHUFFLE}",
     f"results/lab/on_device/{_SHUFFLE}"),
    ("results/lab/on_device/on_device_cpu_vs_gpu.md", f"results/lab/on_device/{_SHUFFLE}",
     f"results/gpu/{_SHUFFLE}"),
    ("results/lab/on_device_k1/k1_vs_k6.md", f"results/lab/on_device_k1/{_SHUFFLE}",
     f"results/lab/on_device/{_SHUFFLE}"),
    ("results/lab/on_device_k1/tfdata_vs_k1.md", f"results/{_SHUFFLE}",
     f"results/lab/on_device_k1/{_SHUFFLE}"),
    ("results/lab/on_device_k1/exact_vs_k1.md", f"results/lab/exact_epochs/{_SHUFFLE}",
     f"results/lab/on_device_k1/{_SHUFFLE}"),
    ("results/lab/epochs3/epochs3_vs_epoch1.md", f"results/lab/epochs3/{_SHUFFLE}",
     f"results/{_SHUFFLE}"),
]


def rebuild_committed() -> int:
  """Writes every report of COMMITTED whose two record directories exist (run from the
  project root: the reports name the directories as given)."""
  for out, a, b in COMMITTED:
    if Path(a).is_dir() and Path(b).is_dir():
      if main([a, b, f"--out={out}"]):
        return 2
  return 0


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog="python -m experiments.compare_records", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("a", type=Path, nargs="?", help="record directory A (<run id>/result.json)")
  ap.add_argument("b", type=Path, nargs="?", help="record directory B")
  ap.add_argument("--metric", default="eval_top1_err",
                  help="a key of result.json's metrics (errors are printed in points)")
  ap.add_argument("--out", type=Path, help="write the markdown report here (default: print it)")
  ap.add_argument("--committed", action="store_true",
                  help="rebuild every committed report (COMMITTED; from the project root)")
  args = ap.parse_args(argv)
  if args.committed:
    if args.a or args.b or args.out or args.metric != ap.get_default("metric"):
      ap.error("--committed takes no record directories, --out or --metric (the committed "
               "reports are of eval_top1_err)")
    return rebuild_committed()
  if args.a is None or args.b is None:
    ap.error("two record directories A and B are required (or --committed)")
  try:
    a, b = load(args.a), load(args.b)
    gaps, overall = paired(a, b, args.metric)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  text = report(args.a, args.b, a, b, args.metric, gaps, overall)
  if args.out:
    args.out.write_text(text)
    print(args.out)
  else:
    print(text, end="")
  return 0


if __name__ == "__main__":
  sys.exit(main())
