# aurelius: every target builds the virtual environment from the pinned files first.
# The interpreter: PYTHON=... if given, else the newest CPython this project supports (3.11 to
# 3.13, pyproject.toml's requires-python; CI runs 3.11) that runs here. `make python` says which.
SUPPORTED_PYTHONS := python3.13 python3.12 python3.11 python3
PYTHON_CHECK := import sys; assert sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] <= (3, 13); print(sys.executable)
ifdef PYTHON
PYTHON_FROM := PYTHON=
else
PYTHON := $(firstword $(shell for p in $(SUPPORTED_PYTHONS); do $$p -c '$(PYTHON_CHECK)' 2>/dev/null && break; done) python3.11)
PYTHON_FROM := the newest supported CPython found
endif
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
PYTEST_ARGS ?=
ARGS ?=

.PHONY: all venv python test test-fast ruff format lint demo bench build lock clean

all: test

# Everything (tests, linters, sam, checkov): requirements.lock.
$(STAMP): requirements.lock pyproject.toml
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || echo "making $(VENV) with $(PYTHON) ($(PYTHON_FROM)): $$($(PYTHON) --version 2>&1)"
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)  # new, or left half-made
	$(PIP) -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e .
	$(PIP) --no-deps --no-build-isolation -e server  # aurelius_server, importable without PYTHONPATH
	touch $(STAMP) $(DEMO_STAMP)

# Only what the sandbox needs (a faster first `make demo`): requirements-demo.lock, a subset
# of requirements.lock with the same versions.
$(DEMO_STAMP): requirements-demo.lock pyproject.toml
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || echo "making $(VENV) with $(PYTHON) ($(PYTHON_FROM)): $$($(PYTHON) --version 2>&1)"
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)  # new, or left half-made
	$(PIP) -r requirements-demo.lock
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(DEMO_STAMP)

venv: $(STAMP)

## make python: which interpreter a new .venv is made with, and why.
python:
	@echo "python: $(PYTHON) ($(PYTHON_FROM)): $$($(PYTHON) --version 2>&1)"

## make test: ruff (lint + format check), then every test tier (unit, integration against moto,
## e2e sandbox, server, fault, property, template lint and checkov, sam build).
test: $(STAMP) ruff
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)  # the demo-running tests share .sandbox/: one at a time (tests/conftest.py)

## make test-fast: the unit tier without the slow external tools (checkov), ~15 s.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow" tests/unit $(PYTEST_ARGS)

## make ruff: lint and format check of every Python file (make format applies the formatter).
ruff: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml infra/*/*.yaml

## make demo: the whole redeploy loop against a moto server on 127.0.0.1 (ARGS=--keep to explore).
demo: $(DEMO_STAMP)
	$(BIN)/python -m aurelius.sandbox.demo $(ARGS)

## make build: sam build (the functions' deployment artifacts in .aws-sam/build).
build: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/sam build --template-file template.yaml

## make bench: measured numbers, written to bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

## make lock: re-pin after editing pyproject.toml (review the diff before committing).
## Pinned on the oldest supported Python, so the lock keeps the backports 3.11 needs (a freeze on
## a newer one leaves them out); LOCK_PYTHON=... overrides.
LOCK_VENV := $(or $(TMPDIR),/tmp)/aurelius-lock-venv
LOCK_PYTHON ?= python3.11
lock:
	rm -rf $(LOCK_VENV) $(LOCK_VENV)-demo
	$(LOCK_PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet -e '.[dev]'
	( head -2 requirements.lock; $(LOCK_VENV)/bin/pip freeze --all --exclude-editable | grep -v "^pip==" ) > requirements.lock.new
	mv requirements.lock.new requirements.lock
	$(LOCK_PYTHON) -m venv $(LOCK_VENV)-demo
	$(LOCK_VENV)-demo/bin/pip install --quiet -e '.[demo]' -c requirements.lock
	( head -2 requirements-demo.lock; $(LOCK_VENV)-demo/bin/pip freeze --all --exclude-editable | grep -v "^pip==" ) > requirements-demo.lock.new
	mv requirements-demo.lock.new requirements-demo.lock

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .hypothesis
