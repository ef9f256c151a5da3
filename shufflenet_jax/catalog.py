"""What the model registry holds, readable without JAX: every model name with its preset
arguments (``catalog.json``, generated from the registry), the ShuffleNet naming scheme and
the layer implementation choices.

Validation (shufflenet_jax/validate.py), sweep expansion and the configs read this, so a bad
command line is refused before JAX, Flax or TensorFlow is imported (about a second rather
than several). The registry (shufflenet_jax/models/registry.py) stays the one source: after
registering a model, regenerate the file (tests/test_catalog.py fails until then):

  python -m shufflenet_jax.catalog --write
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import sys
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("catalog.json")

# The layer implementations a model can be built with (shufflenet_jax/models/ops.py).
POINTWISE_IMPLS = ("lax", "einsum", "matmul", "blockdiag", "groupmajor")
DEPTHWISE_IMPLS = ("lax", "shift", "shiftvjp")
POOL_IMPLS = ("window", "depthwise", "shift")
# The channel shuffle's permutation (models/ops.py channel_shuffle): the paper's, or the
# official release's (its inverse; the one its ImageNet weights were trained with).
SHUFFLE_ORDERS = ("paper", "release")
# The channel order of a stride-2 unit's output: the pooled shortcut's channels first (the
# paper's Fig. 2c and the official release), or the branch's (osmr/imgclsmob's weights).
CONCAT_ORDERS = ("shortcut_first", "branch_first")

# The ShuffleNet grid of the paper (shufflenet_jax/models/shufflenet.py).
GROUPS = (1, 2, 3, 4, 8)
WIDTHS = (0.25, 0.5, 1.0, 1.5, 2.0)
DEPTHS = ("standard", "shallow")


def shufflenet_name(groups: int, width: float, *, depth: str = "standard", se: bool = False,
                    shuffle: bool = True) -> str:
  """The registry name of a ShuffleNet configuration (the one place the scheme lives)."""
  name = f"shufflenet_{float(width)}x_g{groups}"
  if depth == "shallow":
    name += "_shallow"
  if se:
    name += "_se"
  if not shuffle:
    name += "_noshuffle"
  return name


def unknown_model(name: str, names) -> ValueError:
  """The error for a name that is not registered, with the closest names."""
  close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.6)
  hint = f"; did you mean: {', '.join(close)}" if close else ""
  return ValueError(
      f"unknown model name {name!r}{hint}. ShuffleNet names are "
      f"shufflenet_{{width}}x_g{{groups}}[_shallow][_se][_noshuffle] with width in "
      f"{', '.join(map(str, WIDTHS))} and groups in {', '.join(map(str, GROUPS))}; see "
      f"shufflenet_jax.models.model_names() for all {len(names)} names")


@functools.cache
def models() -> dict[str, dict[str, Any]]:
  """name -> the preset keyword arguments it is registered with."""
  return json.loads(PATH.read_text())


def preset(name: str) -> dict[str, Any]:
  """The preset arguments of the registered model ``name`` (ValueError: not registered).
  A model registered at run time (``registry.register`` from a script or notebook) is
  found in the live registry when that is loaded already."""
  if name in models():
    return models()[name]
  live = sys.modules.get("shufflenet_jax.models.registry")
  if live is not None and name in live.model_names():
    return live.model_spec(name)[1]
  raise unknown_model(name, models())


def build() -> dict[str, dict[str, Any]]:
  """The catalog as the registry holds it now (imports the models: JAX, Flax)."""
  from shufflenet_jax.models import registry
  return {name: registry.model_spec(name)[1] for name in registry.model_names()}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description="Writes or checks catalog.json.")
  parser.add_argument("--write", action="store_true", help=f"regenerate {PATH.name}")
  args = parser.parse_args(argv)
  now = build()
  if args.write:
    PATH.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH} ({len(now)} models)")
    return 0
  if now != models():
    print(f"{PATH} is out of date: python -m shufflenet_jax.catalog --write", file=sys.stderr)
    return 1
  print(f"{PATH}: {len(now)} models, equal to the registry")
  return 0


if __name__ == "__main__":
  sys.exit(main())
