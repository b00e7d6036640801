#!/usr/bin/env bash
# make e2e: the e2e tests (tests/e2e), everything real.
#   - the images, built with Docker (hack/build-images.sh) and run as containers;
#   - a cluster with a real node on this machine (REAL_NODES=1 hack/cluster.sh up, named
#     $BGJ_E2E_CLUSTER, default backgroundjobs-e2e; the node's binaries built by
#     `hack/build-cluster-tools.sh node`),
#     the images loaded into its containerd, the chart installed, the scenarios run in pods.
# With KUBECONFIG set, the cluster tests run against that cluster instead (kind: see
# hack/e2e-kind.sh), which must already have the images. Where no real node can run here
# (not root, not Linux) the cluster tests are skipped with the reason; where Docker cannot
# run, all e2e tests are.
#
# The cluster is left running for the next run (seconds when warm); `make e2e-down` removes
# it. Arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
VENV=${VENV:-$CACHE/venv}
export PATH=$VENV/bin:$CACHE/bin:$PATH
cd "$root"
"$VENV/bin/python" -m pytest -m e2e tests/e2e "$@"
