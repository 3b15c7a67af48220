# aurelius: every target builds the virtual environment from the pinned files first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
PYTEST_ARGS ?=
ARGS ?=

.PHONY: all venv test test-fast lint demo bench build lock clean

all: test

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

## make test: every test tier (unit, integration against moto, e2e sandbox, template lint).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

## make test-fast: unit tests only.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml infra/*/template.yaml

## make demo: the whole redeploy loop against a moto server on 127.0.0.1 (ARGS=--keep to explore).
demo: $(STAMP)
	$(BIN)/python -m aurelius.sandbox.demo $(ARGS)

## make build: sam build (the functions' deployment artifacts in .aws-sam/build).
build: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/sam build --template-file template.yaml

## make bench: measured numbers, written to bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

## make lock: re-pin after editing pyproject.toml (review the diff before committing).
lock:
	$(PYTHON) -m venv /tmp/aurelius-lock-venv
	/tmp/aurelius-lock-venv/bin/pip install --quiet -e '.[dev]'
	( head -2 requirements.lock; /tmp/aurelius-lock-venv/bin/pip freeze --exclude-editable ) > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .hypothesis
