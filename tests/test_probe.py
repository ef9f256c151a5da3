"""benchmarks/probe_classifier.py: the figures docs/training.md quotes come from it."""

import numpy as np
from flax import nnx

from benchmarks import probe_classifier
from shufflenet_jax import input_pipeline, train
from shufflenet_jax import plan as run_plan
from tests.tiny import tiny_config


def test_probe_tracks_the_classifier_and_the_convs_separately():
  frozen = probe_classifier.probe_steps(tiny_config(classifier_lr_scale=0.0), steps=3)
  moving = probe_classifier.probe_steps(tiny_config(classifier_lr_scale=1.0), steps=3)
  assert [r["step"] for r in frozen] == [0, 1, 2, 3]
  # A zero classifier lr leaves the FC kernel exactly where it started; the body trains.
  assert len({r["fc_norm"] for r in frozen}) == 1
  assert frozen[-1]["conv_norm_change"] > 0
  assert moving[-1]["fc_norm"] != moving[0]["fc_norm"]
  assert all(np.isfinite(r["loss"]) for r in moving[1:])
  # The same seed and data: the first step's loss does not depend on the classifier's lr.
  assert frozen[1]["loss"] == moving[1]["loss"]


def test_pooled_features_are_what_the_classifier_sees():
  config = tiny_config()
  model = train.build_model(run_plan.make(config), nnx.Rngs(0))
  model.train()
  images = next(input_pipeline.train_dataset(config).as_numpy_iterator())["image"]
  f = probe_classifier.pooled_features(model, images)
  assert f.shape == (images.shape[0], model.fc.kernel[...].shape[0])
  model.eval()  # no BN statistics update between the two passes
  f = probe_classifier.pooled_features(model, images)
  logits = nnx.jit(lambda m, x: m(x))(model, images)
  np.testing.assert_allclose(f @ model.fc.kernel[...] + model.fc.bias[...], logits,
                             rtol=1e-5, atol=1e-5)
  assert probe_classifier.pooled_feature_sq_norm(config, "shufflenet_tiny") > 0
