"""Activation-range equalization before int8 export (shufflenet_jax/equalize.py): the float
function is unchanged, the outlier channels are brought to the target range, and an int8
export of a model with outlier channels agrees with the float model far better after it."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from shufflenet_jax import export, train
from shufflenet_jax.equalize import equalize_ranges
from shufflenet_jax.models import create_model, ops


def _hide_outlier(model, c: int = 5, factor: float = 1000.0) -> None:
  """Unit 1 made to carry an outlier channel without changing its function: channel ``c``
  of conv1's output and of the depthwise conv's output (where the shuffle moves it) times
  ``factor``, the depthwise kernel and conv2's weights of that channel divided by it
  (what a BN channel with running variance near 0 does in a trained model)."""
  unit = model.units[1]
  mid = unit.bn1.scale.shape[0]
  perm = np.arange(mid)
  if unit.shuffle and unit.groups > 1:
    perm = np.asarray(ops.channel_shuffle(jnp.asarray(perm)[None, None, None],
                                             unit.groups)).ravel()
  k = int(np.flatnonzero(perm == c)[0])
  for bn, i in ((unit.bn1, c), (unit.bn2, k)):
    bn.scale[...] = bn.scale[...].at[i].multiply(factor)
    bn.bias[...] = bn.bias[...].at[i].multiply(factor)
  unit.dwconv.kernel[...] = unit.dwconv.kernel[...].at[..., k].divide(factor)
  kernel = unit.conv2.kernel[...]
  cin, cout = kernel.shape[2], kernel.shape[3] // unit.conv2.groups
  g = k // cin
  unit.conv2.kernel[...] = kernel.at[0, 0, k % cin, g * cout:(g + 1) * cout].divide(factor)


def _model_with_outlier(name: str, images: np.ndarray, **kw):
  model = create_model(name, rngs=nnx.Rngs(0), stem="small", num_classes=10, in_channels=1,
                       **export.export_overrides(name, "int8"), **kw)
  export.calibrate_batch_stats(model, images)
  _hide_outlier(model)
  return model


@pytest.mark.parametrize("name,kw", [("shufflenet_0.25x_g3", {}),
                                     ("shufflenet_0.25x_g8", {}),
                                     ("shufflenet_0.25x_g3", {"shuffle": False}),
                                     ("shufflenet_0.25x_g1", {})])
def test_equalization_keeps_the_function_and_flattens_outlier_channels(name, kw):
  images = export.dataset_images(64, (28, 28, 1))
  model = _model_with_outlier(name, images, **kw)
  before = export.jax_logits(model, images)
  equalized = nnx.clone(model)
  report = equalize_ranges(equalized, images, quantile=0.5)  # 0.25x g1 has 9 channels
  after = export.jax_logits(equalized, images)
  assert np.max(np.abs(after - before)) <= 1e-5 * np.max(np.abs(before)) + 1e-5
  assert report[1]["dw_input_before"] > 20 and report[1]["dw_output_before"] > 20, report
  for r in report:
    # conv1 -> depthwise: every channel brought down to the target exactly.
    assert r["dw_input_after"] <= 1 + 1e-5, r
    # depthwise -> conv2: never widened.
    assert r["dw_output_after"] <= r["dw_output_before"] * (1 + 1e-5), r
  # The planted channel's conv2 row is 1000x smaller than it was, so it takes the whole
  # excess: what is left over the target is the other channels' own (< 2x, shared).
  assert report[1]["dw_output_before"] > 100 and report[1]["dw_output_after"] < 2, report[1]
  assert export.jax_logits(model, images) == pytest.approx(before)  # the original is untouched


def test_equalized_int8_export_agrees_with_the_float_model(fmnist_run):
  """The trained 150-step model with a hidden outlier channel (the same float function):
  int8 without equalization loses agreement, with it agrees as the original does."""
  workdir, _ = fmnist_run
  config = train.run_config(workdir)
  calibration = export.train_images(config, 200, (28, 28, 1))
  images = export.dataset_images(1000, (28, 28, 1))
  model, _ = train.restore_model(workdir, **export.export_overrides(config.model, "int8"))
  ref = export.jax_logits(model, images).argmax(-1)
  hidden = nnx.clone(model)
  _hide_outlier(hidden)
  assert (export.jax_logits(hidden, images).argmax(-1) == ref).all()
  agreement = {}
  for label, m, equalize in (("original", model, False), ("hidden", hidden, False),
                             ("hidden, equalized", hidden, True)):
    tflite, report = export.export(m, config.model, (1, 28, 28, 1), "int8",
                                   calibration=calibration, equalize=equalize)
    assert report.ok and report.equalized == equalize, report
    agreement[label] = np.mean(export.run_tflite(tflite, images).argmax(-1) == ref)
  assert agreement["hidden"] <= agreement["original"] - 0.1, agreement
  assert agreement["hidden, equalized"] >= agreement["original"] - 0.01, agreement


def test_equalization_rejects_what_it_cannot_do():
  with pytest.raises(TypeError, match="needs a ShuffleNet, got MobileNetV1"):
    equalize_ranges(create_model("mobilenet_v1_0.25", rngs=nnx.Rngs(0)), np.zeros((1, 32, 32, 3)))
  model = create_model("shufflenet_0.25x_g3", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="quantile=1.5; valid: 0 < quantile <= 1"):
    equalize_ranges(model, np.zeros((1, 32, 32, 3)), quantile=1.5)
