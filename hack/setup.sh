#!/usr/bin/env bash
# One-time set-up of a machine: the Python venv (outside the repo) and the cluster binaries.
# Safe to run again: a warm run checks and returns in seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
VENV=$CACHE/venv
mkdir -p "$CACHE"

t0=$SECONDS
stamp=$VENV/.installed
want=$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16)
if [[ ! -x $VENV/bin/python ]]; then
  echo "[setup] creating venv $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip
fi
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" || ! -f "$VENV/bin/bgjobs" ]]; then
  echo "[setup] installing backgroundjobs[dev] (editable) into $VENV"
  "$VENV/bin/pip" install -q -e "$root[dev]"
  echo "$want" > "$stamp"
else
  # The editable install points at whichever clone installed it last; keep it on this one.
  if ! "$VENV/bin/python" -c "import backgroundjobs,sys; sys.exit(0 if backgroundjobs.__file__.startswith('$root/') else 1)" 2>/dev/null; then
    echo "[setup] re-pointing the editable install at $root"
    "$VENV/bin/pip" install -q --no-deps -e "$root"
  fi
fi
echo "[setup] python environment ready in $((SECONDS - t0))s"
[[ ${1:-} == venv ]] && exit 0
bash "$root/hack/build-cluster-tools.sh"
bash "$root/hack/kstatus.sh"  # what GitOps tools see (tests/integration/test_gitops_health.py)
