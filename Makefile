# The project's commands (docs/contracts.md, "Commands"). `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PY := .venv/bin/python
KAFKA := deploy/local/kafka.sh
# gpu tests fail (never skip) without a CUDA device, so they are selected only where one exists.
PYTEST_MARKERS ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo "" || echo "not gpu")
PYTEST_ARGS ?=

.PHONY: help setup lint test test-fast demo bench bench-all kafka-up kafka-down

help:
	@echo "make setup   venv, Python packages, Kafka jars, Prometheus (idempotent)"
	@echo "make lint    ruff check, ruff format --check, mypy"
	@echo "make test    setup + lint + the whole pytest suite (what CI runs)"
	@echo "make test-fast  lint + tests/unit + tests/training: no broker, no worker process"
	@echo "make demo    broker, simulate, train (or reuse), worker, replay, live alerts, stop"
	@echo "make bench   benchmarks -> bench/results/ (BENCH='scoring state kafka training recovery')"
	@echo "make bench-all  every number in bench/README.md, with its sizes (about 30 minutes)"

setup:
	deploy/local/setup.sh

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy worker training schemas

test: setup lint
	$(PY) -m pytest -m "$(PYTEST_MARKERS)" --durations=15 $(PYTEST_ARGS)

# The pure-Python tests: no broker, no worker process (see README for how long each target takes).
test-fast: setup lint
	$(PY) -m pytest tests/unit tests/training -m "$(PYTEST_MARKERS)" $(PYTEST_ARGS)

demo: setup
	deploy/local/demo.sh

# Every benchmark (about 15 minutes on 2 cores); `make bench BENCH=scoring` for one.
BENCH ?= scoring state kafka training recovery
bench: setup
	for name in $(BENCH); do $(PY) -m bench $$name; done

# Every published number with the sizes bench/README.md quotes (1M users for state and recovery).
bench-all: setup
	$(PY) -m bench scoring
	$(PY) -m bench state --users 10000 100000 1000000
	$(PY) -m bench kafka
	$(PY) -m bench training
	$(PY) -m bench recovery --users 100000
	$(PY) -m bench --out bench/results/recovery-1m recovery --users 1000000 --no-handover

kafka-up: setup
	$(KAFKA) start

kafka-down:
	$(KAFKA) stop
