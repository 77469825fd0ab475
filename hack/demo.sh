#!/usr/bin/env bash
# The main job, unattended: a local cluster, the operator, and a Release flipping blue -> green,
# then undone. Run it as `make demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=${DEMO_NAMESPACE:-demo}
LOG=${TMPDIR:-/tmp}/greenlight-demo-operator.log
say() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

say "Starting the local Kubernetes control plane (kwok; the first run builds it, 10-30 min)"
hack/cluster up
eval "$(hack/cluster env)"

say "Installing the Release CRD and starting the operator (log: $LOG)"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/releases.greenlight.dev >/dev/null
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
greenlight run -n "$NS" >"$LOG" 2>&1 &
OPERATOR=$!
WATCH=
cleanup() { [[ -n "$WATCH" ]] && kill "$WATCH" 2>/dev/null; kill "$OPERATOR" 2>/dev/null || true; }
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

say "Release v1.0.0 (blue): the first revision fills the live Service directly"
kubectl apply -n "$NS" -f examples/web-release.yaml
wait_for '{.status.phase}' Healthy
serving

say "Release v2.0.0: green comes up beside blue; the live Service flips when every green pod is ready"
watch_release
sed 's#web:1.0.0#web:2.0.0#' examples/web-release.yaml | kubectl apply -n "$NS" -f - >/dev/null
wait_for '{.status.liveRevision}' 2
wait_for '{.status.phase}' Healthy
sleep 1; kill "$WATCH"; WATCH=
serving

say "Undo: back to v1.0.0; blue is still warm, so the flip is instant (no new pods)"
watch_release
kubectl greenlight undo web -n "$NS" >/dev/null   # = kubectl annotate release web greenlight.dev/undo=
wait_for '{.status.liveRevision}' 3
wait_for '{.status.phase}' Healthy
sleep 1; kill "$WATCH"; WATCH=
serving
kubectl greenlight get web -n "$NS"

say "Done. The cluster is still up:"
echo "  $(hack/cluster env)"
echo "  kubectl get releases -n $NS        # Release status"
echo "  kubectl greenlight get web -n $NS  # one Release, its revisions and history"
echo "  greenlight run -n $NS              # run the operator again"
echo "  make cluster-down                   # remove the cluster"
