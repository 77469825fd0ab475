#!/usr/bin/env bash
# Everything CI runs (`make test`): lint, format, types, import layers, unit tests, then e2e tests
# against $KUBECONFIG when set, else against the local cluster (brought up here, torn down at exit
# if this script created it). As root (CI) the local cluster gets the real node
# (GREENLIGHT_REAL_NODE=1; set it to 0 to leave it out): the operator image is built (`make image`)
# and the real-node tests must pass; they fail, not skip, when the real node is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
stage() { # stage <name> <command...>: run it, time it; pytest's exit 5 (no tests collected) fails too
  local name="$1" start=$SECONDS rc=0; shift
  log "── $name: $*"
  "$@" || rc=$?
  ((rc == 5)) && log "$name collected no tests"
  ((rc == 0)) || { log "FAILED: $name (exit $rc) after $((SECONDS - start)) s"; exit "$rc"; }
  log "ok: $name in $((SECONDS - start)) s"
}

stage "ruff check" ruff check .
stage "ruff format" ruff format --check .
stage "mypy" mypy
stage "import layers" lint-imports
stage "unit tests" pytest -m unit -q

if [[ -z "${KUBECONFIG:-}" ]]; then
  if [[ -z "${GREENLIGHT_REAL_NODE:-}" ]]; then # CI runs as root: there it is on, and must work
    GREENLIGHT_REAL_NODE=1
    [[ "$(id -u)" == 0 ]] || { GREENLIGHT_REAL_NODE=0; log "not root: no real node, its tests are skipped"; }
    [[ "${CLUSTER:-kwok}" == kwok ]] || GREENLIGHT_REAL_NODE=0 # kind: its nodes are real already
  fi
  export GREENLIGHT_REAL_NODE
  if hack/cluster status 2>/dev/null; then
    log "reusing the running local cluster (left up)"
  elif GREENLIGHT_REAL_NODE=0 hack/cluster status 2>/dev/null; then
    stage "real node up (the cluster is reused and left up)" hack/cluster up
  else
    trap 'log "tearing the cluster down"; hack/cluster down || true' EXIT
    trap 'exit 130' INT TERM
    stage "cluster up" hack/cluster up
  fi
  eval "$(hack/cluster env)"
  [[ "$GREENLIGHT_REAL_NODE" != 1 ]] || stage "operator image" hack/image.sh
fi
GREENLIGHT_KEEP_CLUSTER=1 stage "e2e tests" pytest -m e2e -q
log "all green"
