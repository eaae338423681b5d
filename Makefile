# ShopBot: one command per habit. `make run` and `make test` do all the set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= dev,local
# llama-cpp-python compiles llama.cpp on install (~12 min, once: pip caches the wheel).
# Build for x86-64-v3 plus the AVX-512 family when this CPU has it, never -march=native: a
# native build traps on CPUs that advertise AMX without the kernel granting it. The wheel is
# built into a folder named for these flags, so a cached wheel never runs on a CPU it was not
# built for.
AVX512 := $(shell grep -qw avx512bw /proc/cpuinfo 2>/dev/null && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo && echo ON || echo OFF)
AVX512_BF16 := $(shell grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null && echo $(AVX512) || echo OFF)
AVX512_VBMI := $(shell grep -qw avx512vbmi /proc/cpuinfo 2>/dev/null && echo $(AVX512) || echo OFF)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=$(AVX512) -DGGML_AVX512_VNNI=$(AVX512) -DGGML_AVX512_VBMI=$(AVX512_VBMI) -DGGML_AVX512_BF16=$(AVX512_BF16) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_CPP := llama-cpp-python==0.3.36
WHEELS := $(HOME)/.cache/shopbot-wheels/$(shell echo '$(LLAMA_CPP) $(CMAKE_ARGS)' | sha256sum | cut -c1-12)

.PHONY: install run serve browser test lint format typecheck bench db replay distil clean help

help:
	@echo "make run | test | lint | format | typecheck | bench | db | replay | distil | clean"

# The venv is rebuilt only when pyproject.toml changes; pip's wheel cache keeps it quick.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	@ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || $(PY) -m pip wheel --quiet --no-deps --no-binary llama-cpp-python -w $(WHEELS) '$(LLAMA_CPP)'
	$(PY) -m pip install --quiet --find-links $(WHEELS) -e '.[$(EXTRAS)]'
	@touch $@

install: $(STAMP)

db: install
	$(BIN)/shopbot db upgrade
	$(BIN)/shopbot db seed
	$(BIN)/shopbot index

run: db
	$(BIN)/shopbot prepare
	$(BIN)/shopbot chat

serve: db
	$(BIN)/shopbot prepare
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
	$(PY) benchmarks/intents.py
	$(PY) benchmarks/carrier.py
	$(PY) benchmarks/local_model.py --json data/local_model.json
	$(PY) benchmarks/local_accuracy.py --json data/local_accuracy.json
	$(PY) benchmarks/turn_cost.py --parts
	$(PY) benchmarks/db_client.py
	$(PY) benchmarks/widget_load.py
	$(PY) benchmarks/widget_floor.py
	$(PY) benchmarks/handoff.py
	$(PY) benchmarks/hostile.py

# Train the embedded student and install its adapter (~60-80 min on 2 cores; the [train]
# extra is several GB). An interrupted run leaves the shipped adapter as it was.
distil: db
	$(PY) -m pip install --quiet --find-links $(WHEELS) -e '.[$(EXTRAS),train]'
	$(BIN)/shopbot distil data
	$(BIN)/shopbot distil train
	$(BIN)/shopbot distil export
	$(BIN)/shopbot distil report

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .hypothesis
