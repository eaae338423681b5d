# ShopBot: one command per habit. `make run` and `make test` do all the set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= dev,local
# llama-cpp-python compiles llama.cpp on install (~12 min, once: pip caches the wheel).
# Build for x86-64-v3, not -march=native: a native build traps on CPUs that advertise AMX
# without the kernel granting it, and a cached wheel may run on another machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: install run serve browser test lint format typecheck bench db replay clean help

help:
	@echo "make run | test | lint | format | typecheck | bench | db | replay | clean"

# The venv is rebuilt only when pyproject.toml changes; pip's wheel cache keeps it quick.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

install: $(STAMP)

db: install
	$(BIN)/shopbot db upgrade
	$(BIN)/shopbot db seed
	$(BIN)/shopbot index

run: db
	$(BIN)/shopbot chat

serve: db
	$(BIN)/shopbot serve

# The browser tests drive Debian's Chromium through Playwright (never a browser download).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser tests will be skipped"

test: install browser
	$(PY) -m pytest -q

replay: install
	$(BIN)/shopbot replay fixtures/conversations

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/pyright

bench: db
	$(PY) benchmarks/loop_overhead.py
	$(PY) benchmarks/return_flow.py
	$(PY) benchmarks/policy_retrieval.py
	$(PY) benchmarks/carrier.py
	$(PY) benchmarks/local_model.py --json data/local_model.json
	$(PY) benchmarks/local_accuracy.py --json data/local_accuracy.json
	$(PY) benchmarks/turn_cost.py --parts
	$(PY) benchmarks/db_client.py
	$(PY) benchmarks/widget_load.py
	$(PY) benchmarks/widget_floor.py

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .hypothesis
