"""The paper's baselines in the same registry: complexity against their own papers."""

import jax.numpy as jnp
import pytest
from flax import nnx

from shufflenet_jax import complexity
from shufflenet_jax.models import create_model

# MobileNet v1 paper, Table 6 / 7: MFLOPs (multiply-adds) and millions of parameters.
MOBILENET = {1.0: (569, 4.2), 0.75: (325, 2.6), 0.5: (149, 1.3), 0.25: (41, 0.5)}


@pytest.mark.parametrize("alpha", sorted(MOBILENET))
def test_mobilenet_v1_complexity(alpha):
  rec = complexity.model_complexity(f"mobilenet_v1_{alpha}")
  mflops, params_m = MOBILENET[alpha]
  assert abs(rec["mflops"] / mflops - 1) < 0.03
  assert round(rec["params"] / 1e6, 1) == params_m


def test_mobilenet_small_stem_and_bad_alpha():
  model = create_model("mobilenet_v1_0.25", stem="small", num_classes=10, in_channels=1)
  model.eval()
  assert nnx.jit(lambda m, x: m(x))(model, jnp.zeros((2, 28, 28, 1))).shape == (2, 10)
  with pytest.raises(ValueError, match=r"alpha=0.6.*1.0, 0.75, 0.5, 0.25"):
    create_model("mobilenet_v1_1.0", alpha=0.6)
