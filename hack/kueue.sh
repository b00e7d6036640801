#!/usr/bin/env bash
# Kueue for the hand-off of a BackgroundJobQueue with `spec.kueue` (docs/API.md, "queues"):
# its manager built from the Go module proxy and run as a local process against a cluster.
#
#   hack/kueue.sh build     build the manager into the cache (once; a second run is instant)
#                           and keep its CRDs (the module's config/components/crd/bases)
#   hack/kueue.sh crds      only the CRDs, from the module source (no build), and print
#                           their directory
#   hack/kueue.sh up        build, install the CRDs, a ResourceFlavor, a ClusterQueue with a
#                           small CPU quota and a LocalQueue, then start the manager (or reuse
#                           the running one) and wait until the ClusterQueue is Active
#   hack/kueue.sh down      stop the manager (the CRDs and queues stay)
#   hack/kueue.sh status    the manager's pid and the ClusterQueue's usage
#
# Environment: BGJ_CLUSTER (the cluster of hack/cluster.sh, its kubeconfig unless KUBECONFIG
# is set), KUEUE_CLUSTER_QUEUE (default backgroundjobs), KUEUE_CPU (its CPU quota, default 2),
# KUEUE_LOCAL_QUEUE (default: the ClusterQueue's name), KUEUE_NAMESPACE (of the LocalQueue, default
# default).
#
# No image, no webhook: the operator creates its Jobs already suspended with the LocalQueue's
# label, which is what Kueue's Job webhook would do, so the manager runs without its webhook
# configurations and without internal cert management. It still starts a webhook server (a
# self-signed certificate in the cluster's directory, a free local port nobody calls) and
# reads a metrics certificate from a fixed path, /etc/kueue/metrics/certs: the manager runs in
# a private mount namespace (unshare) where /etc is an overlay holding that certificate, so
# nothing on the machine is written outside the cache. The Visibility API server is off.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"

CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
BIN=$CACHE/bin
WORK=$CACHE/build
VENV=${VENV:-$CACHE/venv}
KUBECTL=${KUBECTL:-$VENV/bin/kubectl}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE/kwok}
NAME=${BGJ_CLUSTER:-backgroundjobs}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$NAME
export KUBECONFIG=${KUBECONFIG:-$CLUSTER_DIR/kubeconfig.yaml}
RUN=$CLUSTER_DIR/kueue
CRDS=$CACHE/kueue-$KUEUE_VERSION/crds
CLUSTER_QUEUE=${KUEUE_CLUSTER_QUEUE:-backgroundjobs}
CPU=${KUEUE_CPU:-2}
LOCAL_QUEUE=${KUEUE_LOCAL_QUEUE:-$CLUSTER_QUEUE}
NAMESPACE=${KUEUE_NAMESPACE:-default}

log() { echo "[kueue:$NAME] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cmd_crds() {  # Kueue's CRDs from its module source, into $CRDS
  [[ -d $CRDS ]] && return 0
  local src
  src=$(GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local} go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') || die "cannot download sigs.k8s.io/kueue@$KUEUE_VERSION"
  rm -rf "$CRDS.tmp"; mkdir -p "$CRDS.tmp"
  cp "$src"/config/components/crd/bases/*.yaml "$CRDS.tmp/"
  mv "$CRDS.tmp" "$CRDS"
}

cmd_build() {
  local stamp=$BIN/.kueue.stamp
  if [[ -f $stamp && "$(cat "$stamp")" == "$KUEUE_VERSION" && -x $BIN/kueue && -d $CRDS ]]; then
    log "kueue: up to date ($KUEUE_VERSION)"
    return 0
  fi
  local dir=$WORK/kueue-$KUEUE_VERSION t0=$SECONDS
  log "kueue: building $KUEUE_VERSION from the Go module proxy ..."
  mkdir -p "$dir" "$BIN"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local}
  [[ -f $dir/go.mod ]] || (cd "$dir" && go mod init local/kueue-build >/dev/null 2>&1)
  local ld="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"
  (cd "$dir" && go get "sigs.k8s.io/kueue@$KUEUE_VERSION" \
    && go build -trimpath -ldflags "$ld" -o "$BIN/kueue" sigs.k8s.io/kueue/cmd/kueue) \
    || die "building kueue $KUEUE_VERSION failed; see the go output above"
  cmd_crds
  echo "$KUEUE_VERSION" > "$stamp"
  log "kueue: built in $((SECONDS - t0))s -> $BIN/kueue"
}

running_pid() {  # the manager's pid when it runs
  local pid
  pid=$(cat "$RUN/kueue.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_queues() {
  # Server-side apply: Kueue's CRDs are too large for the last-applied annotation.
  "$KUBECTL" apply --server-side --force-conflicts -f "$CRDS" >/dev/null
  "$KUBECTL" wait --for=condition=Established --timeout=60s -f "$CRDS" >/dev/null
  "$KUBECTL" apply --server-side --force-conflicts -f - >/dev/null <<YAML
# The manager's own namespace (its configuration's default), where it would keep its objects.
apiVersion: v1
kind: Namespace
metadata:
  name: kueue-system
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata:
  name: default-flavor
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata:
  name: $CLUSTER_QUEUE
spec:
  namespaceSelector: {}
  queueingStrategy: StrictFIFO
  resourceGroups:
  - coveredResources: [cpu, memory]
    flavors:
    - name: default-flavor
      resources:
      - name: cpu
        nominalQuota: "$CPU"
      - name: memory
        nominalQuota: 1Ti
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata:
  name: $LOCAL_QUEUE
  namespace: $NAMESPACE
spec:
  clusterQueue: $CLUSTER_QUEUE
YAML
  log "ClusterQueue $CLUSTER_QUEUE (cpu $CPU), LocalQueue $NAMESPACE/$LOCAL_QUEUE"
}

write_config() {
  mkdir -p "$RUN/certs" "$RUN/etc-upper" "$RUN/etc-work"
  if [[ ! -f $RUN/certs/tls.crt ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kueue-local" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$RUN/certs/tls.key" -out "$RUN/certs/tls.crt" 2>/dev/null
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$RUN/config.yaml" <<YAML
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
health:
  healthProbeBindAddress: "0"
metrics:
  bindAddress: "0"
webhook:
  host: 127.0.0.1
  port: $port
  certDir: $RUN/certs
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
integrations:
  frameworks: ["batch/job"]
YAML
}

cmd_up() {
  cmd_build
  [[ -f $KUBECONFIG ]] || die "no kubeconfig at $KUBECONFIG: start the cluster (hack/cluster.sh up)"
  install_queues
  if pid=$(running_pid); then
    log "manager already running (pid $pid)"
  else
    command -v unshare >/dev/null || die "unshare (util-linux) is needed to give the manager its metrics certificate"
    write_config
    mkdir -p "$CLUSTER_DIR/logs"
    # The manager's private view of /etc: the machine's, plus the metrics certificate.
    # exec: the recorded pid is the manager's own once it runs.
    nohup unshare -m --propagation private sh -c '
      set -e
      mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/etc-upper,workdir=$1/etc-work" /etc
      mkdir -p /etc/kueue/metrics/certs
      cp "$1/certs/tls.crt" "$1/certs/tls.key" /etc/kueue/metrics/certs/
      exec "$2" --config "$1/config.yaml" --feature-gates=VisibilityOnDemand=false --zap-log-level=info
    ' kueue "$RUN" "$BIN/kueue" >"$CLUSTER_DIR/logs/kueue.log" 2>&1 &
    echo $! > "$RUN/kueue.pid"
    log "manager started (pid $!), log $CLUSTER_DIR/logs/kueue.log"
  fi
  local deadline=$((SECONDS + 120))
  until [[ "$("$KUBECTL" get clusterqueue "$CLUSTER_QUEUE" -o jsonpath='{.status.conditions[?(@.type=="Active")].status}' 2>/dev/null)" == True ]]; do
    running_pid >/dev/null || { tail -n 30 "$CLUSTER_DIR/logs/kueue.log" >&2; die "the manager exited"; }
    ((SECONDS < deadline)) || die "ClusterQueue $CLUSTER_QUEUE not Active after 120s (log $CLUSTER_DIR/logs/kueue.log)"
    sleep 1
  done
  log "ClusterQueue $CLUSTER_QUEUE is Active"
}

cmd_down() {
  local pid
  if pid=$(running_pid); then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    log "manager stopped (pid $pid)"
  fi
  rm -f "$RUN/kueue.pid"
}

cmd_status() {
  if pid=$(running_pid); then log "manager running (pid $pid)"; else log "manager not running"; fi
  "$KUBECTL" get clusterqueue,localqueue -A 2>/dev/null || true
}

case ${1:-} in
  build) cmd_build ;;
  crds) cmd_crds; echo "$CRDS" ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) sed -n '2,19p' "$0" >&2; exit 2 ;;
esac
