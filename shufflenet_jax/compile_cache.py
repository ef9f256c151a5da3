"""JAX's persistent compilation cache, on by default for main.py, the benchmarks and tests.

A sweep compiles the same train step for every seed of a configuration, a resumed run
compiles what the killed one compiled, and the test suite compiles the same small models
on every invocation; with the cache each of those is compiled once per machine.

Location: jax's own ``$JAX_COMPILATION_CACHE_DIR`` if set, else ``$SHUFFLENET_JAX_CACHE`` if
set (``off``, ``none`` or an empty value disables the cache), else
``$XDG_CACHE_HOME/shufflenet-jax/xla`` (``~/.cache/shufflenet-jax/xla``).

Size: ``$SHUFFLENET_JAX_CACHE_MAX_MB`` (default 4096; ``-1``: no cap) bounds the compiled
programs (jax's own least-recently-used eviction), and an eighth of it the exported steps
in ``aot/`` (aot.py evicts the least recently used): a machine that runs many sweeps and
code versions keeps a bounded cache, not one that grows with every program it compiled.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "SHUFFLENET_JAX_CACHE"
MAX_ENV = "SHUFFLENET_JAX_CACHE_MAX_MB"
DEFAULT_MAX_MB = 4096
_DISABLED = ("", "off", "none", "0", "false")


def max_bytes() -> int:
  """The cap on the compiled programs in bytes (``$SHUFFLENET_JAX_CACHE_MAX_MB``), -1 for
  none; a ValueError names a bad value."""
  raw = os.environ.get(MAX_ENV, "").strip()
  if not raw:
    return DEFAULT_MAX_MB << 20
  try:
    mb = int(raw)
  except ValueError:
    mb = 0
  if mb < 1 and mb != -1:
    raise ValueError(f"${MAX_ENV}={raw!r}: the compilation cache's size cap in MB, a "
                     "positive integer, or -1 for no cap")
  return -1 if mb == -1 else mb << 20


def default_dir() -> Path | None:
  """The cache directory this process would use, or None when the cache is disabled."""
  if ENV in os.environ:
    value = os.environ[ENV].strip()
    return None if value.lower() in _DISABLED else Path(value).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "shufflenet-jax" / "xla"


def enable(directory: str | Path | None = None) -> Path | None:
  """Turns the persistent cache on in ``directory`` (default: ``default_dir()``) for every
  program that takes at least 0.5 s to compile; returns the directory or None (disabled)."""
  import jax
  if directory is None and os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])  # jax's own variable wins
  path = Path(directory).expanduser() if directory is not None else default_dir()
  if path is None:
    return None
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:  # a read-only home: run without the cache rather than fail
    print(f"warning: compilation cache disabled ({path}: {e.strerror}); set {ENV}",
          flush=True)
    return None
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  cap = max_bytes()
  try:
    import filelock  # noqa: F401 -- jax's eviction locks the directory with it
  except ImportError:
    print("warning: the compilation cache is not capped (pip install filelock)", flush=True)
    cap = -1
  if cap >= 0:
    stamp_entries(path)
  jax.config.update("jax_compilation_cache_max_size", cap)
  return path


def stamp_entries(path: Path) -> int:
  """Gives every compiled program in ``path`` that lacks one the last-use stamp jax's
  eviction reads (``<key>-atime``: nanoseconds, 8 bytes little-endian): the file's mtime.
  Entries written while the cache was uncapped have none, and jax's eviction fails on them
  (a warning, and the new entry is not kept). Returns how many it stamped."""
  stamped = 0
  for entry in path.glob("*-cache"):
    stamp = entry.with_name(entry.name.removesuffix("-cache") + "-atime")
    try:
      if not stamp.exists():
        stamp.write_bytes(entry.stat().st_mtime_ns.to_bytes(8, "little"))
        stamped += 1
    except OSError:  # evicted meanwhile, or a read-only cache: jax reports what it can't do
      continue
  return stamped
