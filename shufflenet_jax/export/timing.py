"""Milliseconds per image of exported models on this CPU, several models side by side."""

from __future__ import annotations

import functools
import statistics
import time
from typing import Callable

import numpy as np

from shufflenet_jax import timing as harness
from shufflenet_jax.export.verify import interpreter


def latency(tflite: bytes, **kw) -> dict:
  """Milliseconds per invoke of one model on this CPU (see :func:`latency_side_by_side`)."""
  return latency_side_by_side({"model": tflite}, **kw)["model"]


def latency_side_by_side(models: dict[str, bytes], *, num_threads: int = 1,
                         xnnpack: bool = True, warmup: int = 3, **kw) -> dict[str, dict]:
  """Milliseconds per invoke of several .tflite models on this CPU, measured side by side
  (:func:`invokes_side_by_side`, ``kw`` its timing settings)."""
  rng = np.random.default_rng(0)
  invokes = {}
  for name, tflite in models.items():
    it = interpreter(tflite, num_threads=num_threads, xnnpack=xnnpack)
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], rng.standard_normal(inp["shape"]).astype(np.float32))
    invokes[name] = it.invoke
  out = invokes_side_by_side(invokes, warmup=warmup, **kw)
  for row in out.values():
    row.update(num_threads=num_threads, xnnpack=xnnpack)
  return out


def invokes_side_by_side(invokes: dict[str, Callable[[], object]], *, warmup: int = 3,
                         rounds: int = 5, min_runs: int = 10, max_runs: int = 100,
                         min_seconds: float = 2.0) -> dict[str, dict]:
  """Milliseconds per call of several inference callables (one image each, any engine),
  measured side by side: after ``warmup`` calls each, ``rounds`` rounds time every one in
  turn (per callable and round at least ``min_runs / rounds`` calls and
  ``min_seconds / rounds`` seconds, at most ``max_runs / rounds`` calls;
  shufflenet_jax/timing.py, each round starting one callable later), so a slow spell of a
  shared machine hits all alike. Per callable: the median over all timed calls, the
  quartiles and the extremes."""
  for fn in invokes.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in invokes}
  lo, hi = max(1, -(-min_runs // rounds)), max(1, max_runs // rounds)

  def one_round(name):  # one round of one callable: each call timed on its own
    fn, start, n = invokes[name], time.perf_counter(), 0
    while n < hi and (n < lo or time.perf_counter() - start < min_seconds / rounds):
      t = time.perf_counter()
      fn()
      times[name].append((time.perf_counter() - t) * 1e3)
      n += 1

  harness.side_by_side({name: functools.partial(one_round, name) for name in invokes}, rounds)
  out = {}
  for name, ts in times.items():
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    out[name] = dict(median_ms=statistics.median(ts), q1_ms=q[0], q3_ms=q[2],
                     min_ms=min(ts), max_ms=max(ts), runs=len(ts), rounds=rounds)
  return out
