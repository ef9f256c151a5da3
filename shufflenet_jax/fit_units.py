"""Fits the stage-4 width of each Table 4 unit network to the paper's complexity levels
(shufflenet_jax/models/units.py ``FITTED_WIDTHS``): a tool above the models, counting
them with shufflenet_jax/complexity.py.

  python -m shufflenet_jax.fit_units        # refits every (kind, level) and prints them
"""

from __future__ import annotations

from flax import nnx

from shufflenet_jax import complexity
from shufflenet_jax.models.registry import KeyStream
from shufflenet_jax.models.units import KINDS, LEVELS, QUANTUM, UnitNet, stage_widths


def mflops(kind: str, width: int) -> float:
  """The 224x224 MFLOPs of the ``kind`` unit network with stage-4 width ``width``."""
  model = nnx.eval_shape(lambda: UnitNet(kind=kind, width=width, rngs=KeyStream(0)))
  return complexity.count(model, (1, 224, 224, 3))[0] / 1e6


def fit_width(kind: str, level: float) -> int:
  """The valid stage-4 width whose 224x224 MFLOPs are closest to ``level``: bisection on
  the quantum grid (complexity grows with the width), then a scan of the neighbourhood,
  since rounding the bottleneck (resnext) makes the growth uneven."""
  q = QUANTUM[kind]
  lo, hi = 1, 8
  while mflops(kind, hi * q) < level:
    lo, hi = hi, hi * 2
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (mid, hi) if mflops(kind, mid * q) < level else (lo, mid)
  candidates = [k * q for k in range(max(1, lo - 6), hi + 7)]
  return min(candidates, key=lambda w: abs(mflops(kind, w) - level))


def main() -> None:
  for kind in KINDS:
    for level in LEVELS:
      w = fit_width(kind, level)
      print(f"({kind!r}, {level}): {w},  # {mflops(kind, w):.1f} MFLOPs, stages "
            f"{stage_widths(kind, w)}")


if __name__ == "__main__":
  main()
