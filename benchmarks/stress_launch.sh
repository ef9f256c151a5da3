#!/usr/bin/env bash
# Issue 26's stress check (not in the test suite): N consecutive 2-process launches of the
# quick run, each compared with one run in 1 process x 2 devices: same config.json, same
# metrics.jsonl (img/s aside), same result.json metrics, and nothing else in the workdir.
#   benchmarks/stress_launch.sh            # N=20, STEPS=30, work under runs/stress_launch
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
N=${N:-20}
STEPS=${STEPS:-30}
WORK=${WORK:-runs/stress_launch}
ARGS=(main.py --config=configs/default.py:quick --config.num_train_steps="$STEPS"
      --config.wandb.mode=disabled)
rm -rf "$WORK" && mkdir -p "$WORK"

JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=2 \
  $PY "${ARGS[@]}" --workdir="$WORK/reference" > "$WORK/reference.log" 2>&1 \
  || { echo "the 1-process 2-device reference run failed: $WORK/reference.log"; exit 1; }

ok=0
for i in $(seq 1 "$N"); do
  w="$WORK/launch$i"
  t0=$(date +%s)
  if $PY -m shufflenet_jax.launch --processes 2 -- "${ARGS[@]}" --workdir="$w" > "$w.log" 2>&1 \
     && $PY - "$w" "$WORK/reference" <<'EOF'
import json, pathlib, sys
w, ref = map(pathlib.Path, sys.argv[1:])
lines = lambda d: [{k: v for k, v in json.loads(l).items() if k not in ("img_per_s", "elapsed_s")}
                   for l in (d / "metrics.jsonl").read_text().splitlines()]
metrics = lambda d: json.loads((d / "result.json").read_text())["metrics"]
config = lambda d: json.loads((d / "config.json").read_text())
names = sorted(p.name for p in w.iterdir() if p.name != ".lock")
assert names == ["checkpoints", "config.json", "metrics.jsonl", "result.json"], names
assert config(w) == config(ref), "config.json differs"
assert lines(w) == lines(ref), "metrics.jsonl differs"
assert metrics(w) == metrics(ref), "result.json metrics differ"
EOF
  then
    ok=$((ok + 1)); echo "launch $i: ok ($(( $(date +%s) - t0 )) s)"
  else
    echo "launch $i: FAILED (log: $w.log)"
  fi
done
echo "$ok/$N two-process launches succeeded with records equal to the 1-process 2-device run"
[ "$ok" = "$N" ]
