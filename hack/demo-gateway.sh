#!/usr/bin/env bash
# Traffic through a real Gateway, unattended: `make demo-gateway`. The local cluster with its real
# node (needs root), Traefik in front (hack/gateway), the operator, and the sample app released
# behind the Gateway (examples/gateway-release.yaml): a header-routed preview, a 10% canary step
# (10% of *requests*, with 1 of 3 new pods), then the promotion to 100%. Two request loops run
# throughout, each on 4 keep-alive connections to the Gateway: plain requests, and a tester's
# with `x-canary: 1`; each prints, every second, which versions answered and failures so far.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=${DEMO_NAMESPACE:-demo-gateway}
LOG=${TMPDIR:-/tmp}/greenlight-demo-gateway-operator.log
HOST=web.local.test
say() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

WHY=
if [[ "$(id -u)" != 0 ]]; then
  WHY="not root"
elif ! WHY="$(hack/realnode preflight)"; then
  :
else
  WHY=
fi
if [[ -n "$WHY" ]]; then
  echo "make demo-gateway needs the real node (routes reach real pods only): $WHY" >&2
  exit 1
fi
say "Starting the local cluster with its real node (the first run builds them, 15-35 min)"
GREENLIGHT_REAL_NODE=1 hack/cluster up
eval "$(hack/cluster env)"
say "Starting Traefik, a real Gateway API implementation, on 127.0.0.1:18480 (hack/gateway)"
hack/gateway up
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
hack/wait-crds
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
greenlight run -n "$NS" >"$LOG" 2>&1 &
OPERATOR=$!
LOOPS=()
cleanup() {
  for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$OPERATOR" 2>/dev/null || true
}
trap cleanup EXIT
wait_for() {  # wait_for <jsonpath> <value>
  for _ in $(seq 1 240); do
    [[ "$(kubectl get release web -n "$NS" -o jsonpath="$1")" == "$2" ]] && return 0
    kill -0 "$OPERATOR" 2>/dev/null || { echo "operator exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.5
  done
  echo "timed out waiting for $1 == $2" >&2; exit 1
}
traffic() { kubectl get release web -n "$NS" -o jsonpath='{.status.traffic}{"\n"}'; }

say "Release v1 behind the Gateway: Greenlight writes HTTPRoute web (rule live: v1 100%)"
kubectl apply -n "$NS" -f examples/gateway-release.yaml
wait_for '{.status.phase}' Healthy
traffic
say "Two request loops from now on, 4 keep-alive connections each: users, and a tester (x-canary: 1)"
python -m tests.e2e.traffic 127.0.0.1 18480 20 --keep-alive --header "Host:$HOST" --label "users " &
LOOPS+=($!)
python -m tests.e2e.traffic 127.0.0.1 18480 5 --keep-alive --header "Host:$HOST" \
  --header "x-canary:1" --label "tester" &
LOOPS+=($!)
sleep 3

say "Release v2: a 10% canary step. The tester reaches v2 at once (rule preview); users: 10% on v2"
sed 's#local.test/sample-app:v1#local.test/sample-app:v2#' examples/gateway-release.yaml |
  kubectl apply -n "$NS" -f - >/dev/null
wait_for '{.status.phase}' Paused
traffic
kubectl get deploy -n "$NS" -L greenlight.dev/revision
sleep 6

say "Promote: the last step moves 100% of requests to v2, one route write; the preview rule goes"
kubectl greenlight promote web -n "$NS" >/dev/null
wait_for '{.status.liveRevision}' 2
wait_for '{.status.phase}' Healthy
traffic
sleep 4
for p in "${LOOPS[@]}"; do kill "$p"; wait "$p" || true; done
LOOPS=()
kubectl greenlight get web -n "$NS"

say "Done. The cluster and Traefik are still up:"
echo "  $(hack/cluster env)"
echo "  curl -H 'Host: $HOST' http://127.0.0.1:18480/version"
echo "  kubectl get httproute web -n $NS -o yaml   # the route Greenlight owns"
echo "  make cluster-down                            # remove the cluster (and stop Traefik)"
