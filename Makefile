# Greenlight: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test venv lint unit e2e cluster-up cluster-down crd bench clean

$(BIN)/greenlight: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/greenlight

demo: venv                       ## local cluster + operator + a sample Release flipping blue -> green
	hack/demo.sh

test: venv                       ## everything CI runs: lint, types, layers, unit and e2e tests
	hack/test.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest -m unit -q

e2e: venv
	$(BIN)/pytest -m e2e -q

cluster-up: venv
	hack/cluster up

cluster-down:
	hack/cluster down

crd: venv                        ## re-render crds/ from the pydantic models
	$(BIN)/greenlight crd --write crds/

bench: venv
	$(BIN)/python bench/flip_latency.py

clean: cluster-down
	rm -rf $(VENV)
