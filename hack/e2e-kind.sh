#!/usr/bin/env bash
# make e2e-kind: the same e2e tests on a kind cluster, for users with Docker and image pulls
# (kind's node image, kindest/node, comes from a registry). It cannot run on the project's
# own machines, where no image can be pulled: there `make e2e` runs a real node without one.
#
#   1. kind (sigs.k8s.io/kind, built from Go modules into the cache) creates cluster
#      $KIND_CLUSTER (default bgj-e2e) unless it exists;
#   2. hack/build-images.sh builds the images and `kind load docker-image` copies them to
#      the nodes;
#   3. pytest -m e2e tests/e2e with KUBECONFIG=<the kind cluster's>: the tests install the
#      chart and run the scenarios through KUBECONFIG alone.
# `kind delete cluster --name bgj-e2e` removes it. Arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
VENV=${VENV:-$CACHE/venv}
BIN=$CACHE/bin
KIND_VERSION=${KIND_VERSION:-v0.33.0}
KIND_CLUSTER=${KIND_CLUSTER:-bgj-e2e}
export PATH=$VENV/bin:$BIN:$PATH
cd "$root"

docker info >/dev/null 2>&1 || { echo "[e2e-kind] needs a running Docker engine" >&2; exit 1; }
if [[ ! -x $BIN/kind || $("$BIN/kind" version 2>/dev/null) != *"$KIND_VERSION"* ]]; then
  echo "[e2e-kind] building kind $KIND_VERSION from Go modules"
  GOBIN=$BIN go install "sigs.k8s.io/kind@$KIND_VERSION"
fi
kubeconfig=$CACHE/kind-$KIND_CLUSTER.kubeconfig
if ! kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  kind create cluster --name "$KIND_CLUSTER" --kubeconfig "$kubeconfig" --wait 5m
else
  kind get kubeconfig --name "$KIND_CLUSTER" >"$kubeconfig"
fi
bash hack/build-images.sh
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
for image in base examples operator; do
  kind load docker-image --name "$KIND_CLUSTER" "backgroundjobs/$image:$version"
done
KUBECONFIG=$kubeconfig "$VENV/bin/python" -m pytest -m e2e tests/e2e "$@"
