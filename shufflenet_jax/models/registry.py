"""One registry: a model name (one per paper row) + keyword overrides -> a Flax NNX model.

    model = create_model("shufflenet_1.0x_g3", num_classes=10, stem="small", rngs=rngs)

ShuffleNet names follow ``shufflenet_{width}x_g{groups}[_shallow][_se][_noshuffle]``,
e.g. ``shufflenet_0.5x_g3_shallow``, ``shufflenet_2.0x_g3_se``,
``shufflenet_1.0x_g8_noshuffle``. Other model families (the paper's baselines) add
themselves with :func:`register`; nothing here changes when they do.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from shufflenet_jax import catalog
from shufflenet_jax.catalog import shufflenet_name
from shufflenet_jax.models import shufflenet

# name -> (constructor, preset keyword arguments)
_MODELS: dict[str, tuple[Callable[..., nnx.Module], dict[str, Any]]] = {}


def register(name: str, constructor: Callable[..., nnx.Module], **preset: Any) -> None:
  """Adds ``name``: ``create_model(name, **kw)`` calls ``constructor(**preset, **kw)``."""
  if name in _MODELS:
    raise ValueError(f"model name {name!r} is already registered")
  _MODELS[name] = (constructor, preset)


def model_names() -> list[str]:
  return sorted(_MODELS)


def model_spec(name: str) -> tuple[Callable[..., nnx.Module], dict[str, Any]]:
  """The constructor and preset keyword arguments registered under ``name``."""
  if name not in _MODELS:
    raise catalog.unknown_model(name, _MODELS)
  return _MODELS[name]


def model_arguments(name: str) -> set[str] | None:
  """The keyword arguments the model ``name`` accepts (None: any, it takes ``**kwargs``)."""
  constructor, _ = model_spec(name)
  params = inspect.signature(
      constructor.__init__ if inspect.isclass(constructor) else constructor).parameters
  if any(p.kind is p.VAR_KEYWORD for p in params.values()):
    return None
  return set(params) - {"self", "rngs"}


class KeyStream:
  """The parameter keys ``nnx.Rngs(seed)`` gives a model, counted in Python.

  The i-th ``params()`` draw is ``fold_in(key(seed), i)``, as from nnx.Rngs's default
  stream, so a model built from ``KeyStream(seed)`` has the same parameters as one built
  from ``nnx.Rngs(seed)`` (tests/test_shufflenet.py). nnx.Rngs counts in a Variable, and
  under a trace (``nnx.eval_shape``, jit) each count update asks the tracer for its
  sharding, which jax answers by walking the whole jaxpr traced so far: building
  ShuffleNet 1x g4 abstractly took 1.55 s that way, 0.35 s from a KeyStream. The models
  only draw ``params()``; they keep no RNG state.
  """

  def __init__(self, seed: int = 0):
    self._key, self._count = jax.random.key(seed), 0

  def params(self) -> jax.Array:
    key = jax.random.fold_in(self._key, self._count)
    self._count += 1
    return key

  __call__ = params


def create_model(name: str, *, rngs: nnx.Rngs | KeyStream | None = None,
                 **overrides: Any) -> nnx.Module:
  """Builds the registered model ``name``; ``overrides`` replace its preset arguments.
  ``rngs`` (default ``KeyStream(0)``) draws the parameter keys."""
  constructor, preset = model_spec(name)
  accepted = model_arguments(name)
  if accepted is not None:
    unknown = sorted(set(overrides) - accepted)
    if unknown:
      raise ValueError(f"{name}: unknown argument(s) {', '.join(unknown)}; valid: "
                       f"{', '.join(sorted(accepted))}")
  return constructor(**{**preset, **overrides}, rngs=rngs if rngs is not None else KeyStream(0))


def _register_shufflenets() -> None:
  for width in shufflenet.WIDTHS:
    for groups in shufflenet.GROUPS:
      for depth in shufflenet.DEPTHS:
        for se in (False, True):
          for shuffle in (True, False):
            register(shufflenet_name(groups, width, depth=depth, se=se, shuffle=shuffle),
                     shufflenet.ShuffleNet, groups=groups, width=width, depth=depth, se=se,
                     shuffle=shuffle)
  # A tiny preset for tests: 0.25x g2 with the small stem on 1-channel 28x28 inputs.
  register("shufflenet_tiny", shufflenet.ShuffleNet, groups=2, width=0.25, stem="small",
           num_classes=10, in_channels=1)


_register_shufflenets()
