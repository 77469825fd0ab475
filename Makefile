# Greenlight: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo demo-group demo-gateway test venv lint unit e2e cluster-up cluster-down crd manifests image bench clean

$(BIN)/greenlight: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/greenlight

demo: venv                       ## local cluster + operator + a sample Release flipping blue -> green
	hack/demo.sh

demo-group: venv                 ## a release group: django + fastapi flipped together, then undone
	hack/demo-group.sh

demo-gateway: venv               ## behind a real Gateway (Traefik): header preview, 10% canary, promote
	hack/demo-gateway.sh

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

image:                           ## the operator image (local base, no registry), into the real node's containerd
	hack/image.sh

manifests:                       ## render manifests/greenlight.yaml from charts/greenlight (a test fails when stale)
	hack/render-manifests.sh > manifests/greenlight.yaml

bench: venv                      ## bench/*.py against $KUBECONFIG, else the local cluster (brought up)
	@if [ -z "$$KUBECONFIG" ]; then hack/cluster status >/dev/null 2>&1 || hack/cluster up; fi
	@[ -n "$$KUBECONFIG" ] || eval "$$(hack/cluster env)"; set -e; \
	for b in flip_latency rolling_vs_deployment scale failover burst groups "checks flip-back" "checks idle"; do \
	  echo "── bench/$$b"; set -- $$b; $(BIN)/python bench/$$1.py "$${@:2}"; done

.PHONY: docs docs-build
docs: venv                       ## the user guide (docs/guide, mkdocs.yml) served at http://127.0.0.1:8000/
	$(BIN)/mkdocs serve

docs-build: venv                 ## the same as static files in build/site/; fails on a broken link
	$(BIN)/mkdocs build --strict

clean: cluster-down
	rm -rf $(VENV)
