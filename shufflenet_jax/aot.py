"""Step functions whose traced program is kept on disk, so a new process skips tracing.

JAX's persistent compilation cache (compile_cache.py) saves the XLA compilation, but every
process still traces and lowers each step to compute that cache's key: 2.5 s of tracing and
1.2 s of lowering for the tiny test model's train step on 2 cores, against a 1.4 s cache
load. ``step()`` traces a step once, exports the lowered program with ``jax.export`` into
``<compilation cache>/aot/``, and in every later process deserializes it (0.03 s) instead;
the program then goes through the persistent cache as before. Every process runs the
exported program, whether it exported it or read it, so a resumed run executes the very
program of the interrupted one.

The file's name is a hash of everything that decides the program: the caller's ``key``
(the step's role and the run's configuration, which fixes the model, the implementations
and the optimizer's constants), the argument shapes, dtypes and tree structure, the
package's source files, the library versions, the jax flags that change lowering, XLA_FLAGS
and the devices. Anything else the step closes over must be in ``key``.

Used for single-process, single-device steps (the tests', the sweeps' and most users'
runs); a multi-device or multi-process step is a plain ``jax.jit``, as is every step when
the compilation cache is off (``SHUFFLENET_JAX_CACHE=off``) or ``SHUFFLENET_JAX_AOT=off``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Callable

import jax
from absl import logging
from jax import export

from shufflenet_jax import compile_cache

ENV = "SHUFFLENET_JAX_AOT"
_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def _source_hash() -> str:
  """Every .py file of the package, by path and content."""
  h = hashlib.sha256()
  for path in sorted(_PACKAGE.rglob("*.py")):
    h.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
  return h.hexdigest()


def _environment() -> dict:
  import importlib.metadata as md
  devices = jax.devices()
  return dict(
      source=_source_hash(),
      versions={p: md.version(p) for p in ("jax", "jaxlib", "flax", "optax")},
      flags={f: str(getattr(jax.config, f)) for f in (
          "jax_enable_x64", "jax_default_matmul_precision", "jax_default_prng_impl",
          "jax_threefry_partitionable")},
      xla_flags=os.environ.get("XLA_FLAGS", ""),
      devices=[jax.default_backend(), devices[0].device_kind, len(devices),
               jax.process_count()])


def directory() -> Path | None:
  """Where exported steps are kept (inside jax's compilation cache), or None: off."""
  if os.environ.get(ENV, "").strip().lower() in ("off", "0", "false", "none"):
    return None
  cache = jax.config.jax_compilation_cache_dir
  return Path(cache) / "aot" if cache else None


def step(fn: Callable, key: dict, *, donate_argnums: tuple[int, ...] = (),
         in_shardings=None, out_shardings=None):
  """``jax.jit(fn, ...)`` for a step of positional array-tree arguments, its program
  kept on disk under a name derived from ``key`` (JSON-serializable) and the arguments."""
  plain = functools.partial(jax.jit, fn, donate_argnums=donate_argnums)
  if in_shardings is not None:
    plain = functools.partial(plain, in_shardings=in_shardings, out_shardings=out_shardings)
  if directory() is None or jax.device_count() > 1 or jax.process_count() > 1:
    return plain()
  if tuple(donate_argnums) not in ((), (0,)):
    raise ValueError(f"donate_argnums={donate_argnums}: aot.step donates the first "
                     "argument (0,) or none ()")
  return Step(fn, key, donate_argnums, out_shardings)


class Step:
  """A step whose program is exported once and read back by later processes."""

  def __init__(self, fn: Callable, key: dict, donate_argnums: tuple[int, ...],
               out_sharding=None):
    self._fn, self._donate = fn, tuple(donate_argnums)
    self._plain = jax.jit(fn, donate_argnums=self._donate)
    self._key = json.dumps(key, sort_keys=True, default=str)
    # A single sharding for every output (a one-device step: where its outputs live).
    self._out_sharding = jax.tree.leaves(out_sharding)[0] if out_sharding is not None else None
    self._programs: dict = {}  # (tree, avals) -> (jitted exported call, output tree)

  def _program(self, args):
    leaves, tree = jax.tree.flatten(args)
    avals = tuple((tuple(x.shape), str(x.dtype)) for x in leaves)
    if (tree, avals) not in self._programs:
      self._programs[(tree, avals)] = self._load(args, leaves, tree, avals)
    return leaves, self._programs[(tree, avals)]

  def _load(self, args, leaves, tree, avals):
    name = hashlib.sha256(json.dumps(
        [self._key, str(tree), avals, _environment()], sort_keys=True).encode()).hexdigest()
    path = directory() / f"{name[:40]}.jaxexport"
    exported = out_tree = None
    if path.exists():
      try:
        out_tree, blob = pickle.loads(path.read_bytes())
        exported = export.deserialize(bytearray(blob))
        os.utime(path)  # used now: the last to be evicted (evict)
      except Exception:  # noqa: BLE001 -- an unreadable entry is rebuilt, not fatal
        exported = None
    if exported is None:
      out_tree = None

      def flat(*xs):
        nonlocal out_tree
        out = self._fn(*jax.tree.unflatten(tree, list(xs)))
        flat_out, out_tree = jax.tree.flatten(out)
        return flat_out

      try:
        exported = export.export(jax.jit(flat))(*leaves)
      except Exception as e:  # noqa: BLE001 -- a program jax.export cannot hold runs as is
        logging.warning("aot: %s stays a plain jit step (jax.export: %s)", self._key[:80], e)
        return None
      try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(pickle.dumps((out_tree, exported.serialize())))
        os.replace(tmp, path)  # atomic: a concurrent process reads the old or the new file
        cap = compile_cache.max_bytes()
        if cap >= 0:  # an eighth of the compiled programs' cap
          evict(path.parent, cap // 8, keep=path)
      except OSError as e:  # a full or read-only disk: this process runs it all the same
        logging.warning("aot: could not keep the exported step in %s: %s", path.parent, e)
    donated = sum(len(jax.tree.leaves(a)) for a in args[:1]) if self._donate == (0,) else 0
    call = jax.jit(exported.call, donate_argnums=tuple(range(donated)),
                   out_shardings=self._out_sharding)
    return call, out_tree

  def __call__(self, *args):
    leaves, program = self._program(args)
    if program is None:
      return self._plain(*args)
    call, out_tree = program
    return jax.tree.unflatten(out_tree, call(*leaves))

  def lower(self, *args):
    leaves, program = self._program(args)
    return self._plain.lower(*args) if program is None else program[0].lower(*leaves)


def evict(folder: Path, limit: int, keep: Path | None = None) -> list[Path]:
  """Deletes the least recently used exported steps in ``folder`` until they take at most
  ``limit`` bytes (never ``keep``); returns what it deleted. A process whose entry goes
  this way rebuilds it."""
  entries = []
  for p in folder.glob("*.jaxexport"):
    try:
      st = p.stat()
    except FileNotFoundError:  # another process evicted it meanwhile
      continue
    entries.append((st.st_mtime, p, st.st_size))
  total = sum(size for _, _, size in entries)
  deleted = []
  for _, p, size in sorted(entries, key=lambda e: e[0]):
    if total <= limit:
      break
    if p != keep:
      p.unlink(missing_ok=True)
      total -= size
      deleted.append(p)
  return deleted


def describe() -> str:
  """One line for the log: where the exported steps are, or why not."""
  d = directory()
  return str(d) if d is not None else f"off (${ENV} or the compilation cache)"

