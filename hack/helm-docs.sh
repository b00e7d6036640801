#!/usr/bin/env bash
# Builds helm-docs (the chart README's values table, generated from values.yaml's "# --"
# comments) from the Go module proxy into the cache, once per machine, and runs it on the
# chart when asked to:
#
#   bash hack/helm-docs.sh                 # build only -> $BACKGROUNDJOBS_CACHE/bin/helm-docs
#   bash hack/helm-docs.sh generate        # build if needed, then write charts/*/README.md
#   bash hack/helm-docs.sh print [ROOT]    # print the READMEs of the charts under ROOT
#                                          # (default charts/) instead of writing them
#
# The README comes from charts/backgroundjobs-operator/README.md.gotmpl; `make chart` runs
# the generate step and tests/unit/test_chart_docs.py (print) fails when the committed README
# is stale.
# A cold build takes about a minute; a warm run checks the stamp and does nothing.
set -euo pipefail

HELM_DOCS_VERSION=${HELM_DOCS_VERSION:-v1.14.2}
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
BIN=$CACHE/bin
stamp=$BIN/.helm-docs.stamp
mkdir -p "$BIN"

mode=${1:-build}
if [[ -x $BIN/helm-docs && -f $stamp && $(cat "$stamp") == "$HELM_DOCS_VERSION" ]]; then
  [[ $mode != build ]] || echo "[helm-docs] up to date ($HELM_DOCS_VERSION): $BIN/helm-docs"
else
  echo "[helm-docs] building github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION ..." >&2
  t0=$SECONDS
  CGO_ENABLED=0 GOBIN=$BIN GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags="-s -w" \
    "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
  echo "$HELM_DOCS_VERSION" > "$stamp"
  echo "[helm-docs] built in $((SECONDS - t0))s -> $BIN/helm-docs" >&2
fi

run() {  # run CHART_ROOT [helm-docs options...]
  local charts=$1
  shift
  "$BIN/helm-docs" --chart-search-root "$charts" --template-files README.md.gotmpl \
    --sort-values-order file --log-level warning "$@"
}
case $mode in
  build) ;;
  generate) run "$root/charts" ;;
  print) run "${2:-$root/charts}" --dry-run ;;
  *) echo "usage: $0 [build|generate|print [CHART_ROOT]]" >&2; exit 2 ;;
esac
