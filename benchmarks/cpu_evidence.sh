#!/usr/bin/env bash
# The powered evidence of issue 25 on a CPU machine, across sessions: each sweep at the
# `power` budget (1 epoch, 6 seeds), cheapest widths first, resuming from the records
# already committed under results/records/<sweep>/ (copied into the workdir, so the runner
# skips them), harvesting every finished run back into results/records/ and rebuilding
# results/ (commit them as they come). Run in the background:
#   nohup benchmarks/cpu_evidence.sh > runs/evidence.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

harvest() {  # finished runs of every power workdir -> results/records/<sweep>/, tables
  for src in runs/*-power/runs; do
    [ -d "$src" ] || continue
    sweep=$(basename "$(dirname "$src")"); sweep=${sweep%-power}
    for d in "$src"/*/; do
      [ -f "$d/result.json" ] || continue
      dst="results/records/$sweep/$(basename "$d")"
      if [ -f "$dst/config.json" ] && ! grep -q '"preset": "power"' "$dst/config.json"; then
        echo "warning: $dst holds another budget's record (same run id); not overwritten" >&2
        continue
      fi
      mkdir -p "$dst" && cp "$d/result.json" "$d/config.json" "$dst/"
    done
  done
  $PY -m experiments.tables > /dev/null
}

archive_quick() {  # a sweep's older `quick` records and tables -> results/archive/quick_1seed/
  local sweep=$1 arch=results/archive/quick_1seed
  [ -d "results/records/$sweep" ] || return 0
  local stale  # (not grep -L | grep -q: under pipefail, grep -L's SIGPIPE reads as "none")
  stale=$(grep -L '"preset": "power"' results/records/"$sweep"/*/config.json 2>/dev/null)
  [ -n "$stale" ] || return 0
  mkdir -p "$arch/records/$sweep"
  for d in results/records/"$sweep"/*/; do
    grep -q '"preset": "power"' "$d/config.json" || mv "$d" "$arch/records/$sweep/"
  done
  for ext in md csv png; do
    [ -f "results/$sweep.$ext" ] && mv "results/$sweep.$ext" "$arch/"
  done
  rmdir "results/records/$sweep" 2>/dev/null
  return 0
}

run() {  # sweep, widths (a tuple's inside, e.g. "0.25," or "0.25, 0.5"; "-": no width axis),
  local sweep=$1 widths=$2 work=runs/$1-power  # more flags
  shift 2
  mkdir -p "$work/runs"
  archive_quick "$sweep"
  if [ -d "results/records/$sweep" ]; then
    for d in results/records/"$sweep"/*/; do  # the power budget's records only
      grep -q '"preset": "power"' "$d/config.json" || continue
      [ -d "$work/runs/$(basename "$d")" ] || cp -r "$d" "$work/runs/"
    done
  fi
  [ "$widths" = - ] || set -- --config.sweep.width="($widths)" "$@"
  $PY main.py --config=configs/$sweep.py:power --workdir="$work" "$@" \
    || echo "warning: $sweep at ${widths}x stopped ($?)"
}

( while sleep 300; do harvest; done ) &
trap 'kill $! 2>/dev/null; harvest' EXIT
run ablation_shuffle "0.25,"
run ablation_groups "0.25,"
run ablation_shuffle "0.5,"
run ablation_groups "0.5,"
run ablation_depth "0.5,"
# The width sweep runs config by config: seeds 0-2 of every width first (the issue's
# minimum of 3), then Table 3's 1x rows (6 seeds), then Tables 5 and 4 (MobileNet, the other
# units: their `quick` tables go to the archive) with 3 seeds, then the width sweep's other
# three seeds.
run ablation_width "0.25, 0.5, 1.0, 1.5, 2.0" "--config.seeds=(0, 1, 2)"
run ablation_shuffle "1.0,"
run compare_mobilenet - "--config.seeds=(0, 1, 2)"
run compare_units - "--config.seeds=(0, 1, 2)"
run ablation_width "0.25, 0.5, 1.0, 1.5, 2.0"
