# rstuf-worker: the two commands operators need are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
VENV_PY := $(CURDIR)/$(VENV)/bin/python
# The RSTUF CLI, in a venv of its own (tests/requirements-cli.txt).
VENV_CLI := .venv-cli
SHARED ?= $(abspath $(CURDIR)/../shared)

export RSTUF_SHARED_DIR ?= $(SHARED)
export RSTUF_TEST_PYTHON ?= $(VENV_PY)
export RSTUF_TEST_CLI ?= $(CURDIR)/$(VENV_CLI)/bin/rstuf
# A static binary, which tests run from an otherwise empty root; `make
# test` builds an unoptimised one (same code, minutes quicker to build).
export RSTUF_STATIC_BINARY ?= $(CURDIR)/target/image/rstuf-worker

.PHONY: run build release static image test test-build lint unit venv bench bench-core fuzz chaos clean

# Defaults for `make run` on a development machine (local services, trust
# auth); any of them can be overridden from the environment.
RUN_DIR ?= $(CURDIR)/.run
# The local PostgreSQL where `make run` creates its database `rstuf`.
RUN_PG ?= postgresql://postgres@127.0.0.1:5432
run: export RSTUF_BROKER_SERVER ?= amqp://guest:guest@127.0.0.1:5672
run: export RSTUF_REDIS_SERVER ?= redis://127.0.0.1
run: export RSTUF_DB_SERVER ?= $(RUN_PG)/rstuf
run: export RSTUF_STORAGE_BACKEND ?= LocalStorage
run: export RSTUF_LOCAL_STORAGE_BACKEND_PATH ?= $(RUN_DIR)/storage
run: export RSTUF_ONLINE_KEY_DIR ?= $(RUN_DIR)/keys
run: export DATA_DIR ?= $(RUN_DIR)/data

## run: start a worker against the local PostgreSQL, Redis and RabbitMQ
run: build
	mkdir -p "$(RSTUF_LOCAL_STORAGE_BACKEND_PATH)" "$(RSTUF_ONLINE_KEY_DIR)" "$(DATA_DIR)"
	psql "$(RUN_PG)/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = 'rstuf'" | grep -q 1 \
		|| psql "$(RUN_PG)/postgres" -c "CREATE DATABASE rstuf"
	$(CARGO) run --quiet -- run

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## static: a statically linked release binary (glibc, crt-static) for the image
STATIC_TARGET := x86_64-unknown-linux-gnu
# `release` for the image; `make test` uses `dev` into another directory.
STATIC_PROFILE ?= release
IMAGE_DIR ?= target/image
static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --profile $(STATIC_PROFILE) --target $(STATIC_TARGET)
	mkdir -p $(IMAGE_DIR)/empty
	cp "$$($(CARGO) metadata --format-version 1 --no-deps | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/$(STATIC_TARGET)/$(if $(filter dev,$(STATIC_PROFILE)),debug,$(STATIC_PROFILE))/rstuf-worker" $(IMAGE_DIR)/
	strip $(IMAGE_DIR)/rstuf-worker
	cp /etc/ssl/certs/ca-certificates.crt $(IMAGE_DIR)/

## image: the container image from Containerfile (podman, buildah or docker)
IMAGE ?= rstuf-worker:latest
image: static
	# podman keeps HEALTHCHECK only in the docker image format.
	if command -v podman >/dev/null; then \
		podman build --format docker -f Containerfile -t $(IMAGE) target/image; \
	else \
		docker build -f Containerfile -t $(IMAGE) target/image; \
	fi

## venv: the Python tools tests drive and check the worker with (pinned)
venv: $(VENV)/.installed $(VENV_CLI)/.installed

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

$(VENV_CLI)/.installed: tests/requirements-cli.txt
	$(PYTHON) -m venv $(VENV_CLI)
	$(VENV_CLI)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-cli.txt
	touch $@

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --test bench_service -- -D warnings
	$(CARGO) clippy --test chaos -- -D warnings

## test: everything CI checks
# The Python venvs download while cargo compiles: on a new machine each
# takes minutes, and they need different things (network, CPU).
test:
	$(MAKE) --jobs=2 venv test-build
	RSTUF_STATIC_BINARY=$(CURDIR)/target/test-image/rstuf-worker $(CARGO) test --all-targets

test-build: lint
	$(MAKE) static STATIC_PROFILE=dev IMAGE_DIR=target/test-image
	$(CARGO) test --all-targets --no-run

## bench: the worker against the local services, measured; writes BENCH.md
bench: venv
	$(CARGO) test --release --test bench_service

## chaos: every fault scenario against private workers; writes CHAOS.md,
## then each fuzz target briefly (not in test: minutes long, needs root
## for tmpfs mounts, and strace)
CHAOS_FUZZ_SECONDS ?= 30
chaos: venv
	$(CARGO) test --test chaos
	$(MAKE) fuzz FUZZ_SECONDS=$(CHAOS_FUZZ_SECONDS)

## bench-core: serialize + sign 16384 bin roles per key type (not part of test)
bench-core:
	$(CARGO) run --release --quiet --example bench_core

## fuzz: each fuzz target for FUZZ_SECONDS, seeded from ../shared (not in test)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := celery_message metadata
# cargo-fuzz needs unstable compiler flags (sanitizers); the machine's only
# toolchain is stable, so it runs with RUSTC_BOOTSTRAP.
fuzz: .tools/bin/cargo-fuzz
	$(PYTHON) tests/fuzz/seed.py "$(SHARED)" target/fuzz-corpus
	for t in $(FUZZ_TARGETS); do \
		PATH="$(CURDIR)/.tools/bin:$$PATH" RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run \
			--fuzz-dir tests/fuzz -O $$t target/fuzz-corpus/$$t \
			-- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

.tools/bin/cargo-fuzz:
	$(CARGO) install cargo-fuzz --locked --version 0.13.2 --root .tools

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(VENV_CLI) .tools
