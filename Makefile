# The two commands of the README: `make demo` and `make test`. Both do all the set-up.
# Python packages come from requirements.lock (every package pinned with its hashes), installed
# by uv, itself pinned by hash in scripts/uv.lock. `make lock` remakes the lock from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed-stamp
# what the lock is made for: the machines this project runs on (CPU here, CUDA on a lent GPU)
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28
export HF_HUB_OFFLINE := 1

.PHONY: setup system voices check-lock lock demo test bench clean

setup: system check-lock $(STAMP)

system:
	@bash scripts/setup-system.sh

# the speech synthesizers the scene classifier is trained on (scripts/train_scene_classifier.py)
# and benchmarks/bench_screens.py scores; the tests do not need them
voices:
	@bash scripts/setup-system.sh --voices

check-lock:
	@$(PYTHON) scripts/check_lock.py

$(UV): scripts/uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r scripts/uv.lock

$(STAMP): $(UV) pyproject.toml requirements.lock
	$(UV) pip sync -q --python $(BIN)/python --require-hashes requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Remake the lock after editing pyproject.toml; pins already in it are kept unless named:
#   make lock                      (only what the edit needs changes)
#   make lock UPGRADE=fastapi      (also move fastapi to its newest allowed release)
lock: $(UV)
	$(UV) pip compile -q pyproject.toml --extra test --extra byo --generate-hashes $(LOCK_TARGET) \
	  $(if $(UPGRADE),--upgrade-package $(UPGRADE)) -o requirements.lock
	$(PYTHON) scripts/check_lock.py --stamp

demo: setup
	$(BIN)/clonebench demo

test: setup
	$(BIN)/python -m pytest -q --durations=25 tests

bench: setup
	$(BIN)/python benchmarks/bench_vet.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_model.py --preset v2
	$(BIN)/python benchmarks/bench_backends.py
	$(BIN)/python benchmarks/bench_serve.py --preset tiny

clean:
	rm -rf $(VENV) datasets/demo datasets/clonebench.duckdb datasets/clips
