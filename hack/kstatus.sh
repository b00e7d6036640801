#!/usr/bin/env bash
# Builds hack/kstatus (kstatus, the status library Flux, kpt and Config Sync wait with, as a
# command) into the cache, once per machine and again when its sources change:
# tests/integration/test_gitops_health.py asks it what those tools see of real BackgroundJobs.
#
#   bash hack/kstatus.sh        # -> $BACKGROUNDJOBS_CACHE/bin/kstatus (~/.cache/backgroundjobs)
#
# A cold build takes about 30 s (apimachinery and cli-utils from the Go module proxy).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
BIN=$CACHE/bin
stamp=$BIN/.kstatus.stamp
mkdir -p "$BIN"
want=$(cat "$root"/hack/kstatus/{go.mod,go.sum,main.go} | sha256sum | cut -c1-16)
if [[ -x $BIN/kstatus && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "[kstatus] up to date: $BIN/kstatus"
  exit 0
fi
echo "[kstatus] building hack/kstatus (sigs.k8s.io/cli-utils/pkg/kstatus) ..."
t0=$SECONDS
(cd "$root/hack/kstatus" && CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-buildvcs=false \
  go build -trimpath -ldflags="-s -w" -o "$BIN/kstatus" .)
echo "$want" > "$stamp"
echo "[kstatus] built in $((SECONDS - t0))s -> $BIN/kstatus"
