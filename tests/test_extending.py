"""docs/extending.md's worked example runs as written: its Python blocks, executed in order
in a fresh process (the registrations must not leak into the other tests' registry), add a
unit type, a model name, a table and a sweep; the sweep trains at a tiny budget (2 arms x 2
seeds, vmapped, data on the device) and the table comes out with both arms, their paired gap
and its test."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"

TINY_SWEEP = """
config = get_config("finding")
config.wandb.mode = "disabled"
config.seeds, config.seeds_per_program = (0, 1), 2
config.train_split, config.eval_split = "train[:2048]", "test[:500]"
config.num_train_steps = config.checkpoint_every_steps = 8
config.log_every_steps, config.warmup_steps = 4, 0
print(json.dumps([str(p) for p in runner.run_sweep(config, WORKDIR)]))
"""


def doc_blocks() -> list[str]:
  return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def row_of(md: str) -> str:
  return next(l for l in md.splitlines() if l.startswith("| unit_xception_like_13 | unit_dwsep_13"))


def test_the_extending_example_trains_and_writes_its_table(tmp_path):
  blocks = doc_blocks()
  assert len(blocks) == 5, "docs/extending.md: the test expects its five Python blocks"
  script = "\n".join(["import json", f"WORKDIR = {str(tmp_path)!r}", *blocks, TINY_SWEEP])
  p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                     timeout=1200)
  assert p.returncode == 0, p.stderr[-3000:]
  paths = json.loads(p.stdout.strip().splitlines()[-1])
  md = Path(paths[0]).read_text()
  assert Path(paths[0]).name == "ablation_dwsep.md" and Path(paths[1]).is_file()
  assert md.startswith("# ablation_dwsep: a depthwise-separable unit vs the Xception-like unit")
  assert "| 13.2 / 12.2 |" in row_of(md)  # the fitted width: 116 -> 12.2 MFLOPs
  row = row_of(md)
  assert row.count("(n=2)") == 2 and "p=" in row  # both cells, the paired test
  assert "The variant lowers the error in" in md and "minimal detectable gap" in md
  results = {}
  for f in sorted(tmp_path.glob("runs/*/result.json")):
    r = json.loads(f.read_text())
    results[(r["model"], r["seed"])] = r
  assert sorted(results) == [(m, s) for m in ("unit_dwsep_13", "unit_xception_like_13")
                             for s in (0, 1)]
  assert all(r["metrics"]["steps"] == 8 and r["trainer"]["seed_group"] == [0, 1]
             for r in results.values())
  # Fitted to the same level: within 10% of the Xception-like unit's MFLOPs.
  dwsep, xception = results[("unit_dwsep_13", 0)], results[("unit_xception_like_13", 0)]
  assert abs(dwsep["mflops_imagenet224"] / xception["mflops_imagenet224"] - 1) < 0.1
