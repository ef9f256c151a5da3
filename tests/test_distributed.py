"""Multi-process training on localhost (CPU backend, python -m shufflenet_jax.launch):
N processes x 1 device equal 1 process x N devices bit for bit, one writer per record,
kill -9 of every process resumes, bad cluster settings are one line and exit 2."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shufflenet_jax import cluster, launch, records
from tests.tiny import tiny_flags

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["main.py", "--config=configs/default.py:quick"]
# A two-run sweep (the standard and the shallow 0.25x g2), 8 steps each with a checkpoint
# and an evaluation at step 4.
SWEEP = ["main.py", "--config=configs/ablation_depth.py",
         *tiny_flags(num_train_steps=8, checkpoint_every_steps=4, log_every_steps=4,
                     eval_every_steps=4, model="shufflenet_0.25x_g2"),
         "--config.sweep.width=(0.25,)", "--config.sweep.groups=(2,)", "--config.seeds=(0,)",
         "--config.wandb.mode=disabled"]
RUNS = ["shufflenet_0.25x_g2-seed0", "shufflenet_0.25x_g2_shallow-seed0"]


def _launch_cmd(workdir, processes=2):
  return [sys.executable, "-m", "shufflenet_jax.launch", "--processes", str(processes), "--",
          *SWEEP, f"--workdir={workdir}"]


def _run(cmd, env=None, timeout=600):
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
  return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The sweep in one process with two devices."""
  workdir = tmp_path_factory.mktemp("one_process_two_devices")
  rc, out = _run([sys.executable, *SWEEP, f"--workdir={workdir}"], {
      "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
  assert rc == 0, out
  return workdir


def _metrics_lines(workdir):
  return [{k: v for k, v in json.loads(l).items() if k not in records.TIMING_KEYS}
          for l in (workdir / "metrics.jsonl").read_text().splitlines()]


def _params(workdir):
  from flax import nnx

  from shufflenet_jax import train
  model, step = train.restore_model(workdir)
  leaves = [np.asarray(x) for x in __import__("jax").tree.leaves(nnx.state(model))]
  return step, leaves


def _listing(workdir):
  """The workdir's files but its lock (shufflenet_jax/workdir_lock.py)."""
  return sorted(p.name for p in workdir.iterdir() if p.name != ".lock")


def _assert_same_run(workdir, reference):
  run, ref = (json.loads((w / "result.json").read_text()) for w in (workdir, reference))
  assert run["metrics"] == ref["metrics"]  # bitwise: the same floats
  assert run["device"]["process_count"] == 2 and run["device"]["device_count"] == 2
  assert _metrics_lines(workdir) == _metrics_lines(reference)
  assert [l["step"] for l in _metrics_lines(workdir)] == [4, 4, 8, 8]  # log+eval, then final
  (step, leaves), (ref_step, ref_leaves) = _params(workdir), _params(reference)
  assert step == ref_step == 8
  for a, b in zip(leaves, ref_leaves, strict=True):
    np.testing.assert_array_equal(a, b)
  # One writer: the three records, no temporary files left by either process.
  assert _listing(workdir) == ["checkpoints", "config.json", "metrics.jsonl", "result.json"]


def test_two_processes_killed_and_relaunched_equal_one_process_with_two_devices(tmp_path,
                                                                               reference):
  """Two processes x 1 device train the sweep of one process x 2 devices bit for bit, also
  when every process is killed after the first run's checkpoint and the launch is
  repeated; process 0 alone writes each record and the table. (One test: a two-process
  launch is the suite's most expensive step; process 1 compiles without the persistent
  cache, whose key includes a process's own devices and which only process 0 writes.)"""
  first = tmp_path / "runs" / RUNS[0]
  p = subprocess.Popen(_launch_cmd(tmp_path), cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True)
  deadline = time.time() + 400
  while not (first / "checkpoints" / "4").exists():  # a finalized step-4 checkpoint
    assert p.poll() is None and time.time() < deadline
    time.sleep(0.05)
  os.killpg(p.pid, signal.SIGKILL)  # the launcher and both processes
  p.wait()
  assert not (first / "result.json").exists()
  rc, out = _run(_launch_cmd(tmp_path))
  assert rc == 0, out
  assert "resumed from the checkpoint at step" in out
  assert sorted(r.name for r in (tmp_path / "runs").iterdir()) == RUNS
  for name in RUNS:
    _assert_same_run(tmp_path / "runs" / name, reference / "runs" / name)
  assert out.count("table written") == 1  # by process 0 only
  rows = (tmp_path / "results" / "ablation_depth.csv").read_text().splitlines()
  assert len(rows) == 3 and "shallow" in rows[2], rows
  assert re.search(rf"^\[0\] I\S+ \S+ \d+ train.py:\d+\] \[2/2\] {RUNS[1]}: step 8/8",
                   out, re.M), out
  # Process 1 logs warnings and errors only (its INFO lines would repeat process 0's).
  assert not re.search(r"^\[1\] I\d{4} ", out, re.M), out


# ------------------------------------------------------------------------- cluster settings

@pytest.mark.parametrize("flags, env, message", [
    (dict(num_processes="2", process_id="0"), {}, "not --coordinator_address"),
    (dict(coordinator_address="localhost:1234", num_processes="2", process_id="2"), {},
     "--process_id=2 must be below --num_processes=2 (valid: 0..1)"),
    (dict(coordinator_address="localhost:1234", num_processes="-1", process_id="0"), {},
     "--num_processes=-1 must be >= 1"),
    (dict(coordinator_address="localhost", num_processes="2", process_id="0"), {},
     "expected host:port"),
    (dict(process_id="x"), dict(JAX_COORDINATOR_ADDRESS="h:1", JAX_NUM_PROCESSES="2"),
     "--process_id='x' is not an integer"),
    ({}, dict(JAX_COORDINATOR_ADDRESS="h:1", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID="5"),
     "JAX_PROCESS_ID=5 must be below JAX_NUM_PROCESSES=2"),
    (dict(coordinator_address="h:1", num_processes="2", process_id="1",
          local_device_ids="0,a"), {}, "--local_device_ids='0,a'"),
])
def test_bad_cluster_settings_name_the_setting(flags, env, message):
  with pytest.raises(cluster.ClusterError, match=re.escape(message)):
    cluster.settings(flags, env)


def test_cluster_settings_from_flags_and_environment():
  assert cluster.settings({}, {}) == {}  # jax detects SLURM / Open MPI / TPU itself
  env = dict(JAX_COORDINATOR_ADDRESS="10.0.0.1:99", JAX_NUM_PROCESSES="4", JAX_PROCESS_ID="3")
  assert cluster.settings({}, env) == dict(coordinator_address="10.0.0.1:99",
                                           num_processes=4, process_id=3)
  assert cluster.settings(dict(process_id="1", local_device_ids="0,1"), env) == dict(
      coordinator_address="10.0.0.1:99", num_processes=4, process_id=1, local_device_ids=[0, 1])


@pytest.mark.parametrize("args, message", [
    (["--distributed"], "no cluster found in the environment"),
    (["--coordinator_address=localhost:9", "--num_processes=2", "--process_id=1",
      "--distributed_timeout=2"], "could not reach the coordinator localhost:9 as process 1 of 2 "
                                  "within 2 s"),
    (["--num_processes=2", "--process_id=2", "--coordinator_address=localhost:9"],
     "--process_id=2 must be below --num_processes=2"),
])
def test_main_reports_a_bad_cluster_in_one_line(tmp_path, args, message):
  env = {k: "" for k in cluster.ENV.values()}
  rc, out = _run([sys.executable, *QUICK, f"--workdir={tmp_path}", *args], env)
  assert rc == 2, out
  errors = [l for l in out.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and message in errors[0], out
  assert "Traceback" not in out


def test_a_coordinator_whose_peers_never_join_gives_up_in_one_line(tmp_path):
  rc, out = _run([sys.executable, *QUICK, f"--workdir={tmp_path}", "--num_processes=2",
                  "--process_id=0", f"--coordinator_address=localhost:{launch.free_port()}",
                  "--distributed_timeout=3"])
  assert rc == 2, out
  assert "the 2 processes did not all join" in out and "Traceback" not in out


# ------------------------------------------------------------------------------ the launcher

# Process 1 fails only after process 0 has printed its line (a marker file says so), so
# the launcher's stop cannot race process 0's first line on a loaded machine.
_CHILD = ("import os, sys, time, pathlib; i = int(os.environ['JAX_PROCESS_ID']); "
          "mark = pathlib.Path(sys.argv[1]); print('hello', i, "
          "os.environ['JAX_NUM_PROCESSES'], os.environ['XLA_FLAGS'], flush=True); "
          "i == 0 and mark.write_text('printed'); "
          "[time.sleep(0.05) for _ in range(1200) if i == 1 and not mark.exists()]; "
          "sys.exit(3) if i == 1 else time.sleep(120)")


def test_launcher_prefixes_lines_and_stops_everyone_when_one_fails(tmp_path):
  t0 = time.time()
  rc, out = _run([sys.executable, "-m", "shufflenet_jax.launch", "--processes", "2",
                  "--devices_per_process", "3", "--", "-c", _CHILD,
                  str(tmp_path / "printed")], timeout=60)
  assert rc == 3, out
  assert time.time() - t0 < 40  # process 0 was stopped, not waited for (120 s)
  line = next(l for l in out.splitlines() if l.startswith("[1] hello 1 2 "))
  assert line.endswith("--xla_force_host_platform_device_count=3"), out  # replaces a given count
  assert "[0] hello 0 2" in out and "process 1 exited with status 3" in out


def test_launcher_refuses_bad_arguments():
  for args, message in [(["--processes", "0", "--", "main.py"], "--processes=0 must be >= 1"),
                        (["--processes", "2", "main.py"], "give the program after --")]:
    rc, out = _run([sys.executable, "-m", "shufflenet_jax.launch", *args], timeout=60)
    assert rc == 2 and message in out, out


# ------------------------------------------------------------------- data parallelism's HLO

_HLO = r"""
import jax
from shufflenet_jax import hlo_check
assert jax.device_count() == 4
for name in %r:
  text, impls = hlo_check.compiled_train_step(name, batch=32)
  print(name, impls, hlo_check.batch_gathers(text, 32), flush=True)
# The control: shiftvjp's weight gradient slices the batch in a loop (gathers it).
text, _ = hlo_check.compiled_train_step("shufflenet_0.25x_g3_shallow", batch=32,
                                        depthwise_impl="shiftvjp")
print("CONTROL", len(hlo_check.batch_gathers(text, 32)))
"""

# One width per group count: the implementations `auto` picks, and so the collectives,
# depend on the group count and the layer types, not on the width or the depth (the
# shallow 2/4/2 variants hold every layer type of the 4/8/4 network in half the compile).
HLO_MODELS = ["shufflenet_0.25x_g1_shallow", "shufflenet_0.25x_g3_shallow",
              "shufflenet_0.25x_g8_shallow",
              "unit_resnet_13", "unit_resnext_13", "unit_vgg_like_13",
              "unit_xception_like_13", "mobilenet_v1_0.25"]


def test_data_parallel_train_steps_gather_no_batch():
  """On 4 devices, the implementations `auto` picks compile to a train step whose only
  collectives over the batch are reductions: no all-gather of a batch-sized tensor."""
  # The partitioner decides the collectives; skipping LLVM's expensive passes (not the
  # HLO pipeline) cuts the 9 compiles by a third.
  env = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=4 "
         "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
  rc, out = _run([sys.executable, "-c", _HLO % (HLO_MODELS,)], env, timeout=1200)
  assert rc == 0, out
  rows = [l for l in out.splitlines() if l.split(" ")[0] in HLO_MODELS]
  assert len(rows) == len(HLO_MODELS), out
  for row in rows:
    assert row.endswith(" []"), row  # the list of batch-sized all-gathers
  assert int(re.search(r"^CONTROL (\d+)", out, re.M).group(1)) > 0, out


def test_the_hlo_check_finds_a_gather():
  """The check above can fail: XLA's top_k over the sharded logits gathers them."""
  text = ('%all-gather.1 = f32[32,10]{1,0} all-gather(f32[8,10]{1,0} %x), channel_id=1, '
          'replica_groups=[1,4]<=[4], dimensions={0}\n'
          '%ag = f32[64]{0} all-gather-start(f32[16]{0} %g)')
  from shufflenet_jax import hlo_check
  assert hlo_check.all_gathers(text) == [("f32", (32, 10)), ("f32", (64,))]
  assert hlo_check.batch_gathers(text, 32) == [("f32", (32, 10))]
