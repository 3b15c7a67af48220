# aurelius: every target builds the virtual environment from the pinned files first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
PYTEST_ARGS ?=
ARGS ?=

.PHONY: all venv test test-fast ruff format lint demo bench build lock clean

all: test

# Everything (tests, linters, sam, checkov): requirements.lock.
$(STAMP): requirements.lock pyproject.toml
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)  # new, or left half-made
	$(PIP) -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP) $(DEMO_STAMP)

# Only what the sandbox needs (a faster first `make demo`): requirements-demo.lock, a subset
# of requirements.lock with the same versions.
$(DEMO_STAMP): requirements-demo.lock pyproject.toml
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)  # new, or left half-made
	$(PIP) -r requirements-demo.lock
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(DEMO_STAMP)

venv: $(STAMP)

## make test: ruff (lint + format check), then every test tier (unit, integration against moto,
## e2e sandbox, server, fault, property, template lint and checkov, sam build).
test: $(STAMP) ruff
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

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
LOCK_VENV := $(or $(TMPDIR),/tmp)/aurelius-lock-venv
lock:
	rm -rf $(LOCK_VENV) $(LOCK_VENV)-demo
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet -e '.[dev]'
	( head -2 requirements.lock; $(LOCK_VENV)/bin/pip freeze --all --exclude-editable | grep -v "^pip==" ) > requirements.lock.new
	mv requirements.lock.new requirements.lock
	$(PYTHON) -m venv $(LOCK_VENV)-demo
	$(LOCK_VENV)-demo/bin/pip install --quiet -e '.[demo]' -c requirements.lock
	( head -2 requirements-demo.lock; $(LOCK_VENV)-demo/bin/pip freeze --all --exclude-editable | grep -v "^pip==" ) > requirements-demo.lock.new
	mv requirements-demo.lock.new requirements-demo.lock

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .hypothesis
