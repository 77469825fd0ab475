#!/usr/bin/env bash
# The main job, unattended: a local cluster, the operator, and a Release flipping blue -> green,
# then undone. Run it as `make demo`.
# With a real node (hack/realnode; needs root): the sample app runs in real pods and a live
# request loop sends requests to the live Service throughout: v1, then v2 after the flip, then v1
# after the undo, with the count of failed requests. Without one (not root, or it fails to start,
# or GREENLIGHT_REAL_NODE=0): the same story on kwok's fake nodes, and the demo says why.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=${DEMO_NAMESPACE:-demo}
LOG=${TMPDIR:-/tmp}/greenlight-demo-operator.log
say() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

REAL=0 WHY=
if [[ "${GREENLIGHT_REAL_NODE:-1}" == 0 ]]; then
  WHY="GREENLIGHT_REAL_NODE=0"
elif ! WHY="$(hack/realnode preflight)"; then
  :
else
  say "Starting the local Kubernetes control plane and a real node (the first run builds them, 15-35 min)"
  if GREENLIGHT_REAL_NODE=1 hack/cluster up; then
    REAL=1
  else
    WHY="the real node did not come up (see above; logs in ~/.cache/greenlight/realnode/)"
  fi
fi
if [[ "$REAL" == 0 ]]; then
  say "No real node: $WHY. Falling back to kwok's fake nodes (pods are simulated, no real traffic)"
  GREENLIGHT_REAL_NODE=0 hack/cluster up
fi
eval "$(hack/cluster env)"
MANIFEST=examples/web-release.yaml V1=web:1.0.0 V2=web:2.0.0
if [[ "$REAL" == 1 ]]; then MANIFEST=examples/sample-app-release.yaml V1=sample-app:v1 V2=sample-app:v2; fi

say "Installing the Release CRD and starting the operator (log: $LOG)"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
hack/wait-crds  # kubectl wait fails at once on a CRD whose status is not there yet
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
greenlight run -n "$NS" >"$LOG" 2>&1 &
OPERATOR=$!
WATCH= LOOP=
cleanup() {
  [[ -n "$WATCH" ]] && kill "$WATCH" 2>/dev/null
  [[ -n "$LOOP" ]] && kill "$LOOP" 2>/dev/null
  kill "$OPERATOR" 2>/dev/null || true
}
trap cleanup EXIT

watch_release() {  # the Release's printer columns, one line per change
  kubectl get release web -n "$NS" --watch-only -o custom-columns='PHASE:.status.phase,LIVE:.status.liveRevision,COLOR:.status.liveColor,CANDIDATE:.status.candidateRevision,READY:.status.readyReplicas,MESSAGE:.status.message' &
  WATCH=$!
}
wait_for() {  # wait_for <jsonpath> <value>
  for _ in $(seq 1 240); do
    [[ "$(kubectl get release web -n "$NS" -o jsonpath="$1")" == "$2" ]] && return 0
    kill -0 "$OPERATOR" 2>/dev/null || { echo "operator exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.5
  done
  echo "timed out waiting for $1 == $2" >&2; exit 1
}
serving() {
  printf 'live Service web selects: %s\n' "$(kubectl get svc web -n "$NS" -o jsonpath='{.spec.selector}')"
  kubectl get deploy -n "$NS" -L greenlight.dev/revision,greenlight.dev/color
}

say "Release $V1 (blue): the first revision fills the live Service directly"
kubectl apply -n "$NS" -f "$MANIFEST"
wait_for '{.status.phase}' Healthy
serving
if [[ "$REAL" == 1 ]]; then
  IP="$(kubectl get svc web -n "$NS" -o jsonpath='{.spec.clusterIP}')"
  say "Live traffic: 20 requests/s to the live Service (ClusterIP $IP), through kube-proxy, from now on"
  python -m tests.e2e.traffic "$IP" 80 20 &
  LOOP=$!
  sleep 3
fi

say "Release $V2: green comes up beside blue; the live Service flips when every green pod is ready"
watch_release
sed "s#$V1#$V2#" "$MANIFEST" | kubectl apply -n "$NS" -f - >/dev/null
wait_for '{.status.liveRevision}' 2
wait_for '{.status.phase}' Healthy
sleep 1; kill "$WATCH"; WATCH=
serving

[[ -z "$LOOP" ]] || sleep 3
say "Undo: back to $V1; blue is still warm, so the flip is instant (no new pods)"
watch_release
kubectl greenlight undo web -n "$NS" >/dev/null   # = kubectl annotate release web greenlight.dev/undo=
wait_for '{.status.liveRevision}' 1
# the spec still says $V2: the undo holds (Degraded, reason Undone) until the spec changes,
# so a GitOps sync of the same spec cannot undo it
wait_for '{.status.phase}' Degraded
sleep 1; kill "$WATCH"; WATCH=
serving
if [[ -n "$LOOP" ]]; then
  sleep 3
  kill "$LOOP"; wait "$LOOP" || true; LOOP=
fi
kubectl greenlight get web -n "$NS"

say "Done. The cluster is still up:"
echo "  $(hack/cluster env)"
echo "  kubectl get releases -n $NS        # Release status"
echo "  kubectl greenlight get web -n $NS  # one Release, its revisions and history"
echo "  greenlight run -n $NS              # run the operator again"
echo "  make cluster-down                   # remove the cluster"
