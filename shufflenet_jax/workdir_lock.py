"""One process per workdir: an exclusive ``fcntl`` lock on ``<workdir>/.lock`` for as long
as a run (or a sweep worker) works there. A second process exits at once with one line
naming the holder's PID; the kernel drops the lock when its holder dies, so a killed run
never leaves a stale lock. The file stays (empty of meaning once unlocked)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class WorkdirLockedError(ValueError):
  """Another live process holds the workdir."""


@contextlib.contextmanager
def hold(directory: str | os.PathLike, name: str = ".lock"):
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  path = directory / name
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
    os.close(fd)
    raise WorkdirLockedError(
        f"{directory} is in use by another process (pid {holder}, lock {path}); wait for "
        f"it to finish or stop it - two writers would interleave its records") from None
  try:
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    yield path
  finally:
    os.close(fd)  # releases the lock
