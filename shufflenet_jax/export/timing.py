"""Milliseconds per image of exported models on this CPU, several models side by side."""

from __future__ import annotations

import functools
import statistics
import time

import numpy as np

from shufflenet_jax import timing as harness
from shufflenet_jax.export.verify import interpreter


def latency(tflite: bytes, **kw) -> dict:
  """Milliseconds per invoke of one model on this CPU (see :func:`latency_side_by_side`)."""
  return latency_side_by_side({"model": tflite}, **kw)["model"]


def latency_side_by_side(models: dict[str, bytes], *, num_threads: int = 1,
                         xnnpack: bool = True, warmup: int = 3, rounds: int = 5,
                         min_runs: int = 10, max_runs: int = 100,
                         min_seconds: float = 2.0) -> dict[str, dict]:
  """Milliseconds per invoke of several models, measured side by side: after ``warmup``
  runs each, ``rounds`` rounds time every model in turn (per model and round at least
  ``min_runs / rounds`` runs and ``min_seconds / rounds`` seconds, at most
  ``max_runs / rounds`` runs; shufflenet_jax/timing.py, each round starting one model
  later), so a slow spell of a shared machine hits all models alike.
  Per model: the median over all timed runs, the quartiles and the extremes."""
  rng = np.random.default_rng(0)
  its = {}
  for name, tflite in models.items():
    it = interpreter(tflite, num_threads=num_threads, xnnpack=xnnpack)
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], rng.standard_normal(inp["shape"]).astype(np.float32))
    for _ in range(warmup):
      it.invoke()
    its[name] = it
  times = {name: [] for name in models}
  lo, hi = max(1, -(-min_runs // rounds)), max(1, max_runs // rounds)

  def invokes(name):  # one round of one model: each invoke timed on its own
    it, start, n = its[name], time.perf_counter(), 0
    while n < hi and (n < lo or time.perf_counter() - start < min_seconds / rounds):
      t = time.perf_counter()
      it.invoke()
      times[name].append((time.perf_counter() - t) * 1e3)
      n += 1

  harness.side_by_side({name: functools.partial(invokes, name) for name in its}, rounds)
  out = {}
  for name, ts in times.items():
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    out[name] = dict(median_ms=statistics.median(ts), q1_ms=q[0], q3_ms=q[2],
                     min_ms=min(ts), max_ms=max(ts), runs=len(ts), rounds=rounds,
                     num_threads=num_threads, xnnpack=xnnpack)
  return out
