#!/usr/bin/env bash
# Prints the path of helm $HELM_VERSION (hack/versions.env), built from the Go module proxy into
# ~/.cache/greenlight/tools/ on first use (a few minutes on 2 cores; instant afterwards).
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HACK/versions.env"
DIR="${GREENLIGHT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/greenlight}/tools/helm-$HELM_VERSION"
if [[ ! -x "$DIR/helm" ]]; then
  echo "[helm] building helm $HELM_VERSION into $DIR (first use only)" >&2
  command -v go >/dev/null || { echo "[helm] needs Go on PATH" >&2; exit 1; }
  GOBIN="$DIR" GOFLAGS= go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
fi
echo "$DIR/helm"
