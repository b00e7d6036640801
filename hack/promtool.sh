#!/usr/bin/env bash
# Builds promtool (Prometheus' rule and PromQL checker) from the Go module proxy into the
# cache, once per machine: tests/unit/test_dashboard.py runs the chart's PrometheusRule and
# every Grafana query through it (and skips those two tests without it).
#
#   bash hack/promtool.sh        # -> $BACKGROUNDJOBS_CACHE/bin/promtool (~/.cache/backgroundjobs)
#
# The module pulls in every service-discovery SDK of Prometheus: a cold build takes about
# 10-15 minutes on 2 cores; a warm run checks the stamp and does nothing.
set -euo pipefail

PROMETHEUS_MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.316.0}  # go 1.26.7
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
BIN=$CACHE/bin
stamp=$BIN/.promtool.stamp
mkdir -p "$BIN"

if [[ -x $BIN/promtool && -f $stamp && $(cat "$stamp") == "$PROMETHEUS_MODULE_VERSION" ]]; then
  echo "[promtool] up to date ($PROMETHEUS_MODULE_VERSION): $BIN/promtool"
  exit 0
fi
echo "[promtool] building github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION ..."
t0=$SECONDS
CGO_ENABLED=0 GOBIN=$BIN GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-buildvcs=false \
  go install -trimpath -ldflags="-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
echo "$PROMETHEUS_MODULE_VERSION" > "$stamp"
echo "[promtool] built in $((SECONDS - t0))s -> $BIN/promtool"
