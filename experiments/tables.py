"""The paper's tables, rebuilt from run records (result.json) alone, beside the paper's numbers.

    python -m experiments.tables                      # every sweep under results/records/
    python -m experiments.tables --records runs/ablation_shuffle-quick/runs \\
        --sweep ablation_shuffle --out runs/ablation_shuffle-quick/results

For each sweep: ``<out>/<sweep>.md`` (table, findings, provenance), ``.csv`` and ``.png``.
Errors are top-1 error in % on the run's eval split, mean +- std over seeds (n shown).
The output depends only on the records, so rebuilding from the same records gives the same
bytes (the "generated" line is the newest record's finish time, not the clock).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments import arm_timing, stats  # noqa: E402
from shufflenet_jax import mdtable, paper  # noqa: E402
from shufflenet_jax.models import registry  # noqa: E402

WIDTHS_T2 = (1.0, 0.5, 0.25)
GROUPS = (1, 2, 3, 4, 8)


# ------------------------------------------------------------------------- aggregation

def arch(record: dict) -> dict:
  """groups / width / shuffle / depth / se of the record's model (from the registry)."""
  _, preset = registry.model_spec(record["model"])
  return dict(groups=preset.get("groups"), width=preset.get("width"),
              shuffle=preset.get("shuffle", True), depth=preset.get("depth", "standard"),
              se=preset.get("se", False))


class Cell:
  """Top-1 error (%) over seeds of one architecture: mean with its 95% t-interval."""

  def __init__(self, records: list[dict]):
    self.by_seed = {r["seed"]: 100 * r["metrics"]["eval_top1_err"] for r in records}
    self.errors = list(self.by_seed.values())
    self.mflops = records[0]["mflops_imagenet224"] if records else None

  @property
  def n(self) -> int:
    return len(self.errors)

  @property
  def mean(self) -> float | None:
    return statistics.fmean(self.errors) if self.errors else None

  @property
  def std(self) -> float:
    return statistics.stdev(self.errors) if self.n > 1 else 0.0

  def __str__(self) -> str:
    if not self.n:
      return "missing"
    if self.n < 2:
      return f"{self.mean:.2f} (n=1)"
    m, lo, hi = stats.mean_ci(self.errors)
    return f"{m:.2f} [{lo:.2f}, {hi:.2f}] (n={self.n})"


def cells(records: list[dict], key) -> dict:
  groups = defaultdict(list)
  for r in records:
    groups[key(arch(r))].append(r)
  return defaultdict(lambda: Cell([]), {k: Cell(v) for k, v in groups.items()})


def _fmt(x, digits=1, signed=False) -> str:
  if x is None:
    return "—"
  return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _diff(a, b):
  return None if a is None or b is None else a - b


def gap(a: Cell, b: Cell) -> stats.Gap | None:
  """mean(a) - mean(b) with its 95% CI and test (paired on the seeds when both hold the same)."""
  return stats.compare(a.by_seed, b.by_seed)


def _gap_str(g: stats.Gap | None) -> str:
  return "—" if g is None else str(g)


_LAST_GAPS: list = []


def comparisons(sweep_name: str, records: list[dict]) -> list[stats.Gap | None]:
  """The gaps the table of ``sweep_name`` tests (its findings' comparisons)."""
  if sweep_name not in BUILDERS:
    raise ValueError(f"no table builder for sweep {sweep_name!r}; valid: {', '.join(BUILDERS)}")
  _LAST_GAPS.clear()
  BUILDERS[sweep_name](sorted(records, key=lambda r: (r["model"], r["seed"])))
  return list(_LAST_GAPS)


def paper_gap_findings(pairs: list[tuple[str, stats.Gap | None, float]], what: str) -> list[str]:
  """Where the paper's gap (``pairs``: label, our gap, the paper's gap, same sign
  convention) lies against our 95% CI: inside (our runs agree with it), above (our runs
  exclude a gain that large on this dataset and budget) or below."""
  tested = [(label, g, paper_gap) for label, g, paper_gap in pairs
            if g is not None and g.p is not None]
  if not tested:
    return []
  above = [f"{l}: paper {pg:+.1f}, ours at most {g.high:+.2f}" for l, g, pg in tested
           if pg > g.high]
  below = [f"{l}: paper {pg:+.1f}, ours at least {g.low:+.2f}" for l, g, pg in tested
           if pg < g.low]
  inside = len(tested) - len(above) - len(below)
  return [f"The paper's gap lies inside our 95% CI in {inside}/{len(tested)} {what}, above "
          f"it in {len(above)}" + (f" ({'; '.join(above)})" if above else "")
          + f", below it in {len(below)}" + (f" ({'; '.join(below)})" if below else "")
          + ". (ImageNet gaps against Fashion-MNIST ones: a gap outside our CI is not "
          "reproduced on this dataset at this budget.)"]


def gap_findings(gaps: list[stats.Gap | None], what: str, direction: str,
                 way: str = "the paper's way") -> list[str]:
  """What the gaps say, from their tests: how many point ``way`` (``direction``, i.e.
  gap > 0), how many of those and of all are significant at 5% (two-sided; also after
  Holm's correction over the table), and the table's minimal detectable gap at 80% power."""
  done = [g for g in gaps if g is not None]
  _LAST_GAPS.extend(done)
  if not done:
    return []
  positive = [g for g in done if g.gap > 0]
  tested = [g for g in done if g.p is not None]
  lines = [f"{direction} in {len(positive)}/{len(done)} {what}, "
           f"{sum(g.significant for g in positive)} of them significant at 5% "
           f"(two-sided {', '.join(sorted({g.test for g in tested})) or 'test'}); "
           f"{sum(g.significant for g in done if g.gap < 0)} significant the other way."]
  if tested:
    kept = stats.holm([g.p for g in tested])
    lines.append(f"After Holm's correction over the {len(tested)} tested {what}: "
                 f"{sum(k and g.gap > 0 for k, g in zip(kept, tested))} significant "
                 f"{way}, {sum(k and g.gap < 0 for k, g in zip(kept, tested))} the other.")
  pooled = stats.pooled_sd(done)
  if pooled is None:
    lines.append("Too few seeds for a test: the gaps above have no error bars.")
  else:
    sd, n = pooled
    paired = all(g.test == "paired t" for g in tested)
    mdg = stats.minimal_detectable_gap(sd, n, paired=paired)
    need = stats.seeds_needed(0.3, sd, paired=paired)
    lines.append(
        f"Power: the sd of the {'per-seed differences' if paired else 'cells'} is {sd:.2f} "
        f"points (pooled over the {what}), so with n={n} seeds the minimal detectable gap at "
        f"80% power (5% two-sided) is {mdg:.2f} points; detecting 0.3 points would take "
        f"{need if need else 'more than 10000'} seeds "
        f"(`python -m experiments.power --sd {sd:.2f} --delta 0.3`).")
    r = stats.pooled_r(done) if paired else None
    if r is not None:
      lines.append(
          f"Pairing: the arms' per-seed values correlate r = {r:+.2f} (pooled over the "
          f"{what}), so the paired test needs {1 - r:.2f}x the seeds of an unpaired one.")
  return lines


# ------------------------------------------------------------------------- provenance

def provenance(records: list[dict]) -> list[str]:
  cfgs = [r["config"] for r in records]
  datasets = sorted({r["dataset"] for r in records})
  budget = sorted({(c.get("preset"), c["num_train_steps"] if c["num_train_steps"] > 0
                    else f"{c['num_epochs']:g} epochs", c["batch_size"],
                    c.get("eval_split") or "full eval split") for c in cfgs}, key=str)
  recipes = sorted({
      f"momentum {c['momentum']:g}, lr {c['learning_rate']:g} per "
      f"{c.get('lr_reference_batch', 1024)} images, warmup {c['warmup_steps']} steps, "
      f"weight decay {c['weight_decay']:g}, label smoothing {c.get('label_smoothing', 0.0):g}, "
      f"zero_init_residual {'on' if c.get('zero_init_residual') else 'off'}, "
      + (f"classifier lr x{c['classifier_lr_scale']:g}, "
         if c.get("classifier_lr_scale", 1.0) != 1.0 else "")
      + f"{c.get('dtype', 'float32')}"
      for c in cfgs})
  pipelines = sorted({
      "on the device, drawn from (seed, step) (shufflenet_jax/device_data.py)"
      if c.get("data_on_device") else "tf.data on the host, exact epochs"
      if c.get("exact_epochs") else "tf.data on the host, repeated then shuffled (inexact "
      "epochs: docs/ablations.md)" for c in cfgs})
  devices = sorted({f"{r['device']['device_count']}x {r['device']['device_kind']} "
                    f"({r['device']['platform']})" for r in records})
  commits = sorted({r["git_commit"] for r in records})
  dates = sorted(r["finished_at"] for r in records)
  seeds = sorted({r["seed"] for r in records})
  reached = statistics.fmean(100 * r["metrics"]["eval_top1_err"] for r in records)
  versions = sorted({f"jax {r['versions']['jax']}, flax {r['versions']['flax']}" for r in records})
  reused = collections.Counter(r["reused_from"].split("/")[0] for r in records
                               if r.get("reused_from"))
  lines = [
      f"- Produced by: {len(records)} runs; dataset {', '.join(datasets)}; seeds {seeds}."
      + (" Of them, " + ", ".join(f"{n} from {sweep}'s records" for sweep, n in
                                  sorted(reused.items()))
         + " (the same training config: `main.py --reuse`, not trained again)."
         if reused else ""),
      "- Budget (preset / steps or epochs / batch / eval split): "
      + "; ".join(f"{p} / {s} / batch {b} / {e}" for p, s, b, e in budget) + ".",
      f"- What the budget reached: {reached:.2f}% top-1 error on average over the "
      f"{len(records)} runs.",
      f"- Recipe: SGD, linear decay to 0; {'; '.join(recipes)}.",
      f"- Data pipeline: {'; '.join(pipelines)}."
      + (" **Mixed:** the two pipelines give a seed different epoch orders and crops, so runs "
         "of different pipelines are not paired by their seed; build the table from one "
         "pipeline's records." if len(pipelines) > 1 else ""),
      f"- Device: {'; '.join(devices)}. Libraries: {'; '.join(versions)}.",
      f"- Commit(s): {', '.join(commits)}. Runs finished {dates[0]} .. {dates[-1]}.",
      "- MFLOPs are the architecture at 224x224 with the ImageNet stem (the paper's count), "
      "counted from the model by shufflenet_jax.complexity.",
  ]
  if "imagenet2012" not in datasets:
    lines.insert(0, f"- **Not ImageNet.** These errors are on {', '.join(datasets)} (a proxy "
                 "dataset, small stem); the paper's columns are ImageNet top-1 error. "
                 "Compare directions and gaps, not absolute values.")
  return lines


# ------------------------------------------------------------------------- the tables

def table_shuffle(records):
  """Table 3: with vs without channel shuffle."""
  c = cells(records, lambda a: (a["width"], a["groups"], a["shuffle"]))
  ref = {paper.shufflenet_label_to_name(row["model"]): row
         for row in paper.tables()["table3_shuffle_vs_noshuffle"]}
  header = ["model", "MFLOPs", "ours no shuffle", "ours shuffle",
            "ours gain [95% CI] p", "paper no shuffle", "paper shuffle", "paper gain"]
  rows, gaps, g8_larger, plot, vs_paper = [], [], [], [], []
  for width in WIDTHS_T2:
    if not any(c[(width, g, sh)].n for g in (3, 8) for sh in (True, False)):
      continue  # a width this sweep did not run
    gains = {3: None, 8: None}
    for g in (3, 8):
      off, on = c[(width, g, False)], c[(width, g, True)]
      if not off.n and not on.n:
        continue  # a row this sweep did not run
      p = ref[registry.shufflenet_name(g, width)]
      gains[g] = gap(off, on)  # no shuffle - shuffle: > 0 when shuffle helps
      gaps.append(gains[g])
      vs_paper.append((f"{width}x g{g}", gains[g], p["no_shuffle"] - p["shuffle"]))
      rows.append([f"{width}x g{g}", _fmt(on.mflops or off.mflops), str(off), str(on),
                   _gap_str(gains[g]), p["no_shuffle"], p["shuffle"],
                   _fmt(p["no_shuffle"] - p["shuffle"], 1, True)])
      plot.append((f"{width}x g{g}", off.mean, on.mean, p["no_shuffle"], p["shuffle"]))
    if gains[3] is not None and gains[8] is not None:
      g8_larger.append(gains[8].gap > gains[3].gap)
  findings = gap_findings(gaps, "rows", "Shuffle lowers the error") + paper_gap_findings(
      vs_paper, "rows") + [
      f"The shuffle gain is larger for g8 than for g3 in {sum(g8_larger)}/{len(g8_larger)} "
      "widths (paper: 3/3; point estimates, not tested).",
  ]

  def figure(ax_ours, ax_paper):
    for ax, (i_off, i_on), title in ((ax_ours, (1, 2), "ours"), (ax_paper, (3, 4), "paper")):
      xs = range(len(plot))
      ax.bar([x - 0.2 for x in xs], [p[i_off] or 0 for p in plot], 0.4, label="no shuffle")
      ax.bar([x + 0.2 for x in xs], [p[i_on] or 0 for p in plot], 0.4, label="shuffle")
      ax.set_xticks(list(xs), [p[0] for p in plot], rotation=30)
      ax.set_title(f"{title}: top-1 error (%)")
      ax.legend()
  return header, rows, findings, figure


def table_groups(records):
  """Table 2: error vs group count at three widths."""
  c = cells(records, lambda a: (a["width"], a["groups"]))
  ref = paper.tables()["table2_error_vs_groups"]
  header = ["width", "source", "MFLOPs (paper)"] + [f"g={g}" for g in GROUPS]
  rows, gaps, best, vs_paper = [], [], [], []
  for width in WIDTHS_T2:
    p = ref[f"{width}x"]
    ours = [c[(width, g)] for g in GROUPS]
    if not any(x.n for x in ours):
      continue  # a width this sweep did not run
    rows.append([f"{width}x", "ours", p["mflops"]] + [str(x) for x in ours])
    rows.append([f"{width}x", "g1 - g [95% CI] p", ""] + ["—"] + [
        _gap_str(gap(ours[0], x)) for x in ours[1:]])
    rows.append([f"{width}x", "paper", p["mflops"]] + p["error"])
    gaps += [gap(ours[0], x) for x in ours[1:]]
    vs_paper += [(f"{width}x g{g}", gap(ours[0], x), p["error"][0] - p["error"][i + 1])
                 for i, (x, g) in enumerate(zip(ours[1:], GROUPS[1:]))]
    done = [(x.mean, g) for x, g in zip(ours, GROUPS) if x.mean is not None]
    if done:
      best.append(f"{width}x: g{min(done)[1]} (paper g{GROUPS[p['error'].index(min(p['error']))]})")
  findings = gap_findings(gaps, "grouped-vs-g1 cells",
                          "A grouped model (g>1) has a lower error than g1 at its width") + (
      paper_gap_findings(vs_paper, "grouped-vs-g1 cells")) + [
      "Best group count per width (point estimates): " + "; ".join(best) + ".",
  ]

  def figure(ax_ours, ax_paper):
    for width in WIDTHS_T2:
      pts = [(g, c[(width, g)].mean) for g in GROUPS if c[(width, g)].n]
      ax_ours.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{width}x")
      ax_paper.plot(GROUPS, ref[f"{width}x"]["error"], "o--", label=f"{width}x")
    for ax, t in ((ax_ours, "ours"), (ax_paper, "paper (ImageNet)")):
      ax.set_xlabel("groups g"); ax.set_ylabel("top-1 error (%)"); ax.set_title(t)
      ax.set_xticks(GROUPS); ax.legend()
  return header, rows, findings, figure


def _paper_error(width: float, g: int) -> tuple[float | None, str]:
  t = paper.tables()
  if f"{width}x" in t["table2_error_vs_groups"]:
    return t["table2_error_vs_groups"][f"{width}x"]["error"][GROUPS.index(g)], "table2"
  for row in t["table5_vs_mobilenet"]:
    if paper.shufflenet_label_to_name(row["model"]) == registry.shufflenet_name(g, width):
      return row["error"], "table5"
  for row in t["official_release_megvii_shufflenet_v1"]["rows"]:
    if paper.shufflenet_label_to_name(row["model"]) == registry.shufflenet_name(g, width):
      return row["top1_err"], "official release"
  return None, ""


def table_width(records):
  """Error against complexity, widths 0.25x..2x at g3 and g8."""
  c = cells(records, lambda a: (a["groups"], a["width"]))
  header = ["model", "MFLOPs", "ours", "gain over the next narrower [95% CI] p", "paper",
            "paper source"]
  rows, gaps, series = [], [], {}
  for g in (3, 8):
    prev = None
    series[g] = []
    for width in (0.25, 0.5, 1.0, 1.5, 2.0):
      cell = c[(g, width)]
      p, src = _paper_error(width, g)
      step = gap(prev, cell) if prev is not None and cell.n else None
      rows.append([f"{width}x g{g}", _fmt(cell.mflops), str(cell), _gap_str(step), _fmt(p),
                   src])
      if cell.n:
        series[g].append((cell.mflops, cell.mean, p))
        if prev is not None:
          gaps.append(step)
        prev = cell
  findings = gap_findings(gaps, "width steps", "The error falls with the step up in width") + [
      "Paper: the error falls with every step up in width (Tables 2 and 5)."]

  def figure(ax_ours, ax_paper):
    for g, pts in series.items():
      ax_ours.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"g{g}")
      ax_paper.plot([p[0] for p in pts if p[2]], [p[2] for p in pts if p[2]], "o--", label=f"g{g}")
    for ax, t in ((ax_ours, "ours"), (ax_paper, "paper (ImageNet)")):
      ax.set_xscale("log"); ax.set_xlabel("MFLOPs (224x224)"); ax.set_ylabel("top-1 error (%)")
      ax.set_title(t); ax.legend()
  return header, rows, findings, figure


def table_depth(records):
  """Table 5's shallow row: standard vs shallow 0.5x g3."""
  c = cells(records, lambda a: a["depth"])
  t5 = {r["model"]: r for r in paper.tables()["table5_vs_mobilenet"]}
  paper_std, _ = _paper_error(0.5, 3)
  paper_shallow = t5["ShuffleNet 0.5x shallow g3"]["error"]
  header = ["model", "MFLOPs", "ours", "paper"]
  rows = [["0.5x g3 (standard, 4/8/4 units)", _fmt(c["standard"].mflops), str(c["standard"]),
           paper_std],
          ["0.5x g3 shallow (2/4/2 units, widened)", _fmt(c["shallow"].mflops),
           str(c["shallow"]), paper_shallow]]
  depth_gap = gap(c["shallow"], c["standard"])
  findings = [f"Shallow minus standard: ours {_gap_str(depth_gap)} points, paper "
              f"{paper_shallow - paper_std:+.1f} (the paper: depth is not what makes ShuffleNet "
              "good; the shallow model stays within ~0.5 points of the standard one)."]
  findings += gap_findings([depth_gap], "comparisons", "The standard (deeper) model is better")

  def figure(ax_ours, ax_paper):
    ax_ours.bar(["standard", "shallow"], [c["standard"].mean or 0, c["shallow"].mean or 0])
    ax_paper.bar(["standard", "shallow"], [paper_std, paper_shallow])
    ax_ours.set_title("ours: top-1 error (%)"); ax_paper.set_title("paper: top-1 error (%)")
  return header, rows, findings, figure


def _by_model(records) -> dict:
  groups = defaultdict(list)
  for r in records:
    groups[r["model"]].append(r)
  return defaultdict(lambda: Cell([]), {k: Cell(v) for k, v in groups.items()})


UNIT_KINDS = ("vgg_like", "resnet", "xception_like", "resnext", "shufflenet")


def table_units(records):
  """Table 4: structure units in the ShuffleNet skeleton at matched complexity."""
  c = _by_model(records)
  cells4 = paper.table4_cells()
  header = ["complexity (MFLOPs)"] + [f"{k} ours" for k in UNIT_KINDS] + \
      [f"{k} paper" for k in UNIT_KINDS] + \
      ["best other unit - ShuffleNet, ours [95% CI] p", "best other unit - ShuffleNet, paper"]
  rows, best, plot, gaps, vs_paper = [], [], [], [], []
  for level in (140, 38, 13):
    at = {x["kind"]: x for x in cells4 if x["level"] == level}
    ours = {k: c[at[k]["name"]] if k in at else None for k in UNIT_KINDS}
    measured = {k: v.mean for k, v in ours.items() if v is not None and v.n}
    paper_other = min((k for k in at if k != "shufflenet"), key=lambda k: at[k]["error"])
    paper_gap = at[paper_other]["error"] - at["shufflenet"]["error"]
    ours_gap = "—"
    if "shufflenet" in measured and len(measured) > 1:
      best.append(min(measured, key=measured.get) == "shufflenet")
      runner_up = min((k for k in measured if k != "shufflenet"), key=measured.get)
      gaps.append(gap(ours[runner_up], ours["shufflenet"]))
      ours_gap = f"{runner_up}: {_gap_str(gaps[-1])}"
      vs_paper.append((f"{level} MFLOPs", gaps[-1], paper_gap))
    rows.append([level] + [("not in paper" if ours[k] is None else
                            f"{ours[k]} [{_fmt(ours[k].mflops)}]") for k in UNIT_KINDS]
                + [_fmt(at[k]["error"]) if k in at else "—" for k in UNIT_KINDS]
                + [ours_gap, f"{paper_other}: {paper_gap:+.1f}"])
    plot.append((level, measured, {k: at[k]["error"] for k in at}))
  findings = [f"ShuffleNet has the lowest error at {sum(best)}/{len(best)} complexity levels "
              "(paper: 3/3). Cells: error [MFLOPs at 224x224 of the fitted model]."]
  findings += gap_findings(gaps, "complexity levels", "ShuffleNet beats the best other unit")
  findings += paper_gap_findings(vs_paper, "complexity levels")

  def figure(ax_ours, ax_paper):
    for ax, i, title in ((ax_ours, 1, "ours"), (ax_paper, 2, "paper (ImageNet)")):
      for kind in UNIT_KINDS:
        pts = [(p[0], p[i][kind]) for p in plot if p[i].get(kind) is not None]
        if pts:
          ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=kind)
      ax.set_xscale("log"); ax.set_xlabel("MFLOPs (224x224)"); ax.set_ylabel("top-1 error (%)")
      ax.set_title(title); ax.legend(fontsize=7)
  return header, rows, findings, figure


def table_mobilenet(records):
  """Table 5: ShuffleNet vs MobileNet v1 at matched complexity (with SE and shallow rows)."""
  c = _by_model(records)
  header = ["model", "MFLOPs", "ours", "paper", "ours gain vs MobileNet", "paper gain"]
  rows, wins, plot = [], [], []
  mobilenet = None
  for row in paper.tables()["table5_vs_mobilenet"]:
    name = paper.shufflenet_label_to_name(row["model"]) or paper.baseline_label_to_name(row["model"])
    cell = c[name]
    if name.startswith("mobilenet"):
      mobilenet = (cell, row["error"])
      gain, paper_gain = None, None
    else:
      gain = gap(mobilenet[0], cell)
      paper_gain = mobilenet[1] - row["error"]
      if gain is not None:
        wins.append(gain)
    rows.append([row["model"], _fmt(cell.mflops), str(cell), row["error"],
                 _gap_str(gain), _fmt(paper_gain, 1, True)])
    plot.append((row["model"], cell.mflops, cell.mean, row["mflops"], row["error"]))
  findings = gap_findings(wins, "rows", "ShuffleNet beats the MobileNet of its complexity "
                         "level") + [
      f"Paper: {len(wins)}/{len(wins)} rows. Gain = MobileNet error minus ShuffleNet error at "
      "the level above it in the table."]

  def figure(ax_ours, ax_paper):
    for ax, (ix, iy), title in ((ax_ours, (1, 2), "ours"), (ax_paper, (3, 4), "paper")):
      for fam, marker in (("MobileNet", "s"), ("ShuffleNet", "o")):
        pts = [p for p in plot if fam in p[0] and p[ix] and p[iy] is not None]
        ax.plot([p[ix] for p in pts], [p[iy] for p in pts], marker, label=fam)
      ax.set_xscale("log"); ax.set_xlabel("MFLOPs (224x224)"); ax.set_ylabel("top-1 error (%)")
      ax.set_title(title); ax.legend()
  return header, rows, findings, figure


def paired_table(question: str, pairs: list[tuple[str, str]]):
  """A table builder for an ablation the paper does not have (docs/extending.md): for each
  (baseline, variant) pair of registry names, both cells and the gain = baseline error -
  variant error (> 0: the variant is better) with its 95% CI and paired test over the
  seeds both hold, the findings from the tests and the table's minimal detectable gap.
  ``question`` heads the table."""
  def builder(records):
    c = _by_model(records)
    header = ["baseline", "variant", "MFLOPs baseline / variant", "baseline error",
              "variant error", "gain [95% CI] p"]
    rows, gaps, plot = [], [], []
    for base, variant in pairs:
      b, v = c[base], c[variant]
      if not b.n and not v.n:
        continue  # a pair this sweep did not run
      gaps.append(gap(b, v))
      rows.append([base, variant, f"{_fmt(b.mflops)} / {_fmt(v.mflops)}", str(b), str(v),
                   _gap_str(gaps[-1])])
      plot.append((variant, b.mean, v.mean))
    findings = gap_findings(gaps, "pairs", "The variant lowers the error", "the variant's way")

    def figure(ax_ours, ax_paper):
      xs = range(len(plot))
      ax_ours.bar([x - 0.2 for x in xs], [p[1] or 0 for p in plot], 0.4, label="baseline")
      ax_ours.bar([x + 0.2 for x in xs], [p[2] or 0 for p in plot], 0.4, label="variant")
      ax_ours.set_xticks(list(xs), [p[0] for p in plot], rotation=20, fontsize=7)
      ax_ours.set_title("ours: top-1 error (%)")
      ax_ours.legend()
      ax_paper.axis("off")
      ax_paper.text(0.5, 0.5, "not in the paper", ha="center", va="center")
    return header, rows, findings, figure

  builder.__doc__ = question
  return builder


def register_table(sweep_name: str, builder) -> None:
  """Adds the table builder of a new sweep (docs/extending.md); main.py then accepts the
  sweep (experiments/sweep.py TABLE_SWEEPS) and the runner writes its table."""
  from experiments import sweep
  if sweep_name in BUILDERS:
    raise ValueError(f"sweep {sweep_name!r} already has a table builder")
  BUILDERS[sweep_name] = builder
  sweep.TABLE_SWEEPS = (*sweep.TABLE_SWEEPS, sweep_name)


BUILDERS = {"ablation_groups": table_groups, "ablation_shuffle": table_shuffle,
            "ablation_width": table_width, "ablation_depth": table_depth,
            "compare_units": table_units, "compare_mobilenet": table_mobilenet}


# ------------------------------------------------------------------------- output

def build(sweep_name: str, records: list[dict], out_dir: str | Path) -> list[Path]:
  if sweep_name not in BUILDERS:
    raise ValueError(f"no table builder for sweep {sweep_name!r}; valid: {', '.join(BUILDERS)}")
  if not records:
    raise ValueError(f"no run records for sweep {sweep_name!r}")
  records = sorted(records, key=lambda r: (r["model"], r["seed"]))
  budgets = {}
  for r in records:
    c = r["config"]
    key = (f"preset {c.get('preset')}, " + (f"{c['num_train_steps']} steps" if
           c["num_train_steps"] > 0 else f"{c['num_epochs']:g} epochs")
           + f", batch {c['batch_size']}, lr {c['learning_rate']:g}")
    budgets.setdefault(key, []).append(f"{r['model']}-seed{r['seed']}")
  if len(budgets) > 1:  # a table compares arms trained alike, or it compares budgets
    raise ValueError(f"the records of {sweep_name!r} mix budgets: " + "; ".join(
        f"{k} ({len(v)} runs, e.g. {v[0]})" for k, v in budgets.items())
        + ". Keep one budget per records directory (move the others elsewhere).")
  builder = BUILDERS[sweep_name]
  header, rows, findings, figure = builder(records)
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)

  md = [f"# {sweep_name}: {builder.__doc__.strip()}", "",
        "Top-1 error (%), ours: mean over seeds [95% t-interval] (n seeds); gaps: mean "
        "difference [95% CI] and two-sided p (paired t-test on the per-seed differences of the seeds "
        "both cells share, n = the pairs; else Welch). Paper: ImageNet top-1 error.", "",
        *mdtable.markdown(header, rows)]
  if len({r["seed"] for r in records}) < 2:
    findings.append("One seed per configuration: the gaps above have no error bars, and at a "
                    "short budget they can be run-to-run noise.")
  md += ["", "**Findings in our runs:**", ""] + [f"- {f}" for f in findings]
  md += ["", "**Provenance:**", ""] + provenance(records)
  md += ["", f"Rebuild: `python -m experiments.tables` (from the result.json records; "
         f"generated from records up to {max(r['finished_at'] for r in records)}).", ""]
  paths = mdtable.write_md_csv(out, sweep_name, md, header, rows)

  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
  figure(ax1, ax2)
  fig.suptitle(f"{sweep_name} ({', '.join(sorted({r['dataset'] for r in records}))} vs paper)")
  fig.tight_layout()
  fig.savefig(paths[2], dpi=110, metadata={"Software": None})
  plt.close(fig)
  return paths


def load_records(directory: Path) -> list[dict]:
  return [json.loads(p.read_text()) for p in sorted(directory.glob("*/result.json"))]


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog="python -m experiments.tables", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--records", default="results/records",
                  help="a directory of <sweep>/<run id>/result.json, or with --sweep, of "
                       "<run id>/result.json (default: results/records)")
  ap.add_argument("--sweep", help="build only this sweep's table from --records")
  ap.add_argument("--out", default="results", help="where the tables go (default: results)")
  args = ap.parse_args(argv)
  root = Path(args.records)
  if args.sweep:
    jobs = [(args.sweep, root if list(root.glob("*/result.json")) else root / args.sweep)]
  else:
    jobs = [(d.name, d) for d in sorted(root.iterdir()) if d.is_dir()] if root.is_dir() else []
  if not jobs:
    print(f"error: no sweep records under {root}", file=sys.stderr)
    return 2
  try:
    for name, directory in jobs:
      if name == arm_timing.NAME:
        paths = arm_timing.build(arm_timing.load_records(directory), args.out)
      else:
        paths = build(name, load_records(directory), args.out)
      for p in paths:
        print(p)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
