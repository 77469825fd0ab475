#!/usr/bin/env bash
# manifests/greenlight.yaml as it should be: charts/greenlight rendered with its defaults, plus
# the Namespace (`kubectl apply -f` has no --create-namespace). `make manifests` writes it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELM="$("$ROOT/hack/helm.sh")"
echo "# Rendered from charts/greenlight by \`make manifests\`: edit the chart, not this file."
echo "# Install: kubectl apply --server-side -f crds/ && kubectl apply -f manifests/"
# helm warns on stderr that charts/greenlight/crds is a symlink (to crds/): expected
"$HELM" template greenlight "$ROOT/charts/greenlight" --namespace greenlight-system \
  --set createNamespace=true 2> >(grep -v 'found symbolic link in path' >&2)
