"""TFLite export: builtin ops only, fully delegated to XNNPACK, float32 equal to JAX, int8
agreeing with the float model on real data; failing checks are reported, never written as
good; the timing job resumes and its table is rebuilt from the records."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from experiments import arm_timing, tables
from shufflenet_jax import complexity, export, train
from shufflenet_jax.models import create_model

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_FLOAT_OPS = {"ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
                     "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "PAD", "RELU", "RESHAPE", "SUM",
                     "TRANSPOSE"}


@pytest.mark.parametrize("name", ["shufflenet_0.5x_g3", "shufflenet_0.25x_g8"])
def test_float32_export_matches_jax_and_is_fully_delegated(name, tmp_path):
  out = tmp_path / f"{name}.tflite"
  tflite, report = export.export_registry_model(name, (64, 96), "float32", out=out)
  assert report.ok, report.problems
  assert report.max_abs_diff <= 1e-4 and report.jax_float32_abs_diff <= 1e-4
  assert report.delegate_partitions == 1 and report.undelegated_ops == []
  assert report.non_builtin_ops == [] and set(report.ops) <= ALLOWED_FLOAT_OPS, report.ops
  assert report.ops["CONV_2D"] > 0 and report.ops["DEPTHWISE_CONV_2D"] > 0
  assert out.read_bytes() == tflite
  lat = export.latency(tflite, rounds=3, min_runs=3, min_seconds=0.0, max_runs=3)
  assert lat["runs"] == 3 and 0 < lat["min_ms"] <= lat["median_ms"] <= lat["max_ms"]


@pytest.mark.parametrize("float_classifier", [True, False])
def test_int8_export_is_fully_delegated(float_classifier):
  _, report = export.export_registry_model("shufflenet_0.5x_g3", (64, 64), "int8",
                                           float_classifier=float_classifier)
  assert report.ok, report.problems
  assert report.delegate_partitions == 1 and report.undelegated_ops == []
  assert "QUANTIZE" in report.ops and "AVERAGE_POOL_2D" not in report.ops
  assert report.classifier_dtype == ("FLOAT32" if float_classifier else "INT8")


def _activation_scales(tflite: bytes) -> dict[str, float]:
  """{tensor name: int8 scale} of the per-tensor-quantized (activation) tensors."""
  from tensorflow.lite.tools import flatbuffer_utils
  model = flatbuffer_utils.read_model_from_bytearray(tflite)
  return {t.name.decode(): float(t.quantization.scale[0]) for t in model.subgraphs[0].tensors
          if t.quantization is not None and t.quantization.scale is not None
          and len(t.quantization.scale) == 1}


def test_averaged_int8_ranges_lie_inside_the_global_min_max():
  """range_chunk > 0: each activation's range is the mean of per-chunk min/max, so its int8
  step is never wider than the converter's min/max over all images, and narrower on some."""
  model = create_model("shufflenet_0.25x_g3", rngs=nnx.Rngs(0), pool_impl="depthwise")
  images = export.dataset_images(20, (32, 32, 3))
  export.calibrate_batch_stats(model, images)
  scales = {chunk: _activation_scales(export.to_tflite(model, (1, 32, 32, 3), "int8", images,
                                                       range_chunk=chunk))
            for chunk in (0, 5)}
  assert scales[0].keys() == scales[5].keys() and len(scales[0]) > 20
  assert all(scales[5][k] <= scales[0][k] * (1 + 1e-6) for k in scales[0])
  assert sum(scales[5][k] < 0.95 * scales[0][k] for k in scales[0]) >= len(scales[0]) // 4
  with pytest.raises(ValueError, match="range_chunk=-1; valid: 0"):
    export.to_tflite(model, (1, 32, 32, 3), "int8", images, range_chunk=-1)


def test_a_failing_check_names_the_op_and_writes_nothing_as_good(tmp_path):
  # int8 with the window average pool: XNNPACK takes no quantized AVERAGE_POOL_2D.
  model = create_model("shufflenet_0.25x_g3", rngs=nnx.Rngs(0), pool_impl="window")
  images = export.dataset_images(8, (64, 64, 3))
  export.calibrate_batch_stats(model, images)
  out = tmp_path / "bad.tflite"
  with pytest.raises(export.ExportCheckError, match="AVERAGE_POOL_2D") as e:
    export.export(model, "bad", (1, 64, 64, 3), "int8", calibration=images, out=out)
  assert e.value.report.delegate_partitions > 1
  assert not out.exists() and (tmp_path / "bad.tflite.rejected").exists()


def test_restored_checkpoint_and_int8_agree_with_the_trained_float_model(fmnist_run):
  """The 150-step Fashion-MNIST run: its restored JAX model reproduces the run's own eval
  accuracy, the float32 TFLite model predicts exactly as JAX, and int8 agrees on >= 95% of
  the 2000 images (97.05% measured with the classifier in int8 too; the fully trained proxy
  model's figure, on all 10,000 test images, is in results/arm_timing.md)."""
  workdir, result = fmnist_run
  model, step = train.restore_model(workdir)
  assert step == 150
  images, labels = export.dataset_images(2000, (28, 28, 1), labels=True)
  jax_acc = np.mean(export.jax_logits(model, images).argmax(-1) == labels)
  assert abs(jax_acc - (1 - result["metrics"]["eval_top1_err"])) < 1e-9
  r = export.int8_agreement(workdir, num_images=2000, num_calibration=200)
  assert r["float32_tflite_vs_jax_top1_agreement"] == 1.0
  assert r["int8_vs_jax_float_top1_agreement"] >= 0.95, r
  assert r["int8"]["report"]["problems"] == [] and r["float32"]["report"]["problems"] == []


def test_cli_errors_name_the_value(tmp_path):
  run = lambda *a: subprocess.run([sys.executable, "-m", "shufflenet_jax.export", *a], cwd=ROOT,
                                  capture_output=True, text=True, timeout=300)
  p = run("--model=shufflenet_1.0x_g5")
  assert p.returncode == 2 and "unknown model name 'shufflenet_1.0x_g5'" in p.stderr
  assert "Traceback" not in p.stderr
  p = run("--model=shufflenet_0.5x_g3", "--resolution=224")
  assert p.returncode == 2 and "--resolution='224'" in p.stderr
  p = run(f"--workdir={tmp_path}")
  assert p.returncode == 2 and "config.json does not exist" in p.stderr


def test_timing_job_resumes_and_its_table_is_rebuilt_from_records(tmp_path):
  flags = ["--config=configs/arm_timing.py:quick", f"--workdir={tmp_path}",
           "--config.models=('shufflenet_0.25x_g3','shufflenet_0.5x_g3')",
           "--config.reference=shufflenet_0.5x_g3", "--config.resolutions=((32,32),)",
           "--config.precisions=('float32','int8')", "--config.min_runs=2", "--config.rounds=2",
           "--config.min_seconds=0", "--config.warmup=1"]
  cmd = [sys.executable, "main.py", *flags]
  p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  recs = arm_timing.load_records(tmp_path / "runs")
  assert len(recs) == 4 and all(not r["export"]["problems"] for r in recs)
  assert {(r["model"], r["precision"]) for r in recs} == {
      (m, q) for m in ("shufflenet_0.25x_g3", "shufflenet_0.5x_g3") for q in ("float32", "int8")}
  md = (tmp_path / "results" / "arm_timing.md").read_text()
  mflops = complexity.model_complexity("shufflenet_0.25x_g3")["mflops"]
  assert f"| shufflenet_0.25x_g3 | {mflops:.1f} | float32 |" in md and "| 1.00 |" in md
  done = {f: f.stat().st_mtime for f in (tmp_path / "runs").glob("*/result.json")}
  p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert p.returncode == 0 and p.stderr.count("done already, skipped") == 2  # both groups
  assert {f: f.stat().st_mtime for f in done} == done
  rebuilt = tmp_path / "rebuilt"
  assert tables.main(["--records", str(tmp_path / "runs"), "--sweep", "arm_timing",
                      "--out", str(rebuilt)]) == 0
  for name in ("arm_timing.md", "arm_timing.csv"):
    assert (rebuilt / name).read_bytes() == (tmp_path / "results" / name).read_bytes()
  rows = (tmp_path / "results" / "arm_timing.csv").read_text().splitlines()
  assert len(rows) == 5 and json.dumps(rows)
