"""MACs and parameter counts read off the traced models, against docs/design.md and the paper."""

import json
import subprocess
import sys

import pytest

from shufflenet_jax import complexity

# docs/design.md section 3: MACs (MFLOPs, conv + FC, 224x224) and trainable parameters at 1x.
EXPECTED_1X = {1: (143.1, 1_531_936), 2: (140.8, 1_733_848), 3: (137.5, 1_865_728),
               4: (134.3, 1_968_344), 8: (138.4, 2_434_768)}


@pytest.mark.parametrize("groups", sorted(EXPECTED_1X))
def test_1x_macs_and_params(groups):
  rec = complexity.model_complexity(f"shufflenet_1.0x_g{groups}")
  mflops, params = EXPECTED_1X[groups]
  assert rec["params"] == params
  assert round(rec["mflops"], 1) == mflops


def test_macs_scale_with_resolution():
  a = complexity.model_complexity("shufflenet_0.5x_g3")
  b = complexity.model_complexity("shufflenet_0.5x_g3", (448, 448))
  # conv work scales 4x; the FC layer (about 0.23M MACs at 0.5x) does not.
  fc = 480 * 1000 / 1e6
  assert abs((b["mflops"] - fc) - 4 * (a["mflops"] - fc)) < 0.05


def test_paper_rows_within_tolerance():
  # ShuffleNet rows and MobileNet (Table 5); the other baselines: tests/test_baselines.py.
  records = [r for r in complexity.paper_records()
             if r["name"].startswith(("shufflenet_", "mobilenet_"))]
  tables = {r["paper_table"] for r in records}
  assert tables == {"table1", "table2", "table5", "table8", "official"}
  for r in records:
    tol = {"table2": 0.20}.get(r["paper_table"], 0.05 if r["depth"] == "shallow" else 0.02)
    assert abs(r["mflops"] / r["paper_mflops"] - 1) <= tol, r
    if "paper_params_m" in r:
      assert round(r["params"] / 1e6, 1) == pytest.approx(r["paper_params_m"], abs=0.1), r


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "shufflenet_jax.complexity", *args],
                        capture_output=True, text=True, timeout=300)


def test_cli_single_model_json():
  out = _cli("--model", "shufflenet_1.0x_g8_noshuffle", "--resolution", "480", "640", "--json")
  assert out.returncode == 0, out.stderr
  (rec,) = json.loads(out.stdout)
  assert rec["name"] == "shufflenet_1.0x_g8_noshuffle"
  assert rec["shuffle"] is False and rec["groups"] == 8 and rec["resolution"] == [480, 640]
  assert rec["params"] == 2_434_768


@pytest.mark.parametrize("args,needle", [
    (["--model", "shufflenet_1.0x_g5"], "unknown model name 'shufflenet_1.0x_g5'"),
    (["--model", "nonsense"], "unknown model name 'nonsense'"),
])
def test_cli_bad_model_exits_nonzero_without_traceback(args, needle):
  out = _cli(*args)
  assert out.returncode != 0
  assert needle in out.stderr
  assert "Traceback" not in out.stderr
