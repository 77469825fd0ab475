#!/usr/bin/env bash
# Everything CI runs (`make test`): lint, format, types, import layers, unit tests, then e2e tests
# against $KUBECONFIG when set, else against the local cluster (brought up here, torn down at exit
# if this script created it).
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
  if hack/cluster status 2>/dev/null; then
    log "reusing the running local cluster (left up)"
  else
    trap 'log "tearing the cluster down"; hack/cluster down || true' EXIT
    trap 'exit 130' INT TERM
    stage "cluster up" hack/cluster up
  fi
  eval "$(hack/cluster env)"
fi
stage "prometheus" hack/prometheus # for the promotion-gate e2e tests: built on first use, with progress
GREENLIGHT_KEEP_CLUSTER=1 stage "e2e tests" pytest -m e2e -q
log "all green"
