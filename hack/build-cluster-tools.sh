#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd, kwok, kwokctl, helm) from Go modules into a cache outside the repository, once per
# machine. A warm second run checks the stamps and does nothing. Kueue's manager is a group
# of its own (`kueue`), built by `make test-kueue` and `make kueue-up` only: its cold build
# compiles ~1,600 packages (10-40 minutes on 2 cores), too long for every fresh set-up.
#
#   hack/build-cluster-tools.sh            the control plane (all of the above but Kueue)
#   hack/build-cluster-tools.sh node       what a real node adds (hack/node.sh): kubelet,
#                                          kube-proxy, containerd 2.x with its runc shim and
#                                          ctr, the CNI plugins, CoreDNS and the pause binary
#   hack/build-cluster-tools.sh etcd|kwok|k8s|helm|kueue   one group (kueue: hack/kueue.sh build)
#
# Nothing here downloads a release binary: every binary is compiled from the Go module proxy
# (the pause binary from the C source shipped in the k8s.io/kubernetes module).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"

CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
BIN=$CACHE/bin
WORK=$CACHE/build
mkdir -p "$BIN" "$WORK"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local}

step() {  # step NAME STAMP-KEY command...: runs a build step once, timing it
  local name=$1 key=$2; shift 2
  local stamp="$BIN/.${name//\//_}.stamp"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" && -x "$BIN/$name" ]]; then
    echo "[cluster-tools] $name: up to date ($key)"
    return 0
  fi
  echo "[cluster-tools] $name: building $key ..."
  local t0=$SECONDS
  if ! "$@"; then
    echo "[cluster-tools] FAILED step '$name' ($key) after $((SECONDS - t0))s; see the go output above" >&2
    exit 1
  fi
  echo "$key" > "$stamp"
  echo "[cluster-tools] $name: built in $((SECONDS - t0))s -> $BIN/$name"
}

# --- kubernetes: a consumer module whose replacements come from kubernetes' own go.mod ---
k8s_module() {
  local dir=$WORK/kubernetes-$K8S_VERSION
  if [[ -f $dir/.ready ]]; then return 0; fi
  rm -rf "$dir"; mkdir -p "$dir"
  echo "[cluster-tools] generating consumer go.mod for k8s.io/kubernetes $K8S_VERSION"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])') || return 1
  local staging_version="v0.${K8S_VERSION#v1.}"
  python3 "$here/k8s_consumer_gomod.py" "$gomod" "$K8S_VERSION" "$staging_version" \
    > "$dir/go.mod" || return 1
  cat > "$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
  # tidy may complain about test-only packages of k8s.io/kubernetes; the build below is the
  # real check, so its failure is tolerated (-e) and its noise hidden.
  (cd "$dir" && { go mod tidy -e >/dev/null 2>&1 || true; } && go mod download) || return 1
  touch "$dir/.ready"
}

k8s_ldflags() {
  local v=$K8S_VERSION minor
  minor=${v#v1.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  echo "-s -w -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X k8s.io/client-go/pkg/version.gitVersion=$v"
}

build_k8s() {
  local name=$1
  k8s_module
  # The kubelet is the one component built with cgo, as upstream builds it.
  local cgo=0
  [[ $name == kubelet ]] && cgo=1
  (cd "$WORK/kubernetes-$K8S_VERSION" && CGO_ENABLED=$cgo go build -trimpath -ldflags "$(k8s_ldflags)" -o "$BIN/$name" "k8s.io/kubernetes/cmd/$name")
}

# --- a real node (hack/node.sh) ---
# containerd 2.x: Kubernetes 1.35 was the last release to support containerd 1.x, whose CRI
# also lacks the RuntimeConfig call the 1.36 kubelet asks for the cgroup driver.
build_containerd() {
  local dir=$WORK/containerd-$CONTAINERD_VERSION
  init_module "$dir" local/containerd-build || return 1
  local m=github.com/containerd/containerd/v2
  local ld="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Revision=module-proxy"
  # Static, without the btrfs and devmapper snapshotters (cgo, unused: overlayfs is).
  (cd "$dir" && go get "$m@$CONTAINERD_VERSION" \
    && for cmd in containerd containerd-shim-runc-v2 ctr; do
      go build -trimpath -tags "no_btrfs no_devmapper" -ldflags "$ld" -o "$BIN/$cmd" "$m/cmd/$cmd" || exit 1
    done)
}

build_cni() {  # the CNI plugins of the node's pod network, into $BIN/cni/
  local dir=$WORK/cni-plugins-$CNI_PLUGINS_VERSION
  init_module "$dir" local/cni-build || return 1
  local m=github.com/containernetworking/plugins
  local ld="-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION"
  mkdir -p "$BIN/cni"
  (cd "$dir" && go get "$m@$CNI_PLUGINS_VERSION" \
    && for plugin in main/bridge main/loopback ipam/host-local meta/portmap; do
      go build -trimpath -ldflags "$ld" -o "$BIN/cni/${plugin#*/}" "$m/plugins/$plugin" || exit 1
    done)
}

build_coredns() {  # CoreDNS with only the plugins the node's Corefile uses (hack/node/coredns)
  local dir=$WORK/coredns-$COREDNS_VERSION
  init_module "$dir" local/coredns-build || return 1
  cp "$here/node/coredns/main.go" "$dir/main.go"
  local ld="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  (cd "$dir" && go get "github.com/coredns/coredns@$COREDNS_VERSION" && go mod tidy >/dev/null \
    && go build -trimpath -ldflags "$ld" -o "$BIN/coredns" .)
}

build_pause() {  # the pod sandbox's process, from kubernetes' own C source
  k8s_module
  local src
  src=$(cd "$WORK/kubernetes-$K8S_VERSION" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
  gcc -Os -static -Wall -Werror -DVERSION="$K8S_VERSION" -o "$BIN/pause" "$src" && strip "$BIN/pause"
}

init_module() {  # init_module DIR MODULE: an empty consumer module to `go get` into
  mkdir -p "$1"
  [[ -f $1/go.mod ]] || (cd "$1" && go mod init "$2" >/dev/null 2>&1)
}

# --- etcd: built from go.etcd.io/etcd/server/v3 in a consumer module ---
build_etcd() {
  local dir=$WORK/etcd-$ETCD_VERSION
  init_module "$dir" local/etcd-build || return 1
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go get "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" \
    && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3 \
    && go build -trimpath -ldflags "-s -w" -o "$BIN/etcdctl" go.etcd.io/etcd/etcdctl/v3)
}

build_kwok() {
  local dir=$WORK/kwok-$KWOK_VERSION
  init_module "$dir" local/kwok-build || return 1
  local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$K8S_VERSION"
  (cd "$dir" && go get "sigs.k8s.io/kwok@$KWOK_VERSION" \
    && go build -trimpath -ldflags "$ld" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok \
    && go build -trimpath -ldflags "$ld" -o "$BIN/kwokctl" sigs.k8s.io/kwok/cmd/kwokctl)
}

build_helm() {
  local dir=$WORK/helm-$HELM_VERSION
  init_module "$dir" local/helm-build || return 1
  (cd "$dir" && go get "helm.sh/helm/v3@$HELM_VERSION") || return 1
  # As helm's release build does: the Kubernetes version that `helm template` and `helm lint`
  # assume without --kube-version is the client-go helm is built with (v0.34.x -> 1.34).
  # Without it they assume 1.20, and a chart's kubeVersion (>=1.31) refuses to render.
  local client_go major minor
  client_go=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/client-go) || return 1
  client_go=${client_go#v}
  major=$(( ${client_go%%.*} + 1 ))
  minor=${client_go#*.}; minor=${minor%%.*}
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  (cd "$dir" && go build -trimpath -ldflags "$ld" -o "$BIN/helm" helm.sh/helm/v3/cmd/helm)
}

total0=$SECONDS
only=${1:-all}
case $only in all|etcd) step etcd "$ETCD_VERSION" build_etcd ;; esac
case $only in all|kwok) step kwok "$KWOK_VERSION/$K8S_VERSION" build_kwok; step kwokctl "$KWOK_VERSION/$K8S_VERSION" test -x "$BIN/kwokctl" ;; esac
case $only in all|k8s)
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    step "$c" "$K8S_VERSION" build_k8s "$c"
  done ;;
esac
case $only in all|helm) step helm "$HELM_VERSION/kube-ldflags" build_helm ;; esac
# Kueue's manager and CRDs (the hand-off of a queue with spec.kueue; its own stamp and cache).
case $only in kueue) bash "$here/kueue.sh" build || exit 1 ;; esac
case $only in node)
  step containerd "$CONTAINERD_VERSION" build_containerd
  for c in containerd-shim-runc-v2 ctr; do step "$c" "$CONTAINERD_VERSION" test -x "$BIN/$c"; done
  step cni/bridge "$CNI_PLUGINS_VERSION" build_cni
  for p in loopback host-local portmap; do step "cni/$p" "$CNI_PLUGINS_VERSION" test -x "$BIN/cni/$p"; done
  step coredns "$COREDNS_VERSION" build_coredns
  step pause "$K8S_VERSION" build_pause
  step kubelet "$K8S_VERSION" build_k8s kubelet
  step kube-proxy "$K8S_VERSION" build_k8s kube-proxy
  ;;
esac
echo "[cluster-tools] done in $((SECONDS - total0))s; binaries in $BIN"
