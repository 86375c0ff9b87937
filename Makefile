# The two commands of the README: `make demo` and `make test`. Both do all the set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# the optional bring-your-own-model libraries (instruments/): the tests need them, the demo does not
BYO_STAMP := $(VENV)/.byo-stamp
export HF_HUB_OFFLINE := 1

.PHONY: setup system demo test bench clean

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

$(BYO_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,byo]'
	touch $(BYO_STAMP)

demo: setup
	$(BIN)/clonebench demo

test: setup $(BYO_STAMP)
	$(BIN)/python -m pytest -q tests

bench: setup $(BYO_STAMP)
	$(BIN)/python benchmarks/bench_vet.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_model.py --preset v2
	$(BIN)/python benchmarks/bench_backends.py
	$(BIN)/python benchmarks/bench_serve.py --preset tiny

clean:
	rm -rf $(VENV) datasets/demo datasets/clonebench.duckdb datasets/clips
