#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy into a cache outside the repo:
#   kube-apiserver, kube-controller-manager, kube-scheduler, and for the real node (hack/realnode)
#   kubelet and kube-proxy (k8s.io/kubernetes via hack/go/k8s),
#   etcd (hack/go/etcd), kwok and kwokctl (hack/go/kwok).
# Idempotent: a second run with the same versions returns at once. Checksums come from the
# committed go.sum files (-mod=readonly) and the Go checksum database.
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HACK/versions.env"
CACHE="${GREENLIGHT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/greenlight}"
BIN="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
NAMES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd kwok kwokctl)

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have_all() { for n in "${NAMES[@]}"; do [[ -x "$BIN/$n" ]] || return 1; done; }

if have_all; then echo "$BIN"; exit 0; fi
command -v go >/dev/null || { log "Go is missing: install Go >= 1.26 (https://go.dev/dl) and retry"; exit 2; }
proxy="$(go env GOPROXY)"
if [[ "$proxy" == "off" ]]; then log "GOPROXY is off: the build needs the Go module proxy"; exit 2; fi

mkdir -p "$BIN"
export GOFLAGS="-mod=readonly -trimpath"
export CGO_ENABLED=0
# Progress: go build -v prints each package as it is compiled; we print a count every 30 s.
build() { # build <dir> <label> <go build args...>
  local dir="$1" label="$2"; shift 2
  local out; out="$(mktemp)"
  log "building $label (cold builds take several minutes on 2 cores)"
  local start=$SECONDS
  ( cd "$dir" && go build -v "$@" ) >"$out" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && log "$label: $(wc -l <"$out") packages compiled, $((SECONDS - start)) s"
  done
  if ! wait "$pid"; then
    grep -v '^[a-z0-9./_-]*$' "$out" | tail -40 >&2 || tail -40 "$out" >&2
    log "FAILED: $label (if the proxy refused a module, check GOPROXY=$proxy)"
    exit 1
  fi
  log "$label done in $((SECONDS - start)) s"
  rm -f "$out"
}

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ld="-s -w"
for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean \
          "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
  ld+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
done

if [[ ! -x "$BIN/etcd" ]]; then
  build "$HACK/go/etcd" "etcd $ETCD_VERSION" -ldflags "-s -w" -o "$BIN/etcd.tmp" . && mv "$BIN/etcd.tmp" "$BIN/etcd"
fi
if [[ ! -x "$BIN/kwok" || ! -x "$BIN/kwokctl" ]]; then
  kld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$K8S_VERSION"
  tmp="$BIN/.kwok.tmp"; mkdir -p "$tmp"
  build "$HACK/go/kwok" "kwok + kwokctl $KWOK_VERSION" -ldflags "$kld" -o "$tmp/" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  mv "$tmp/kwok" "$tmp/kwokctl" "$BIN/" && rmdir "$tmp"
fi
if [[ ! -x "$BIN/kube-apiserver" || ! -x "$BIN/kube-controller-manager" || ! -x "$BIN/kube-scheduler" ]]; then
  tmp="$BIN/.k8s.tmp"; mkdir -p "$tmp"
  build "$HACK/go/k8s" "kube-apiserver, kube-controller-manager, kube-scheduler $K8S_VERSION" \
    -ldflags "$ld" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
  mv "$tmp"/kube-* "$BIN/" && rmdir "$tmp"
fi
if [[ ! -x "$BIN/kubelet" || ! -x "$BIN/kube-proxy" ]]; then # the real node; reuses the cache above
  tmp="$(mktemp -d "$BIN/.node.XXXXXX")" # unique: two concurrent runs must not share it
  build "$HACK/go/k8s" "kubelet, kube-proxy $K8S_VERSION" -ldflags "$ld" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  mv "$tmp"/kube* "$BIN/" && rmdir "$tmp"
fi
have_all || { log "some binaries are missing from $BIN"; exit 1; }
log "all binaries in $BIN"
echo "$BIN"
