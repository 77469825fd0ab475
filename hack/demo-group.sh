#!/usr/bin/env bash
# A release group, unattended (`make demo-group`): the seed's django + fastapi pair
# (examples/shop-group.yaml) on the local cluster's fake nodes. Both get a new image, fastapi's
# pods are slow to become ready: django waits for it, then both flip together; then
# `kubectl greenlight undo group/shop` takes both back.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=${DEMO_NAMESPACE:-demo-group}
LOG=${TMPDIR:-/tmp}/greenlight-demo-group-operator.log
say() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

say "Starting the local Kubernetes control plane (the first run builds it, about 12 min)"
hack/cluster status >/dev/null 2>&1 || GREENLIGHT_REAL_NODE=0 hack/cluster up
eval "$(hack/cluster env)"

say "Installing the CRDs and starting the operator (log: $LOG)"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
hack/wait-crds
kubectl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$NS" >/dev/null
greenlight run -n "$NS" >"$LOG" 2>&1 &
OPERATOR=$!
WATCH=
cleanup() {
  [[ -n "$WATCH" ]] && kill "$WATCH" 2>/dev/null
  kill "$OPERATOR" 2>/dev/null || true
}
trap cleanup EXIT

live() {  # live <release>: the live revision
  kubectl get release "$1" -n "$NS" -o jsonpath='{.status.liveRevision}'
}
wait_live() {  # wait_live <revision>: both members live on it and Healthy
  for _ in $(seq 1 240); do
    local ok=1
    for r in django fastapi; do
      [[ "$(live "$r")" == "$1" && "$(kubectl get release "$r" -n "$NS" -o jsonpath='{.status.phase}')" == Healthy ]] || ok=0
    done
    ((ok)) && return 0
    kill -0 "$OPERATOR" 2>/dev/null || { echo "operator exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.5
  done
  echo "timed out waiting for both members on revision $1" >&2; exit 1
}

say "Applying the group and its two members (revision 1 of each)"
kubectl apply -n "$NS" -f examples/shop-group.yaml
wait_live 1
kubectl greenlight get group/shop -n "$NS"

say "Both get a new image; fastapi's new pods take 8 s to become ready (a kwok knob)"
kubectl get releasegroup shop -n "$NS" --watch-only \
  -o custom-columns='GROUP:.metadata.name,PHASE:.status.phase,WAITING:.status.waitingFor,MESSAGE:.status.message' &
WATCH=$!
sed -e 's/shop-django:1.0.0/shop-django:2.0.0/' -e 's/shop-fastapi:1.0.0/shop-fastapi:2.0.0/' \
  examples/shop-group.yaml | python3 -c '
import sys, yaml
docs = list(yaml.safe_load_all(sys.stdin))
for d in docs:
    if d["kind"] == "Release" and d["metadata"]["name"] == "fastapi":
        d["spec"]["template"]["metadata"]["annotations"] = {"greenlight.dev/test-ready-after": "8s"}
yaml.safe_dump_all(docs, sys.stdout)' | kubectl apply -n "$NS" -f -
wait_live 2
kill "$WATCH" 2>/dev/null; WATCH=
say "Both flipped together: the group's history holds the pair"
kubectl greenlight get group/shop -n "$NS"

say "kubectl greenlight undo group/shop: both go back (warm slots, no new pods)"
kubectl greenlight undo group/shop -n "$NS"
for _ in $(seq 1 240); do
  [[ "$(kubectl get svc django -n "$NS" -o jsonpath='{.spec.selector.greenlight\.dev/template-hash}')" == \
     "$(kubectl get release django -n "$NS" -o jsonpath='{.status.history[0].templateHash}')" ]] && break
  sleep 0.5
done
wait_live 3
kubectl greenlight get group/shop -n "$NS"
say "Done. The cluster stays up (hack/cluster down to remove it)."
