#!/usr/bin/env bash
# `make image`: the operator image from Dockerfile, without any container registry, and into the
# real node's containerd (k8s.io namespace) when it runs.
#   1. a private Docker engine (apt docker.io; its own socket, data and exec roots; no iptables,
#      no bridge), started here and stopped at the end unless one was already running
#   2. the base: a local stand-in tagged python:3.11-slim (the Dockerfile's FROM): a Debian
#      bookworm rootfs with python3 made by mmdebstrap, `docker import`ed, plus this host's CA
#      certificates (pip in the build needs them behind a TLS-inspecting proxy)
#   3. `docker build` with the classic builder (no BuildKit here), --network host
#   4. `docker save | ctr -n k8s.io images import -` when hack/realnode's containerd runs;
#      the archive also stays in ~/.cache/greenlight/images/greenlight.tar
# Needs root; installs docker.io and mmdebstrap from Debian's packages when missing.
# IMAGE overrides the tag (default: the chart's, ghcr.io/greenlight-dev/greenlight:<appVersion>).
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HACK")"
CACHE="${GREENLIGHT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/greenlight}"
OUT="$CACHE/images"
VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/charts/greenlight/Chart.yaml")"
IMAGE="${IMAGE:-ghcr.io/greenlight-dev/greenlight:$VERSION}"
BASE=python:3.11-slim
SUITE=bookworm # Debian 12: python3 is 3.11
DOCKER_RUN=/run/greenlight-docker
export DOCKER_HOST="unix://$DOCKER_RUN/docker.sock"
export DOCKER_BUILDKIT=0
CTRD_SOCK=/run/greenlight-containerd/containerd.sock # hack/realnode's

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

apt_install() { # apt_install <package...>: no service is started by the packages' scripts
  local added= rc=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then # Debian's switch for "do not start daemons now"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added=1
  fi
  apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || rc=$?
  [[ -z "$added" ]] || rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

[[ "$(id -u)" == 0 ]] || die "needs root (a Docker engine and mmdebstrap); see README 'Real node'"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian's packages"
  apt_install "${missing[@]}"
fi
# Debian's client, matching its engine (a newer client on PATH negotiates down; either works)
DOCKER=/usr/bin/docker
[[ -x "$DOCKER" ]] || DOCKER="$(command -v docker)"
mkdir -p "$OUT" "$DOCKER_RUN"

started=
stop_docker() {
  [[ -n "$started" ]] || return 0
  kill "$started" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$started" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$started" 2>/dev/null || true
  # it leaves its default network namespace mounted
  awk -v r="$DOCKER_RUN/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r umount -l
  rm -rf "$DOCKER_RUN"
}
trap stop_docker EXIT
if ! "$DOCKER" info >/dev/null 2>&1; then
  log "starting a private Docker engine (log: $OUT/dockerd.log)"
  setsid dockerd --host "$DOCKER_HOST" --data-root /var/lib/greenlight-docker \
    --exec-root "$DOCKER_RUN/exec" --pidfile "$DOCKER_RUN/dockerd.pid" \
    --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false --bridge=none \
    >"$OUT/dockerd.log" 2>&1 </dev/null &
  started=$!
  for _ in $(seq 1 120); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 0.5; done
  "$DOCKER" info >/dev/null 2>&1 || { tail -20 "$OUT/dockerd.log" >&2; die "dockerd did not start"; }
fi

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  rootfs="$OUT/python3-$SUITE-rootfs.tar"
  if [[ ! -s "$rootfs" ]]; then
    log "building the base rootfs with mmdebstrap (Debian $SUITE, python3; about 2 min)"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-pip,ca-certificates \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --format=tar "$SUITE" "$rootfs.tmp" >&2
    mv "$rootfs.tmp" "$rootfs"
  fi
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"; stop_docker' EXIT
  "$DOCKER" import -c 'CMD ["python3"]' "$rootfs" "local/debian-python:3.11-$SUITE" >/dev/null
  cp /usr/local/share/ca-certificates/*.crt "$ctx/" 2>/dev/null || true
  cat >"$ctx/Dockerfile" <<EOF
FROM local/debian-python:3.11-$SUITE
COPY . /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/Dockerfile && update-ca-certificates \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python && ln -sf /usr/bin/pip3 /usr/local/bin/pip
# Debian marks its python as externally managed (PEP 668); this image is only for the operator
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
EOF
  log "building the base image $BASE (a local stand-in)"
  "$DOCKER" build -q --network host -t "$BASE" "$ctx" >/dev/null
fi

log "building $IMAGE from Dockerfile (classic builder)"
start=$SECONDS
"$DOCKER" build -q --network host -t "$IMAGE" "$ROOT" >/dev/null
log "built $IMAGE in $((SECONDS - start)) s"
"$DOCKER" save "$IMAGE" -o "$OUT/greenlight.tar.tmp" && mv "$OUT/greenlight.tar.tmp" "$OUT/greenlight.tar"
if [[ -S "$CTRD_SOCK" ]] && ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; then
  ctr --address "$CTRD_SOCK" -n k8s.io images import "$OUT/greenlight.tar" >/dev/null
  log "imported $IMAGE into the real node's containerd (k8s.io)"
else
  log "the real node is not running: $OUT/greenlight.tar is imported when it starts"
fi
echo "$IMAGE"
