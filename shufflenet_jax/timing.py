"""One timing harness for the benchmarks and the export's latency measurements: the
candidates are timed side by side, in turn, round after round, so a slow spell of a
shared machine hits them all alike (never one after the other in separate runs)."""

from __future__ import annotations

import time
from typing import Callable


def side_by_side(candidates: dict[str, Callable[[], object]], rounds: int, warmup: int = 0,
                 rotate: bool = True) -> dict[str, list[float]]:
  """{name: wall seconds of each timed round}. After ``warmup`` untimed rounds, every round
  calls each candidate once, in turn; with ``rotate`` each round starts one candidate
  later than the one before, so no candidate always follows the same one (e.g. PyTorch's
  OpenMP threads spin for a while after its step). A callable returns when its work is
  done: block on JAX results inside it."""
  names = list(candidates)
  per = {name: [] for name in names}
  for r in range(-warmup, rounds):
    start = r % len(names) if rotate else 0
    for name in names[start:] + names[:start]:
      t = time.perf_counter()
      candidates[name]()
      if r >= 0:
        per[name].append(time.perf_counter() - t)
  return per


def add_arguments(parser, warmup: int = 2, each: str = "candidate") -> None:
  """--steps, --rounds, --warmup of a benchmark that times with :func:`side_by_side`."""
  parser.add_argument("--steps", type=int, default=3, help=f"steps per {each} per round")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=warmup, help="untimed rounds before them")


def check_arguments(args) -> None:
  """ValueError naming --steps / --rounds below 1 or --warmup below 0."""
  if args.steps < 1 or args.rounds < 1 or args.warmup < 0:
    raise ValueError(f"--steps={args.steps} and --rounds={args.rounds} must be >= 1, "
                     f"--warmup={args.warmup} >= 0")
