# rstuf-worker: the two commands operators need are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
VENV_PY := $(CURDIR)/$(VENV)/bin/python
SHARED ?= $(abspath $(CURDIR)/../shared)

export RSTUF_SHARED_DIR ?= $(SHARED)
export RSTUF_TEST_PYTHON ?= $(VENV_PY)

.PHONY: run build release test lint unit venv bench-core clean

## run: start a worker against the local PostgreSQL, Redis and RabbitMQ
run: build
	./target/debug/rstuf-worker run

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## venv: the Python tools tests drive and check the worker with (pinned)
venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

## test: everything CI checks
test: venv lint
	$(CARGO) test --all-targets

## bench-core: serialize + sign 16384 bin roles per key type (not part of test)
bench-core:
	$(CARGO) run --release --quiet --example bench_core

clean:
	$(CARGO) clean
	rm -rf $(VENV)
