"""Joining a multi-process run (``main.py --distributed``).

The cluster comes from, in this order of precedence:
  1. flags named after ``jax.distributed.initialize``'s arguments: ``--coordinator_address``,
     ``--num_processes``, ``--process_id``, ``--local_device_ids``;
  2. the matching environment variables ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
     ``JAX_PROCESS_ID``, ``JAX_LOCAL_DEVICE_IDS`` (what ``python -m shufflenet_jax.launch``
     sets);
  3. when neither names any of them, jax's own cluster detection (SLURM, Open MPI, TPU).

Every setting is checked before jax starts; a bad or missing one is a ``ClusterError``
whose message names it (main.py prints that one line and exits 2).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from collections.abc import Mapping

ENV = {"coordinator_address": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES",
       "process_id": "JAX_PROCESS_ID", "local_device_ids": "JAX_LOCAL_DEVICE_IDS"}
_REQUIRED = ("coordinator_address", "num_processes", "process_id")


class ClusterError(ValueError):
  """A cluster setting that is missing, malformed or inconsistent, or a failed join."""


def settings(flag_values: Mapping[str, str | int | None],
             environ: Mapping[str, str] = os.environ) -> dict:
  """``jax.distributed.initialize`` keyword arguments from flags (``flag_values``: the four
  names above, ``None`` where not given) and environment variables; ``{}`` when neither
  gives any (jax then detects the cluster itself)."""
  raw, source = {}, {}
  for name, var in ENV.items():
    if flag_values.get(name) not in (None, ""):
      raw[name], source[name] = str(flag_values[name]), f"--{name}"
    elif environ.get(var, "") != "":
      raw[name], source[name] = environ[var], var
  if not raw:
    return {}
  missing = [n for n in _REQUIRED if n not in raw]
  if missing:
    given = ", ".join(f"{source[n]}={raw[n]}" for n in raw)
    raise ClusterError(
        f"{given} given, but not {' or '.join(f'--{n} (or {ENV[n]})' for n in missing)}: a "
        f"cluster without SLURM, Open MPI or TPU detection needs --coordinator_address, "
        f"--num_processes and --process_id")
  out: dict = {}

  def integer(name: str, low: int) -> int:
    try:
      value = int(raw[name])
    except ValueError:
      raise ClusterError(f"{source[name]}={raw[name]!r} is not an integer") from None
    if value < low:
      raise ClusterError(f"{source[name]}={value} must be >= {low}")
    return value

  out["num_processes"] = integer("num_processes", 1)
  out["process_id"] = integer("process_id", 0)
  if out["process_id"] >= out["num_processes"]:
    raise ClusterError(f"{source['process_id']}={out['process_id']} must be below "
                       f"{source['num_processes']}={out['num_processes']} (valid: 0.."
                       f"{out['num_processes'] - 1})")
  address = raw["coordinator_address"]
  m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d+)", address)
  if not m or not 1 <= int(m.group(2)) <= 65535:
    raise ClusterError(f"{source['coordinator_address']}={address!r}: expected host:port "
                       f"with a port in 1..65535, e.g. 10.0.0.1:1234")
  out["coordinator_address"] = address
  if "local_device_ids" in raw:
    try:
      ids = [int(i) for i in raw["local_device_ids"].split(",")]
    except ValueError:
      ids = [-1]
    if any(i < 0 for i in ids):
      raise ClusterError(f"{source['local_device_ids']}={raw['local_device_ids']!r}: expected "
                         f"comma-separated device numbers >= 0, e.g. 0,1")
    out["local_device_ids"] = ids
  return out


def initialize(kwargs: dict, timeout_s: int) -> None:
  """``jax.distributed.initialize(**kwargs)``, waiting at most ``timeout_s`` seconds for the
  other processes; any failure is one ``ClusterError`` line."""
  import jax
  if timeout_s < 1:
    raise ClusterError(f"--distributed_timeout={timeout_s} must be >= 1 (seconds)")
  where = (f"the coordinator {kwargs['coordinator_address']} as process "
           f"{kwargs['process_id']} of {kwargs['num_processes']}" if kwargs
           else "a cluster detected from the environment")
  if kwargs:  # jax's client aborts the process on these; say it in one line instead
    host, port = _host_port(kwargs["coordinator_address"])
    if kwargs["process_id"] == 0:
      _check_port_free(port, kwargs["coordinator_address"])
    else:
      _wait_for_coordinator(host, port, timeout_s, where)
  # jax's own deadline aborts the process with a C++ stack trace; ours comes first and
  # exits with one line (a peer that never joins, a coordinator that never answers).
  count = kwargs.get("num_processes", "expected")
  watchdog = threading.Timer(timeout_s, _give_up, (
      f"--distributed: the {count} processes did not all join {where} within {timeout_s} s "
      f"(--distributed_timeout); is every process started with the same settings?",))
  watchdog.daemon = True
  watchdog.start()
  try:
    jax.distributed.initialize(**kwargs, initialization_timeout=timeout_s + 30)
  except ValueError as e:
    if not kwargs:
      raise ClusterError(
          "--distributed: no cluster found in the environment (SLURM, Open MPI, TPU); give "
          "--coordinator_address, --num_processes and --process_id (or JAX_COORDINATOR_ADDRESS,"
          " JAX_NUM_PROCESSES, JAX_PROCESS_ID), or start with python -m shufflenet_jax.launch"
      ) from None
    raise ClusterError(f"--distributed: {_first_line(e)}") from None
  except Exception as e:  # jax's runtime errors: unreachable coordinator, deadline, ...
    raise ClusterError(f"--distributed: could not join {where} within {timeout_s} s "
                       f"(--distributed_timeout): {_first_line(e)}") from None
  finally:
    watchdog.cancel()


def _give_up(message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  os._exit(2)


def _host_port(address: str) -> tuple[str, int]:
  host, _, port = address.rpartition(":")
  return host.strip("[]"), int(port)


def _check_port_free(port: int, address: str) -> None:
  """Process 0 serves the coordinator on ``port`` of every interface."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC: TIME_WAIT is free
    try:
      s.bind(("", port))
    except OSError as e:
      raise ClusterError(f"--coordinator_address={address}: process 0 cannot serve on port "
                         f"{port} ({e.strerror}); choose a free port") from None


def _wait_for_coordinator(host: str, port: int, timeout_s: int, where: str) -> None:
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host, port), timeout=max(0.1, min(2.0, timeout_s))):
        return
    except OSError as e:
      if time.monotonic() >= deadline:
        raise ClusterError(f"--distributed: could not reach {where} within {timeout_s} s "
                           f"(--distributed_timeout): {e.strerror or e}") from None
      time.sleep(0.2)


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__
