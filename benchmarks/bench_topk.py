"""The train step's top-1 metric as the label's rank (train.topk_correct, gather-free on a
mesh; issue 26) against ``lax.top_k`` (what it replaced), on one device, side by side in
one process: the single-device step must not have become slower.

  python -m benchmarks.bench_topk                      # 0.25x g3, 1x g3, 1x g8 (proxy shape)
  python -m benchmarks.bench_topk --out results/bench_topk.md
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp

from benchmarks.bench_train import SHAPES, JaxCandidate, auto_impl, time_side_by_side
from benchmarks import report
from shufflenet_jax import mdtable, train


def lax_topk_correct(logits, labels, k: int):
  """The metric before issue 26: 1 where the label is among ``lax.top_k``'s k classes."""
  _, top = jax.lax.top_k(logits, k)
  return jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)


def candidates(model: str, batch: int) -> dict:
  """{name: JaxCandidate}: the same model and data, the metric written both ways."""
  impl = auto_impl()
  out = {"rank (now)": JaxCandidate(model, SHAPES["proxy"], batch, "float32", impl)}
  rank = train.topk_correct
  train.topk_correct = lax_topk_correct  # traced into the step at its first call
  try:
    out["lax.top_k (before)"] = JaxCandidate(model, SHAPES["proxy"], batch, "float32", impl)
  finally:
    train.topk_correct = rank
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--models", default="shufflenet_0.25x_g3,shufflenet_1.0x_g3,shufflenet_1.0x_g8")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--rounds", type=int, default=7)
  p.add_argument("--out")
  args = p.parse_args(argv)
  batch = SHAPES["proxy"]["batch"]
  rows = []
  for model in args.models.split(","):
    speeds = time_side_by_side(candidates(model, batch), "train", batch, args.steps,
                               args.rounds)
    now, before = speeds["rank (now)"], speeds["lax.top_k (before)"]
    rows.append([model, f"{now:.1f}", f"{before:.1f}", f"{now / before:.3f}"])
    print(mdtable.row(rows[-1]), flush=True)
  md = ["# The train step's top-1 metric: label rank vs lax.top_k (one device)", "",
        f"Train-step images/s at the proxy shape (batch {batch}, `auto` implementations, "
        f"synthetic data), median of {args.rounds} rounds of {args.steps} steps, both "
        f"candidates in turn in one process. Ratio > 1: the rank-based metric is faster.", "",
        *mdtable.markdown(["model", "rank (now) img/s", "lax.top_k (before) img/s", "ratio"],
                          rows), "",
        report.provenance("benchmarks.bench_topk", argv, " (other work beside it)"), ""]
  report.emit(md, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
