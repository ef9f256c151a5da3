"""Start a multi-process run on this machine: N processes on localhost, CPU backend.

  python -m shufflenet_jax.launch --processes 2 -- main.py --config=configs/default.py:quick \\
      --workdir=runs/two_processes

For trying the multi-host path (``main.py --distributed``) on one machine, and for the tests.
Each process gets ``--distributed`` and the cluster through ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (a free localhost port), and
``--devices_per_process`` host-platform CPU devices. Every output line is prefixed with
its process index; SIGINT/SIGTERM are passed on to every process; as soon as one process
fails the others are stopped and the launcher exits with the failed process's status.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

_GRACE_S = 10.0  # after a failure or a signal: seconds before the remaining processes get SIGKILL


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  parser = argparse.ArgumentParser(
      prog="python -m shufflenet_jax.launch",
      description="Start N processes of a JAX program on localhost (CPU backend).",
      usage="%(prog)s --processes N [--devices_per_process K] [--port P] -- main.py ARGS...")
  parser.add_argument("--processes", type=int, required=True, help="number of processes (>= 1)")
  parser.add_argument("--devices_per_process", type=int, default=1,
                      help="host-platform CPU devices in each process (default 1)")
  parser.add_argument("--port", type=int, default=0, help="coordinator port (default: a free one)")
  if "--" not in argv:
    parser.error("give the program after --, e.g. -- main.py --config=configs/default.py:quick "
                 "--workdir=runs/x")
  split = argv.index("--")
  args, program = parser.parse_args(argv[:split]), argv[split + 1:]
  if args.processes < 1:
    parser.error(f"--processes={args.processes} must be >= 1")
  if args.devices_per_process < 1:
    parser.error(f"--devices_per_process={args.devices_per_process} must be >= 1")
  if not 0 <= args.port <= 65535:
    parser.error(f"--port={args.port} must be in 0..65535 (0: a free one)")
  if program and os.path.basename(program[0]).startswith("python"):
    program = program[1:]  # "-- python main.py ...": this interpreter runs it
  if not program:
    parser.error("no program after --")
  return args, program


def _environment(index: int, count: int, port: int, devices: int) -> dict:
  env = dict(os.environ)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env.update(JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
             JAX_NUM_PROCESSES=str(count), JAX_PROCESS_ID=str(index),
             XLA_FLAGS=" ".join(flags + [f"--xla_force_host_platform_device_count={devices}"]),
             PYTHONUNBUFFERED="1")
  return env


def _relay(index: int, stream, lock: threading.Lock) -> None:
  for line in stream:
    with lock:
      sys.stdout.write(f"[{index}] {line}")
      sys.stdout.flush()


def launch(processes: int, program: list[str], devices_per_process: int = 1,
           port: int = 0) -> int:
  """Runs ``python program...`` in ``processes`` processes; returns the exit status (0 when
  every process succeeded, else the first failure's; 128+n for signal n)."""
  port = port or free_port()
  cmd = [sys.executable, *program, "--distributed"]
  lock = threading.Lock()
  children, relays = [], []
  for i in range(processes):
    p = subprocess.Popen(cmd, env=_environment(i, processes, port, devices_per_process),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace")
    children.append(p)
    relays.append(threading.Thread(target=_relay, args=(i, p.stdout, lock), daemon=True))
    relays[-1].start()
  print(f"[launch] {processes} processes on localhost:{port}, {devices_per_process} CPU "
        f"device(s) each: pids {' '.join(str(p.pid) for p in children)}", flush=True)

  received: list[int] = []

  def forward(signum, _frame):
    received.append(signum)
    for p in children:
      if p.poll() is None:
        p.send_signal(signum)

  previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
  status = 0
  try:
    while [p.poll() for p in children].count(None):  # polls every one
      failed = [p for p in children if p.returncode not in (None, 0)]
      if failed or received:
        if failed and not status:
          status = _status(failed[0].returncode)
          print(f"[launch] process {children.index(failed[0])} exited with status "
                f"{failed[0].returncode}; stopping the others", flush=True)
        _stop(children)
        break
      time.sleep(0.1)
    for p in children:
      p.wait()
    if not status:
      failed = [p for p in children if p.returncode != 0]
      status = _status(failed[0].returncode) if failed else 0
    if received and not status:
      status = 128 + received[0]
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    for t in relays:
      t.join(timeout=5)
  return status


def _status(returncode: int) -> int:
  return 128 - returncode if returncode < 0 else returncode


def _stop(children) -> None:
  for p in children:
    if p.poll() is None:
      p.terminate()
  deadline = time.monotonic() + _GRACE_S
  for p in children:
    try:
      p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      p.kill()


def main(argv: list[str] | None = None) -> int:
  args, program = _parse(sys.argv[1:] if argv is None else argv)
  return launch(args.processes, program, args.devices_per_process, args.port)


if __name__ == "__main__":
  sys.exit(main())
