"""Entry point: one training run, or a sweep when the config declares one.

  python main.py --config=configs/default.py:quick --workdir=runs/quick
  python main.py --config=configs/ablation_shuffle.py
  python main.py --config=configs/default.py --config.model=shufflenet_0.5x_g8 --workdir=...

Kept short on purpose: everything lives in shufflenet_jax/ and experiments/.
"""

import ast
import gc
import logging as std_logging
import os
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from shufflenet_jax import malloc

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.DEFINE_bool("distributed", False, "Join a multi-process run (jax.distributed.initialize): "
                  "the cluster from the flags below, their JAX_* environment variables, or "
                  "SLURM/Open MPI/TPU detection. Implied by any of the flags below.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0's coordinator "
                    "(env JAX_COORDINATOR_ADDRESS).")
flags.DEFINE_string("num_processes", None, "Number of processes (env JAX_NUM_PROCESSES).")
flags.DEFINE_string("process_id", None, "This process's index, 0..num_processes-1 "
                    "(env JAX_PROCESS_ID).")
flags.DEFINE_string("local_device_ids", None, "Comma-separated local devices this process "
                    "uses (env JAX_LOCAL_DEVICE_IDS); default all.")
flags.DEFINE_integer("distributed_timeout", 300, "Seconds to wait for every process to join.")
flags.DEFINE_bool("verbose", False, "Also log the libraries' INFO lines (tfds, orbax, XLA).")
flags.DEFINE_string("reuse", None, "For sweeps: a directory of <sweep>/<run id>/ records (e.g. "
                    "results/records); a run recorded there with the same training config is "
                    "copied in (its result gains reused_from), not trained again.")
flags.DEFINE_string("worker", "0/1", "For sweeps: i/n runs every n-th run starting at i, so n "
                    "processes or hosts split one sweep without overlap.")
config_flags.DEFINE_config_file("config", None, "Config file (path.py[:preset]).",
                                lock_config=True)


_ROOT = str(Path(__file__).resolve().parent)


def _own_info_only(record) -> bool:
  """Warnings and errors from anywhere; INFO lines (tfds' dataset loading, orbax's every
  save, XLA's backend probing) only from this project's own code."""
  return record.levelno >= std_logging.WARNING or record.pathname.startswith(_ROOT) and (
      "/.venv/" not in record.pathname[len(_ROOT):])


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


MODEL_KWARGS_FLAG = "--config.model_kwargs."


def _split_model_kwargs(argv: list[str]) -> tuple[list[str], dict[str, str]]:
  """``argv`` without its ``--config.model_kwargs.<name>=<value>`` (or ``... <value>``)
  flags, and those flags as {name: value text}, in order."""
  rest, found = [], {}
  args = iter(argv)
  for arg in args:
    name, eq, value = arg[len(MODEL_KWARGS_FLAG):].partition("=")
    if arg.startswith(MODEL_KWARGS_FLAG) and "." not in name:
      found[name] = value if eq else next(args, "")
    else:
      rest.append(arg)
  return rest, found


def _literal(text: str):
  """A flag's value as ml_collections reads an untyped one: a Python literal, else text."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a one-line error and exit status 2 instead of a traceback
  for a bad ``--config``: an unknown ``--config.<key>`` (ml_collections raises an
  AttributeError with a did-you-mean hint), a value of the wrong type, a config file that
  raises (e.g. an unknown preset).

  ``--config.model_kwargs.<name>=<value>`` may name any argument of the model's
  constructor (e.g. ``shuffle_order=release``), not only the fields the config file set:
  ml_collections cannot add a field from the command line, so these are set here after
  parsing; the run's validation (shufflenet_jax/validate.py) checks that the model takes
  them."""
  argv, model_kwargs = _split_model_kwargs(argv)
  if model_kwargs:  # ml_collections reads the overrides from sys.argv itself
    sys.argv[:] = _split_model_kwargs(sys.argv)[0]
  try:
    rest = FLAGS(argv)
  except (AttributeError, KeyError) as e:
    inner = e.args[0] if e.args and isinstance(e.args[0], BaseException) else e
    text = str(inner.args[0] if inner.args else inner)
    key, _, hint = text.partition("\n")
    key = key.strip("'\"")
    flag = next((a.split("=")[0] for a in argv[1:]
                 if a.startswith("--config.") and key in a.split("=")[0].split(".")),
                "--config")
    _fail(f"{flag}: the config has no field {key!r}. {hint or ''}".strip())
  except flags.Error as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    _fail(lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}")
  for name, text in model_kwargs.items():
    target = FLAGS.config.get("model_kwargs")
    if target is None:
      _fail(f"{MODEL_KWARGS_FLAG}{name}: the config has no field 'model_kwargs'")
    try:  # a field the config file set keeps its type, as for any flag
      with target.unlocked():
        target[name] = text if isinstance(target.get(name), str) else _literal(text)
    except TypeError as e:
      _fail(f"{MODEL_KWARGS_FLAG}{name}={text}: {e}")
  return rest


def check_before_work(config, workdir: str | None, worker: str, reuse: str | None = None) -> None:
  """The whole config (every run of a sweep), the workdir, --worker and --reuse: a ValueError
  naming the first bad setting (shufflenet_jax/validate.py)."""
  from shufflenet_jax import compile_cache, validate
  compile_cache.max_bytes()
  if reuse is not None and "sweep" not in config:
    raise ValueError(f"--reuse={reuse!r} is for sweeps; this config is a single run")
  if reuse is not None and not Path(reuse).is_dir():
    raise ValueError(f"--reuse={reuse!r}: no such directory (expected <sweep>/<run id>/ "
                     "records, e.g. results/records)")
  if config.get("task") == "arm_timing":
    validate.check_workdir(workdir)
    return
  if "sweep" in config:
    from experiments import sweep
    validate.check_sweep(config, sweep.TABLE_SWEEPS)
    sweep.parse_worker(worker)
    runs = sweep.expand(config)
    points = {}  # each grid point once: its seeds share every other setting
    for run in runs:
      points.setdefault(repr(sorted((k, v) for k, v in run.point.items() if k != "seed")), run)
    for run in points.values():
      validate.check_config(run.config)
    sweep.seed_groups(runs, config)
    root = Path(workdir or sweep.default_workdir(config))
    validate.check_workdir(root)
    for run in runs:  # a finished run's budget is the runner's check (runner.finished)
      d = root / "runs" / run.run_id
      validate.check_run_workdir(run.config, d, compare=not (d / "result.json").is_file())
    return
  if not workdir:
    raise ValueError("--workdir is required for a single run")
  validate.check_config(config)
  validate.check_workdir(workdir)
  validate.check_run_workdir(config, workdir)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    FLAGS.config.get("task")
  except OSError as e:  # ml_collections defers a config file's load error to its first use
    _fail(f"--config={FLAGS['config'].config_filename}: {str(e).strip().splitlines()[-1].strip()}")
  from shufflenet_jax import cluster
  names = ("coordinator_address", "num_processes", "process_id", "local_device_ids")
  try:  # checked before anything heavy is imported
    cluster_kwargs = cluster.settings({n: FLAGS[n].value for n in names})
  except cluster.ClusterError as e:
    _fail(str(e))
  distributed = FLAGS.distributed or any(FLAGS[n].value is not None for n in names)
  if distributed and FLAGS.reuse is not None:
    # Every process must train the same runs; process 0 alone writes records.
    _fail(f"--reuse={FLAGS.reuse!r} is for single-process sweeps; drop it with --distributed "
          "(or run the sweep's workers as separate processes: --worker=i/n)")
  try:  # every setting, before TensorFlow, tfds or a dataset is touched
    check_before_work(FLAGS.config, FLAGS.workdir, FLAGS.worker, FLAGS.reuse)
  except ValueError as e:
    _fail(str(e))
  # tf.data only feeds the host; keep TensorFlow off any accelerator. The on-device
  # pipeline (--config.data_on_device=True) reads the IDX files without TensorFlow, which
  # is then not imported at all (3-7 s of every run's start on 2 cores; a GPU image may
  # not have it).
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  # TensorFlow 2.21 prints "oneDNN custom operations are on" through absl's C++ log before
  # it is initialized (TF_CPP_MIN_LOG_LEVEL does not reach it), once per import, on CPUs
  # where oneDNN is on by default. tf.data's maps here run no oneDNN op: the pipeline's
  # batches are bitwise equal with it off (sha256 of 31 train + 20 eval batches, checked).
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  if not FLAGS.config.get("data_on_device", False):
    try:
      import tensorflow as tf
      tf.config.set_visible_devices([], "GPU")
    except ImportError:
      pass
  import jax

  if distributed:
    if cluster_kwargs.get("process_id", 0) != 0:  # quiet from the start where known
      logging.set_verbosity(logging.WARNING)
    try:
      cluster.initialize(cluster_kwargs, FLAGS.distributed_timeout)
    except cluster.ClusterError as e:
      _fail(str(e))
    if jax.process_index() != 0:  # one log: the others report warnings and errors only
      logging.set_verbosity(logging.WARNING)
  from shufflenet_jax import aot, compile_cache, datasets, records, train

  cache = compile_cache.enable()

  if not FLAGS.verbose:  # the run's own progress, not every library's INFO lines
    logging.get_absl_handler().addFilter(_own_info_only)
  config = FLAGS.config
  logging.info("JAX process %d / %d; devices: %s", jax.process_index(), jax.process_count(),
               jax.devices())
  logging.info("versions: %s", records.library_versions())
  logging.info("compilation cache: %s; exported steps: %s",
               cache or f"off (${compile_cache.ENV})", aot.describe())
  try:
    if config.get("task") == "arm_timing":
      from experiments import arm_timing
      arm_timing.run(config, FLAGS.workdir)
    elif "sweep" in config:
      from experiments import runner
      runner.run_sweep(config, FLAGS.workdir, worker=FLAGS.worker, reuse=FLAGS.reuse)
    else:
      if not FLAGS.workdir:
        raise app.UsageError("--workdir is required for a single run")
      if config.get("eval_only", False):
        result = train.evaluate_checkpoint(config, FLAGS.workdir)
        m = result["metrics"]
        print(f"{result['model']} ({config.init_from}): top-1 {100 * (1 - m['eval_top1_err']):.2f}%"
              f", top-5 {100 * (1 - m['eval_top5_err']):.2f}% on {m['eval_examples']} "
              f"{config.dataset} images; {FLAGS.workdir}/result.json")
      elif config.get("data_on_device", False):
        from shufflenet_jax import seed_group
        seed_group.train_group([config], [FLAGS.workdir])
      else:
        train.train_and_evaluate(config, FLAGS.workdir)
  except (ValueError, FileNotFoundError, datasets.DatasetUnavailableError,
          train.NonFiniteLossError) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  finally:
    # The work is done (records and checkpoints written and closed): the interpreter's
    # exit need not garbage-collect the heap of jax, flax and TensorFlow objects, which cost
    # ~2 s of every process's exit on 2 cores (0.4 s frozen; docs/performance.md).
    gc.freeze()


if __name__ == "__main__":
  malloc.reexec_with_tcmalloc()  # before any work: the allocator is fixed at process start
  flags.mark_flags_as_required(["config"])
  app.run(main, flags_parser=parse_flags)
