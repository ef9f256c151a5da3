"""Paper Table 8 on this machine's CPU: LiteRT latency of the exported models.

``run(config, workdir)`` (``python main.py --config=configs/arm_timing.py``) exports and
times every (model, precision, resolution), one record per measurement under
``<workdir>/runs/<id>/result.json``, skipping those already done, then builds the table.
The models of one (precision, resolution) are exported, then timed side by side in rounds
(export.latency_side_by_side), so the ratios between them survive a noisy machine.
``build(records, out)`` writes ``arm_timing.md|csv|png`` from the records alone
(``python -m experiments.tables`` calls it for ``results/records/arm_timing``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from pathlib import Path

from absl import logging

from shufflenet_jax import complexity, mdtable, paper, records as run_records

NAME = "arm_timing"
RATIO_TOLERANCE = 0.25  # the paper's ratios between ShuffleNets, reproduced within 25%


def versions() -> dict:
  out = run_records.library_versions()
  for pkg in ("tensorflow-cpu", "tensorflow", "ai-edge-litert"):
    try:
      out[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      pass
  return out


def run_id(model: str, precision: str, resolution) -> str:
  return f"{model}-{precision}-{resolution[0]}x{resolution[1]}"


def _common(config, commit: str) -> dict:
  return dict(kind=NAME, cpu=run_records.cpu_description(), cpu_count=os.cpu_count(),
              versions=versions(),
              git_commit=commit, config=json.loads(config.to_json_best_effort()))


def run(config, workdir: str | Path | None = None) -> list[Path]:
  from shufflenet_jax import export
  from shufflenet_jax.models import registry
  root = Path(workdir) if workdir else Path("runs") / NAME
  commit = run_records.git_commit()
  unknown = [m for m in config.models if m not in registry.model_names()]
  if unknown:
    raise ValueError(f"arm_timing: unknown model(s) {unknown}; see "
                     "shufflenet_jax.models.model_names()")
  groups = [(p, tuple(r)) for p in config.precisions for r in config.resolutions]
  logging.info("%s: %d models x %d (precision, resolution) groups in %s (%d threads); the "
               "models of a group are timed side by side", NAME, len(config.models),
               len(groups), root, config.num_threads)
  t0, done_now = time.time(), 0
  for k, (precision, res) in enumerate(groups, 1):
    rdirs = {m: root / "runs" / run_id(m, precision, res) for m in config.models}
    tag = f"{precision} {res[0]}x{res[1]}"
    if all((d / "result.json").exists() for d in rdirs.values()):
      logging.info("[%d/%d] %s: done already, skipped", k, len(groups), tag)
      continue
    load_before = os.getloadavg()[0]
    exported = {}
    for model in config.models:
      kwargs = dict(config.model_kwargs.get(model, {}))
      out = root / "tflite" / f"{rdirs[model].name}.tflite" if config.keep_tflite else None
      try:
        exported[model] = export.export_registry_model(
            model, res, precision, num_calibration=config.num_calibration, out=out,
            float_classifier=config.get("int8_float_classifier", True),
            equalize=config.get("int8_equalize", True),
            range_chunk=config.get("int8_range_chunk", export.RANGE_CHUNK), **kwargs)
      except export.ExportCheckError as e:  # timed anyway: the table names what failed
        logging.warning("%s", e)
        exported[model] = (e.tflite, e.report)
    lats = export.latency_side_by_side(
        {m: t for m, (t, _) in exported.items()}, num_threads=config.num_threads,
        warmup=config.warmup, rounds=config.rounds, min_runs=config.min_runs,
        max_runs=config.max_runs, min_seconds=config.min_seconds)
    load_after = os.getloadavg()[0]
    for model, (_, report) in exported.items():
      kwargs = dict(config.model_kwargs.get(model, {}))
      counted = complexity.model_complexity(model, res, **kwargs)
      record = dict(
          _common(config, commit), model=model, precision=precision, resolution=list(res),
          mflops=counted["mflops"], params=counted["params"],
          mflops_224=complexity.model_complexity(model, (224, 224), **kwargs)["mflops"],
          latency=lats[model], export=_jsonable(report),
          loadavg_1min=[round(load_before, 2), round(load_after, 2)],
          finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
      rdirs[model].mkdir(parents=True, exist_ok=True)
      run_records.atomic_write(rdirs[model] / "result.json", json.dumps(record, indent=1) + "\n")
      if report.problems:
        logging.warning("%s: CHECK FAILED: %s", rdirs[model].name, "; ".join(report.problems))
    done_now += 1
    left = sum(not all((root / "runs" / run_id(m, *g) / "result.json").exists()
                       for m in config.models) for g in groups)
    logging.info("[%d/%d] %s: %s | ETA %.0f min", k, len(groups), tag,
                 ", ".join(f"{m} {lats[m]['median_ms']:.2f} ms" for m in config.models),
                 (time.time() - t0) / done_now * left / 60)
  if config.agreement_workdir:
    adir = root / "runs" / "int8_agreement"
    if not (adir / "result.json").exists():
      logging.info("int8 agreement on %s", config.agreement_workdir)
      agreement = export.int8_agreement(
          config.agreement_workdir, float_classifier=config.get("int8_float_classifier", True),
          equalize=config.get("int8_equalize", True),
          range_chunk=config.get("int8_range_chunk", export.RANGE_CHUNK))
      record = dict(_common(config, commit), **_jsonable(agreement), kind="int8_agreement",
                    finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
      adir.mkdir(parents=True, exist_ok=True)
      run_records.atomic_write(adir / "result.json", json.dumps(record, indent=1) + "\n")
  recs = load_records(root / "runs")
  paths = build(recs, root / "results")
  print("\n".join(map(str, paths)))
  return paths


def _jsonable(x):
  import dataclasses
  if dataclasses.is_dataclass(x):
    x = dataclasses.asdict(x)
  return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def load_records(directory: Path) -> list[dict]:
  return [json.loads(p.read_text()) for p in sorted(Path(directory).glob("*/result.json"))]


# ------------------------------------------------------------------------------ the table

def _paper_rows() -> dict:
  """registry name -> paper ms per resolution (Table 8, Snapdragon 820, one thread)."""
  t8 = paper.tables()["table8_arm_latency_ms"]
  out = {}
  for row in t8["rows"]:
    name = paper.shufflenet_label_to_name(row["model"]) or paper.baseline_label_to_name(row["model"])
    out[name] = dict(zip(t8["columns"], row["ms"]), mflops=row["mflops"], label=row["model"])
  return out


def _res_key(res) -> str:
  return f"{res[0]}x{res[1]}"


def _paper_col(res) -> str:
  """Our (H, W) -> the paper's column name ('480x640' is H x W there too)."""
  return _res_key(res)


def build(records: list[dict], out_dir: str | Path) -> list[Path]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  timings = [r for r in records if r.get("kind") == NAME]
  agreements = [r for r in records if r.get("kind") == "int8_agreement"]
  if not timings:
    raise ValueError("no arm_timing records")
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  cfg = timings[0]["config"]
  ref = cfg["reference"]
  models = list(dict.fromkeys(cfg["models"]))
  precisions = list(dict.fromkeys(cfg["precisions"]))
  resolutions = [tuple(r) for r in cfg["resolutions"]]
  by = {(r["model"], r["precision"], tuple(r["resolution"])): r for r in timings}
  paper_rows = _paper_rows()

  def ms(model, precision, res):
    r = by.get((model, precision, res))
    return r["latency"]["median_ms"] if r else None

  def ratio(model, precision, res):
    a, b = ms(model, precision, res), ms(ref, precision, res)
    return a / b if a is not None and b else None

  def paper_ms(model, res):
    return paper_rows.get(model, {}).get(_paper_col(res))

  def paper_ratio(model, res):
    a, b = paper_ms(model, res), paper_ms(ref, res)
    return a / b if a is not None and b else None

  f = lambda x, d=1: "—" if x is None else f"{x:.{d}f}"
  header = ["model", "precision", "resolution", "mflops", "median_ms", "q1_ms", "q3_ms", "runs",
            "ratio_vs_ref", "paper_ms_sd820", "paper_ratio_vs_ref", "fully_delegated",
            "check_problems"]
  rows = []
  md = ["# Paper Table 8 on this CPU: LiteRT latency (ms per image, 1 thread, XNNPACK)", ""]
  cols = [c for r in resolutions for c in (f"{_res_key(r)} ours", "×ref", "paper SD820", "×ref")]
  md_rows = []
  for model in models:
    for precision in precisions:
      cells = []
      for res in resolutions:
        r = by.get((model, precision, res))
        cells += [f(ms(model, precision, res), 2), f(ratio(model, precision, res), 2),
                  f(paper_ms(model, res)) if precision == "float32" else "",
                  f(paper_ratio(model, res), 2) if precision == "float32" else ""]
        if r:
          lat, rep = r["latency"], r["export"]
          rows.append([model, precision, _res_key(res), f"{r['mflops']:.1f}",
                       f"{lat['median_ms']:.3f}", f"{lat['q1_ms']:.3f}", f"{lat['q3_ms']:.3f}",
                       lat["runs"], f(ratio(model, precision, res), 3),
                       f(paper_ms(model, res)), f(paper_ratio(model, res), 3),
                       not rep["problems"], "; ".join(rep["problems"])])
      any_rec = next((by[k] for k in by if k[0] == model), None)
      mflops = f"{any_rec['mflops_224']:.1f}" if any_rec else "—"
      label = model if any(by.get((model, precision, res)) for res in resolutions) \
          else f"{model} (missing)"
      md_rows.append([label, mflops, precision, *cells])
  md += mdtable.markdown(["Model", "MFLOPs (224)", "Precision", *cols], md_rows)

  md += ["", "Cells: median milliseconds per image over the timed runs; ×ref = time relative "
         f"to {ref} at the same resolution and precision. The paper timed float models on a "
         "Snapdragon 820 (one thread); a different CPU changes absolute times but should "
         "keep who is faster, so compare the ×ref columns.", ""]
  md += ["**Findings in our runs:**", ""] + [f"- {x}" for x in _findings(
      models, precisions, resolutions, by, ms, ratio, paper_ratio, ref, agreements)]
  md += ["", "**Spread:** interquartile range of the timed runs, per measurement, in "
         "arm_timing.csv (q1_ms, q3_ms).", ""]
  md += ["**Provenance:**", ""] + _provenance(timings, agreements)
  md += ["", "Rebuild: `python -m experiments.tables` (from the records; generated from "
         f"records up to {max(r['finished_at'] for r in records)}).", ""]
  paths = mdtable.write_md_csv(out, NAME, md, header, rows)

  fig, axes = plt.subplots(1, len(resolutions), figsize=(4.2 * len(resolutions), 4.2))
  axes = axes if len(resolutions) > 1 else [axes]
  for ax, res in zip(axes, resolutions):
    xs = range(len(models))
    width = 0.8 / (len(precisions) + 1)
    for i, precision in enumerate(precisions):
      ax.bar([x + i * width for x in xs], [ratio(m, precision, res) or 0 for m in models],
             width, label=f"ours {precision}")
    ax.bar([x + len(precisions) * width for x in xs], [paper_ratio(m, res) or 0 for m in models],
           width, label="paper SD820 (float)", color="grey")
    ax.set_xticks([x + width for x in xs])
    ax.set_xticklabels([m.replace("shufflenet_", "SN ").replace("mobilenet_v1_", "MNv1 ")
                        for m in models], rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_title(f"{_res_key(res)}: time relative to {ref.replace('shufflenet_', 'SN ')}",
                 fontsize=9)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(paths[2], dpi=110, metadata={"Software": None})
  plt.close(fig)
  return paths


def _findings(models, precisions, resolutions, by, ms, ratio, paper_ratio, ref, agreements):
  out = []
  shufflenets = [m for m in models if m.startswith("shufflenet_") and m != ref]
  checks = []
  for res in resolutions:
    for m in shufflenets:
      ours, theirs = ratio(m, "float32", res), paper_ratio(m, res)
      if ours is not None and theirs is not None:
        checks.append((m, res, ours, theirs, abs(ours / theirs - 1) <= RATIO_TOLERANCE))
  if checks:
    held = sum(c[-1] for c in checks)
    detail = "; ".join(f"{m.replace('shufflenet_', '')} at {_res_key(res)}: {o:.2f} vs "
                       f"{t:.2f} ({o / t - 1:+.0%})" for m, res, o, t, _ in checks)
    out.append(f"ShuffleNet time ratios to {ref} (float32) within {RATIO_TOLERANCE:.0%} of "
               f"the paper's in {held}/{len(checks)} cases: {detail}.")
  for baseline in ("alexnet", "mobilenet_v1_1.0"):
    parts = []
    for res in resolutions:
      a, b = ratio(baseline, "float32", res), paper_ratio(baseline, res)
      if a is not None and b is not None:
        parts.append(f"{_res_key(res)} {a:.2f}x (paper {b:.2f}x)")
    if parts:
      out.append(f"{baseline} takes {', '.join(parts)} the time of {ref}.")
  if "int8" in precisions and "float32" in precisions:
    parts = []
    for m in models:
      a, b = ms(m, "int8", (224, 224)), ms(m, "float32", (224, 224))
      if a is not None and b is not None:
        parts.append(f"{m} {b / a:.2f}x")
    if parts:
      out.append("int8 speed-up over float32 at 224x224 (float ms / int8 ms): "
                 + ", ".join(parts) + ".")
  failed = [r for r in by.values() if r["export"]["problems"]]
  if failed:
    for r in failed:
      out.append(f"Check failed for {run_id(r['model'], r['precision'], r['resolution'])} "
                 f"(timed anyway): {'; '.join(r['export']['problems'])}.")
  else:
    out.append(f"All {len(by)} exports passed the checks: builtin ops only, one XNNPACK "
               "partition with every op delegated, float32 logits within 1e-4 of the model's.")
  f32 = [r["export"] for r in by.values()
         if r["precision"] == "float32" and r["export"].get("max_abs_diff") is not None]
  if f32:
    worst = max(f32, key=lambda e: e["max_abs_diff"])
    out.append(
        f"Float32 logits against the model's float64 (JAX) logits, max abs difference over "
        f"all float32 exports (8 real images each): TFLite {worst['max_abs_diff']:.1e} "
        f"(worst: {worst['name']} at {worst['input_shape'][1]}x{worst['input_shape'][2]}), "
        f"JAX float32 {max(e.get('jax_float32_abs_diff') or 0 for e in f32):.1e}.")
  for a in agreements:
    out.append(
        f"int8 vs float (trained {a['model']}, {a['workdir']}): top-1 agreement "
        f"{100 * a['int8_vs_jax_float_top1_agreement']:.2f}% on {a['eval_images']} "
        f"Fashion-MNIST test images; accuracy JAX float {100 * a['jax_float_top1_acc']:.2f}%, "
        f"TFLite float32 {100 * a['float32']['top1_acc']:.2f}%, "
        f"int8 {100 * a['int8']['top1_acc']:.2f}% (classifier "
        f"{'float32' if a.get('float_classifier') else 'int8'}; activation ranges "
        f"{'equalized' if a.get('equalize') else 'not equalized'}, shufflenet_jax/equalize.py; "
        f"{_ranges(a.get('range_chunk'))}).")
  if not agreements:
    out.append("int8 agreement with a trained model: not measured in this run (set "
               "--config.agreement_workdir to a trained Fashion-MNIST run).")
  return out


def _ranges(range_chunk) -> str:
  """How an export's int8 activation ranges were set (records before range_chunk: min/max)."""
  if range_chunk:
    return f"int8 ranges the mean of per-chunk min/max, chunks of {range_chunk} images"
  return "int8 ranges the min/max over all calibration images"


def _provenance(timings, agreements) -> list[str]:
  r0 = timings[0]
  v = r0["versions"]
  loads = [x for r in timings for x in r.get("loadavg_1min", [])]
  lat = r0["latency"]
  cfg = r0["config"]
  i8 = next((r["config"] for r in timings if r["precision"] == "int8"), cfg)
  return [
      f"- CPU: {r0['cpu']} ({r0['cpu_count']} cores visible), {lat['num_threads']} thread, "
      "LiteRT's XNNPACK delegate; x86-64, not the paper's ARM phone.",
      f"- Timing: the models of one (precision, resolution) side by side: {cfg['warmup']} "
      f"warm-up runs each, then {cfg['rounds']} rounds that time every model in turn, at "
      f"least {cfg['min_runs']} runs and {cfg['min_seconds']:g} s per model in all (at most "
      f"{cfg['max_runs']}); median reported. 1-minute load average before/after each group: "
      f"{min(loads):.2f} .. {max(loads):.2f}.",
      f"- Models: untrained weights, BN statistics from {cfg['num_calibration']} real "
      "Fashion-MNIST test images (resized, 3 channels); int8 = post-training quantization "
      "calibrated on the same images, float input and output"
      + ("; the classifier (last op) in float32" if i8.get("int8_float_classifier")
         else "; every op int8, the classifier included")
      + f"; {_ranges(i8.get('int8_range_chunk'))}.",
      f"- Libraries: jax {v['jax']}, flax {v['flax']}, tensorflow "
      f"{v.get('tensorflow-cpu', v.get('tensorflow', '?'))}, ai-edge-litert "
      f"{v.get('ai-edge-litert', '?')}.",
      f"- Commit(s): {', '.join(sorted({r['git_commit'] for r in timings + agreements}))}; "
      f"config configs/arm_timing.py:{cfg['preset']}; measured "
      f"{min(r['finished_at'] for r in timings)} .. {max(r['finished_at'] for r in timings)}.",
  ]
