"""The exported model on other engines (shufflenet_jax/export/engines.py): the ONNX
conversion of a .tflite gives the JAX model's logits on ONNX Runtime."""

import numpy as np
import pytest

from shufflenet_jax.export import engines


def test_onnx_export_matches_jax_on_onnxruntime():
  pytest.importorskip("onnxruntime")
  pytest.importorskip("tf2onnx")
  import onnx

  from shufflenet_jax import export
  tflite, _ = export.export_registry_model("shufflenet_0.25x_g3", (32, 32), "float32",
                                           num_calibration=16)
  onnx_model = engines.to_onnx(tflite)
  ops = {n.op_type for n in onnx.load_from_string(onnx_model).graph.node}
  assert {"Conv", "MaxPool", "Concat"} <= ops, ops  # a graph of standard ONNX ops
  from flax import nnx

  from shufflenet_jax.export import calibrate_batch_stats, dataset_images, export_overrides
  from shufflenet_jax.models import registry
  model = registry.create_model("shufflenet_0.25x_g3", rngs=nnx.Rngs(0),
                                **export_overrides("shufflenet_0.25x_g3", "float32"))
  images = dataset_images(16 + 4, (32, 32, 3))
  calibrate_batch_stats(model, images[:16])  # the exported model's state (same seed, images)
  refs = engines.references(model, images[16:])
  for num_threads in (1, 2):
    run = engines.runner("onnxruntime", tflite, num_threads=num_threads, onnx=onnx_model)
    c = engines.check("onnxruntime", run, "float32", images[16:], refs)
    assert c.ok and c.max_abs_diff <= 1e-4, c
  # and the check can fail: a perturbed model is caught
  wrong = (refs[0] + 1e-3, refs[1])
  assert not engines.check("onnxruntime", run, "float32", images[16:], wrong).ok
  litert = engines.runner("litert", tflite)
  np.testing.assert_allclose(engines.run_images(litert, images[16:]),
                             engines.run_images(run, images[16:]), atol=1e-4)


def test_an_unknown_engine_is_named_with_the_valid_ones():
  with pytest.raises(ValueError, match=r"engine='tvm'; valid: litert, onnxruntime, openvino"):
    engines.available("tvm")


def test_bench_engines_refuses_bad_arguments_before_exporting(capsys):
  from benchmarks import bench_engines
  for args, message in [(["--engines=litert,tvm"], "engine='tvm'; valid: litert"),
                        (["--resolution=224"], "--resolution='224'; expected H,W"),
                        (["--threads=0"], "--threads='0'; expected thread counts >= 1"),
                        (["--models=shufflenet_1.0x_g5"], "unknown model name 'shufflenet_1.0x_g5'"),
                        (["--num_check=0"], "--num_check=0, --rounds=5; both must be >= 1")]:
    assert bench_engines.main(args) == 2, args
    assert message in capsys.readouterr().err, args
