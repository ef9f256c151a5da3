"""benchmarks/bench_train.py's memory bound (--bound): the bytes it charges a train step
cover at least reading and writing the whole training state, and the copy bandwidth it
divides by is a real measurement. Speeds come from the benchmark, not a test."""

import jax
import numpy as np

from benchmarks import bench_train


def test_the_train_step_bytes_cover_reading_and_writing_its_state():
  shape = bench_train.SHAPES["proxy"]
  cand = bench_train.JaxCandidate("shufflenet_0.25x_g3", shape, 16, "float32",
                                  bench_train.auto_impl())
  state_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(cand.state))
  batch_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(cand.batch))
  nbytes = bench_train.step_bytes(cand)
  # the state (parameters, momentum, BN statistics) in and out, the batch in, and the
  # activations: more than the first two, and within reason of them for a 16-image batch
  assert 2 * state_bytes + batch_bytes < nbytes < 1000 * (2 * state_bytes + batch_bytes)


def test_copy_bandwidth_is_measured():
  bw = bench_train.copy_bandwidth(rounds=2)
  assert 1e8 < bw < 1e13  # bytes/s: any real memory system lies far inside this
