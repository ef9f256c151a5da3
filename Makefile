# Two commands do all the set-up on a fresh machine:
#   make run    creates .venv, installs requirements.txt and Fashion-MNIST, runs the main job
#   make test   the same set-up, then the test suite (make test-fast: the unit tests only)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
TCMALLOC := /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
# main.py and the benchmarks re-execute themselves under tcmalloc; pytest gets it here
# (checked when the recipe runs, after `data` may have installed it).
PRELOAD = env $$([ -f $(TCMALLOC) ] && echo LD_PRELOAD=$(TCMALLOC))
WORKDIR ?= runs/ablation_shuffle

.PHONY: setup data run test test-fast complexity bench gpu-bundle

setup: $(VENV)/.installed data

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	PYTHONWARNINGS=ignore $(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Fashion-MNIST's original IDX files and tcmalloc (shufflenet_jax/malloc.py: CPU train
# steps 1.60x faster, results/bench_allocator.md) from the distribution (Debian/Ubuntu);
# elsewhere the input pipeline tells how to get the data, and training runs on the
# system malloc.
data:
	@if { [ ! -f $(FMNIST) ] || [ ! -f $(TCMALLOC) ]; } && command -v apt-get >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO apt-get install -y -qq dataset-fashion-mnist libtcmalloc-minimal4; \
	fi

run: setup
	$(PY) main.py --config=configs/ablation_shuffle.py --workdir=$(WORKDIR)

# pytest-xdist: one worker per CPU; the tests that share a trained fixture stay together.
XDIST = -n auto --dist loadgroup

test: setup
	$(PRELOAD) $(PY) -m pytest -q $(XDIST) --durations=10 tests

# The unit tests only (no training, launches or many-model compiles): while editing.
test-fast: setup
	$(PRELOAD) $(PY) -m pytest -q $(XDIST) --durations=5 -m "not slow" tests

complexity: setup
	$(PY) -m shufflenet_jax.complexity

# The training-speed benchmark against PyTorch (torch is a benchmark-only dependency;
# tests/test_bench.py runs only where it is installed).
bench: setup
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) -m benchmarks.bench_train --out=results/bench_train.md

# What benchmarks/gpu_ablation.sh needs on a GPU machine without network or TensorFlow:
# Fashion-MNIST as one .npz and the ml_collections wheel.
gpu-bundle: setup
	$(PY) -m shufflenet_jax.device_data --out data
	$(PY) -m pip download -q --no-deps -d benchmarks/wheels ml_collections==1.1.0
