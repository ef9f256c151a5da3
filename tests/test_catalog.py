"""The model catalog (shufflenet_jax/catalog.py) is the registry's, readable without JAX."""

import subprocess
import sys
from pathlib import Path

import pytest

from shufflenet_jax import catalog
from shufflenet_jax.models import ops, registry, shufflenet

ROOT = Path(__file__).resolve().parents[1]


def test_the_catalog_file_equals_the_registry():
  assert catalog.build() == catalog.models(), (
      "shufflenet_jax/catalog.json is out of date: python -m shufflenet_jax.catalog --write")
  assert sorted(catalog.models()) == registry.model_names()


def test_the_grid_and_implementations_are_the_models_own():
  assert ops.POINTWISE_IMPLS is catalog.POINTWISE_IMPLS
  assert shufflenet.WIDTHS is catalog.WIDTHS and shufflenet.GROUPS is catalog.GROUPS


def test_an_unknown_name_is_the_same_error_in_both():
  with pytest.raises(ValueError) as from_catalog:
    catalog.preset("shufflenet_1.0x_g5")
  with pytest.raises(ValueError) as from_registry:
    registry.model_spec("shufflenet_1.0x_g5")
  assert str(from_catalog.value) == str(from_registry.value)
  assert "did you mean: shufflenet_1.0x_g8" in str(from_catalog.value)


def test_validation_sweeps_and_configs_import_no_jax_or_tensorflow():
  """What main.py runs before its first error can be reported: no heavy import."""
  code = ("import sys\n"
          "from shufflenet_jax import validate, cluster\n"
          "from experiments import sweep\n"
          "import configs.ablation_shuffle, configs.compare_units, configs.compare_mobilenet\n"
          "print(sorted(m for m in ('jax', 'flax', 'tensorflow') if m in sys.modules))\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "[]", out.stdout


def test_a_model_registered_at_run_time_is_found(monkeypatch):
  """A model a script registers (not in catalog.json) passes validation and sweeps."""
  from configs import default
  from shufflenet_jax import validate
  monkeypatch.setitem(registry._MODELS, "my_shufflenet", (shufflenet.ShuffleNet,
                                                        dict(groups=3, width=0.5)))
  assert catalog.preset("my_shufflenet") == dict(groups=3, width=0.5)
  c = default.get_config("quick")
  c.model = "my_shufflenet"
  validate.check_config(c)
