import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Tests run on the CPU in float32 with exact matmuls, whatever machine they are on.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

# One persistent XLA compilation cache per test session, in a fresh temporary directory
# that is removed at the end (nothing carries over between sessions). The sweep, resume and
# kill tests run the same tiny programs in several processes (main.py subprocesses inherit
# the variable); compiling each program once took the two-workers sweep test from ~250 s
# to ~170 s on 2 cores.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="shufflenet-jax-test-xla-cache-")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fmnist_run(tmp_path_factory):
  """(workdir, result): 0.25x g3 trained 150 steps of batch 128 (a third of an epoch) on the
  real Fashion-MNIST, evaluated on the first 2000 test images. Shared by the accuracy-floor
  test and the int8-agreement test, so it trains once per session."""
  from shufflenet_jax import train
  from tests.tiny import tiny_config
  workdir = tmp_path_factory.mktemp("fmnist_run")
  c = tiny_config(model="shufflenet_0.25x_g3", batch_size=128, num_train_steps=150,
                  train_split="train", eval_split="test[:2000]", shuffle_buffer=10000,
                  checkpoint_every_steps=1000, log_every_steps=50, learning_rate=0.4,
                  warmup_steps=20, eval_batch_size=500)
  return workdir, train.train_and_evaluate(c, workdir)


# Tests that train, start processes or compile many models: `make test-fast` (-m "not
# slow") leaves them out; `make test` runs everything. A name here is the test function's.
SLOW = {
    "test_bench_seeds_prints_a_table_with_every_k",
    "test_data_parallel_train_steps_gather_no_batch",
    "test_two_processes_killed_and_relaunched_equal_one_process_with_two_devices",
    "test_a_coordinator_whose_peers_never_join_gives_up_in_one_line",
    "test_main_reports_a_bad_cluster_in_one_line",
    "test_launcher_prefixes_lines_and_stops_everyone_when_one_fails",
    "test_a_second_process_on_a_workdir_is_refused_while_the_first_runs",
    "test_an_unreadable_newest_checkpoint_falls_back_to_the_one_before",
    "test_bad_command_lines_fail_up_front_in_one_line",
    "test_equalized_int8_export_agrees_with_the_float_model",
    "test_equalization_keeps_the_function_and_flattens_outlier_channels",
    "test_float32_export_matches_jax_and_is_fully_delegated", "test_int8_export_is_fully_delegated",
    "test_restored_checkpoint_and_int8_agree_with_the_trained_float_model",
    "test_timing_job_resumes_and_its_table_is_rebuilt_from_records",
    "test_averaged_int8_ranges_lie_inside_the_global_min_max",
    "test_a_failing_check_names_the_op_and_writes_nothing_as_good",
    "test_reexec_runs_the_same_command_on_tcmalloc",
    "test_probe_tracks_the_classifier_and_the_convs_separately",
    "test_profile_of_a_train_step_names_where_the_time_goes",
    "test_a_seed_in_a_vmapped_group_equals_its_separate_run_float32",
    "test_a_seed_in_a_vmapped_group_equals_its_separate_run_float64_with_a_kill",
    "test_device_trainer_runs_without_tensorflow",
    "test_model_implementations_agree",
    "test_seed_groups_skip_finished_seeds_and_resume_partial_groups",
    "test_two_workers_finish_a_sweep_together_without_overlap",
    "test_accuracy_floor_on_fashion_mnist", "test_four_devices_equal_one_device",
    "test_sigkill_then_rerun_equals_uninterrupted", "test_two_processes_prepare_fashion_mnist_once",
    "test_non_finite_loss_stops_with_a_message",
    "test_imagenet_input_path_with_mock_data", "test_a_bad_config_is_one_line_and_exit_status_2",
    "test_a_corrupt_workdir_is_recovered_or_refused_in_one_line",
    "test_kills_at_random_points_end_bitwise_equal",
    "test_the_wandb_service_ends_with_a_killed_run",
    "test_a_second_copy_of_a_running_sweep_is_refused",
    "test_a_non_finite_loss_stops_the_run_in_one_line",
    "test_the_extending_example_trains_and_writes_its_table",
    "test_converted_weights_export_to_checked_tflite",
    "test_onnx_export_matches_jax_on_onnxruntime",
    "test_bench_compile_measures_a_cold_and_a_cached_process",
    "test_the_train_step_bytes_cover_reading_and_writing_its_state",
}


# Fixtures that train: their tests go to one xdist worker (see below).
SHARED_FIXTURES = {"fmnist_run", "reference"}


# tryfirst: pytest-xdist's worker reads the xdist_group marks in its own
# pytest_collection_modifyitems, which otherwise may run before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
  names = {item.originalname or item.name for item in items}
  unknown = SLOW - names
  files = {Path(str(item.fspath)).name for item in items}
  every_file = {p.name for p in Path(__file__).parent.glob("test_*.py")}
  if unknown and files == every_file:  # the whole suite collected: every name must exist
    raise pytest.UsageError(f"tests/conftest.py SLOW names no test: {sorted(unknown)}")
  for item in items:
    if (item.originalname or item.name) in SLOW:
      item.add_marker(pytest.mark.slow)
    # Under pytest-xdist (make test: -n auto --dist loadgroup) the tests that share an
    # expensive session or module fixture run in one worker, which computes it once.
    # A module-scoped fixture is computed once per module, so its group is the module's
    # (test_drills' and test_distributed's `reference` are different runs).
    for fixture in SHARED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
      defs = item._fixtureinfo.name2fixturedefs.get(fixture, ())
      session = bool(defs) and defs[-1].scope == "session"
      item.add_marker(pytest.mark.xdist_group(
          fixture if session else f"{fixture}-{Path(str(item.fspath)).stem}"))
  # The slow tests first (stable: file order within each part), so that the xdist workers
  # end together on short tests instead of one waiting for a long test begun last.
  items.sort(key=lambda item: (item.originalname or item.name) not in SLOW)


def pytest_collection_finish(session):
  """Under pytest-xdist's --dist loadgroup (make test) the worker marks a grouped test's id
  with its group; without that mark the scheduler spreads the group over the workers and
  each recomputes the shared fixture (pytest 9.2 with pytest-xdist 3.8 lost it silently:
  pytest-dev/pytest-xdist#1386, hence pytest 9.1.1 in requirements.txt)."""
  config = session.config
  if not (hasattr(config, "workerinput") and config.getvalue("loadgroup")):
    return
  lost = [item.nodeid for item in session.items
          if any(item.iter_markers("xdist_group")) and "@" not in item.nodeid]
  if lost:
    message = (f"pytest-xdist's loadgroup did not mark {len(lost)} grouped tests (e.g. "
               f"{lost[0]}): pytest {pytest.__version__} with this pytest-xdist spreads "
               "groups over the workers; install requirements.txt's pytest")
    print(f"error: {message}", file=sys.__stderr__, flush=True)  # a worker's error is lost
    raise pytest.UsageError(message)
