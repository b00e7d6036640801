#!/usr/bin/env bash
# A real node on this machine, joined to a local cluster of hack/cluster.sh: containerd 2.x
# (CRI, runc), the kubelet, kube-proxy (iptables) and a bridge pod network, every binary from
# the cache built by `hack/build-cluster-tools.sh node`. CoreDNS runs in the cluster as a
# Deployment (hack/node/coredns.yaml) behind the kube-dns Service.
#
#   hack/node.sh up            start the node's components (or keep them) and wait for Ready
#   hack/node.sh down          stop them and remove what they left: pods' processes and
#                              cgroups, mounts, network namespaces, iptables rules, the bridge
#   hack/node.sh load-images IMAGE...   copy local Docker images into the node's containerd
#   hack/node.sh restart COMPONENT      restart containerd, kubelet or kube-proxy
#   hack/node.sh status        the components, their pids and logs
#
# Called by hack/cluster.sh when REAL_NODES=1; it needs root and Linux with cgroup v1 or v2.
#
# One real node per machine: its iptables rules (kube-proxy's KUBE-* chains), its ports
# (10250, 10249, 10256) and the /kubepods cgroups are the machine's, so a second cluster asking
# for a real node is refused while another holds it (the lock $KWOK_WORKDIR/real-node.owner).
#
# Addresses (all on this machine): the node's address NODE_IP is the gateway of the pod bridge
# (bgj0, PODS_CIDR); the API server listens on it too, so pods reach it through the
# `kubernetes` Service (SERVICES_CIDR). The pod network has no way out of the machine: the
# FORWARD chain drops what pods send anywhere but the bridge.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"

CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
BIN=$CACHE/bin
VENV=${VENV:-$CACHE/venv}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE/kwok}
NAME=${BGJ_CLUSTER:-backgroundjobs}
WORKDIR=$KWOK_WORKDIR/clusters/$NAME
KUBECONFIG_PATH=$WORKDIR/kubeconfig.yaml
NODE_DIR=$KWOK_WORKDIR/nodes/$NAME
NODE_NAME=${BGJ_NODE_NAME:-$NAME-node}
OWNER_FILE=$KWOK_WORKDIR/real-node.owner

# Shared with hack/cluster.sh (the API server's flags) through `hack/node.sh env`.
BRIDGE=bgj0
PODS_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICES_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
NODE_LABEL=backgroundjobs.dev/real-node
SANDBOX_IMAGE=backgroundjobs/pause:$K8S_VERSION
COREDNS_IMAGE=backgroundjobs/coredns:$COREDNS_VERSION
COMPONENTS=(containerd kubelet kube-proxy)

SOCK=$NODE_DIR/containerd/containerd.sock
KUBECTL=$VENV/bin/kubectl
FW_CHAIN=BGJ-NODE-FORWARD

log() { echo "[node:$NAME] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
ctr_k8s() { "$BIN/ctr" --address "$SOCK" --namespace k8s.io "$@"; }

wait_for() {  # wait_for SECONDS DESCRIPTION command...
  local timeout=$1 what=$2 t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - t0 >= timeout )); then
      die "timed out after ${timeout}s waiting for $what; logs: $NODE_DIR/logs/"
    fi
    sleep 1
  done
}

why_no_node() {  # empty when this machine can run the node; else why not
  [[ $(uname -s) == Linux ]] || { echo "not Linux"; return; }
  [[ $(id -u) == 0 ]] || { echo "a node needs root (mounts, cgroups, network namespaces)"; return; }
  [[ -d /sys/fs/cgroup ]] || { echo "no cgroup filesystem"; return; }
  command -v ip >/dev/null || command -v apt-get >/dev/null \
    || { echo "no iproute2 and no apt-get to install it"; return; }
  if command -v ip >/dev/null; then
    ip link add bgj-probe0 type bridge 2>/dev/null || { echo "cannot create a network bridge"; return; }
    ip link del bgj-probe0
  fi
  local owner
  owner=$(other_owner)
  [[ -z $owner ]] || echo "cluster '$owner' runs this machine's real node"
}

install_packages() {  # runc, iptables, conntrack and the Docker engine (images) from Debian
  local need=() cmd
  for cmd in runc:runc iptables:iptables conntrack:conntrack ip:iproute2 docker:docker.io; do
    command -v "${cmd%%:*}" >/dev/null || need+=("${cmd#*:}")
  done
  if ((${#need[@]} > 0)); then
    command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
    log "installing ${need[*]} (Debian packages)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; } \
      >"$CACHE/node-apt.log" 2>&1 || die "apt-get install failed; see $CACHE/node-apt.log"
  fi
}

# --- the lock: one real node per machine -----------------------------------------------
other_owner() {  # the other cluster whose node runs here, if any (a dead one is cleaned up)
  local owner="" c pid alive=0
  [[ -f $OWNER_FILE ]] && owner=$(cat "$OWNER_FILE")
  [[ -n $owner && $owner != "$NAME" && -d $KWOK_WORKDIR/nodes/$owner ]] || return 0
  for c in "${COMPONENTS[@]}"; do
    pid=$(cat "$KWOK_WORKDIR/nodes/$owner/run/$c.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && grep -q "bgj-supervise $c" "/proc/$pid/cmdline" 2>/dev/null; then
      alive=1
    fi
  done
  if ((alive)); then
    echo "$owner"
  else
    # Its processes are gone (a reboot, or the session that ran it ended): remove what it
    # left, its mounts, network and iptables rules, so that this node starts clean.
    log "removing the remains of cluster '$owner''s node (no component runs)"
    BGJ_CLUSTER=$owner bash "$here/node.sh" down 9>&- >&2 || true
  fi
}

claim_machine() {
  mkdir -p "$KWOK_WORKDIR"
  local owner
  owner=$(other_owner)
  [[ -z $owner ]] \
    || die "cluster '$owner' runs this machine's real node; take it down first (BGJ_CLUSTER=$owner hack/cluster.sh down)"
  echo "$NAME" >"$OWNER_FILE"
}

# --- supervision ----------------------------------------------------------------------
# Each component runs under a small bash supervisor in its own session: the component is
# restarted 2 s after it exits, and `stop` ends the supervisor's whole process group.
supervised() {  # the pid of a component's running supervisor, or nothing
  local pidfile=$NODE_DIR/run/$1.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null && grep -q "bgj-supervise $1" "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

start() {  # start NAME command...
  local name=$1; shift
  [[ -n $(supervised "$name") ]] && return 0
  mkdir -p "$NODE_DIR/run" "$NODE_DIR/logs"
  # shellcheck disable=SC2016
  setsid bash -c '
    trap "kill -TERM \$child 2>/dev/null; wait \$child; exit 0" TERM INT
    while :; do
      "$@" & child=$!
      wait "$child"; rc=$?
      echo "[supervisor] exited with code $rc at $(date -u +%FT%TZ); restarting in 2s"
      sleep 2
    done' "bgj-supervise $name" "$@" \
    >>"$NODE_DIR/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$NODE_DIR/run/$name.pid"
  log "started $name (log $NODE_DIR/logs/$name.log)"
}

stop() {  # stop NAME: TERM the supervisor's process group, KILL it after 20 s
  local name=$1 pid i
  pid=$(supervised "$name")
  [[ -n $pid ]] || { rm -f "$NODE_DIR/run/$name.pid"; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$NODE_DIR/run/$name.pid"
}

# --- configuration --------------------------------------------------------------------
pki() { echo "$WORKDIR/pki/$1"; }

write_configs() {
  mkdir -p "$NODE_DIR"/{containerd,cni/net.d,cni/ipam,kubelet,logs,run}
  cat >"$NODE_DIR/containerd/config.toml" <<EOF
# containerd for the node of cluster $NAME: its own socket, root and state, apart from the
# containerd that dockerd may run on this machine.
version = 3
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "$NODE_DIR/containerd/opt"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.registry]
    # Every registry is this machine's closed port (certs.d/_default): an image that is not
    # loaded fails to pull at once (ErrImagePull), and no pull leaves the machine.
    config_path = "$NODE_DIR/containerd/certs.d"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "docker.io/$SANDBOX_IMAGE"

[plugins.'io.containerd.cri.v1.runtime']
  # This machine refuses a negative oom_score_adj even to root, and the kubelet asks for
  # -998 for every pod sandbox: clamp it to containerd's own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$BIN/cni"]
    conf_dir = "$NODE_DIR/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
EOF
  mkdir -p "$NODE_DIR/containerd/certs.d/_default"
  cat >"$NODE_DIR/containerd/certs.d/_default/hosts.toml" <<EOF
server = "http://127.0.0.1:1"
[host."http://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
EOF
  cat >"$NODE_DIR/cni/net.d/10-bgj.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "bgj-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$PODS_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": false}
  ]
}
EOF
  cat >"$NODE_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $(pki ca.crt)}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
# No upstream resolver reaches anything from here: pods resolve cluster names only.
resolvConf: ""
maxPods: 110
serializeImagePulls: false
# The images come from 'docker save', not a registry: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
EOF
}

# --- network --------------------------------------------------------------------------
network_up() {
  # The bridge exists before the first pod so that the node's address does.
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${PODS_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=1
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] \
    && sysctl -qw net.bridge.bridge-nf-call-iptables=1
  iptables -w -N "$FW_CHAIN" 2>/dev/null || iptables -w -F "$FW_CHAIN"
  iptables -w -A "$FW_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -w -A "$FW_CHAIN" -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  iptables -w -A "$FW_CHAIN" -s "$PODS_CIDR" -j DROP
  iptables -w -C FORWARD -j "$FW_CHAIN" 2>/dev/null || iptables -w -I FORWARD 1 -j "$FW_CHAIN"
}

network_down() {
  local ns
  # The pods' network namespaces (containerd names them cni-*; the node is the only user).
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
    ip netns delete "$ns" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  if command -v iptables >/dev/null; then
    iptables -w -D FORWARD -j "$FW_CHAIN" 2>/dev/null || true
    iptables -w -F "$FW_CHAIN" 2>/dev/null || true
    iptables -w -X "$FW_CHAIN" 2>/dev/null || true
    # What the portmap plugin (CNI-*), the kubelet and kube-proxy (KUBE-*) left, in IPv4
    # and IPv6: the node is the machine's only user of these chains.
    local tool table
    for tool in iptables ip6tables; do
      command -v "$tool" >/dev/null || continue
      for table in filter nat mangle; do
        remove_chains "$tool" "$table" 'CNI-|KUBE-'
      done
    done
  fi
}

remove_chains() {  # remove_chains iptables|ip6tables TABLE REGEX: the chains and jumps to them
  local tool=$1 table=$2 pattern=$3 rule chain
  "$tool" -w -t "$table" -S 2>/dev/null \
    | awk -v p="^($pattern)" '$1 == "-A" && $2 !~ p && $0 ~ ("-j (" substr(p, 2) ")") {sub(/^-A/, "-D"); print}' \
    | while read -r rule; do eval "$tool -w -t $table $rule" 2>/dev/null || true; done
  for chain in $("$tool" -w -t "$table" -S 2>/dev/null | awk -v p="^($pattern)" '$1 == "-N" && $2 ~ p {print $2}'); do
    "$tool" -w -t "$table" -F "$chain" 2>/dev/null || true
  done
  for chain in $("$tool" -w -t "$table" -S 2>/dev/null | awk -v p="^($pattern)" '$1 == "-N" && $2 ~ p {print $2}'); do
    "$tool" -w -t "$table" -X "$chain" 2>/dev/null || true
  done
}

# --- components -----------------------------------------------------------------------
start_containerd() {
  # The shim and runc are looked up in PATH.
  start containerd env PATH="$BIN:$PATH" "$BIN/containerd" --config "$NODE_DIR/containerd/config.toml"
}

start_kubelet() {
  start kubelet "$BIN/kubelet" \
    --config "$NODE_DIR/kubelet/config.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" \
    --root-dir "$NODE_DIR/kubelet/root" \
    --cert-dir "$NODE_DIR/kubelet/pki" \
    --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" \
    --node-labels "$NODE_LABEL=true"
}

start_kube_proxy() {
  start kube-proxy "$BIN/kube-proxy" \
    --kubeconfig "$KUBECONFIG_PATH" \
    --hostname-override "$NODE_NAME" \
    --proxy-mode iptables \
    --cluster-cidr "$PODS_CIDR" \
    --nodeport-addresses "$NODE_IP/32" \
    --conntrack-max-per-core 0 \
    --metrics-bind-address 127.0.0.1:10249 \
    --healthz-bind-address 127.0.0.1:10256
}

containerd_answers() { "$BIN/ctr" --address "$SOCK" version; }

node_ready() {
  [[ $(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

load_images() {  # load_images IMAGE...: docker save | ctr import (layers it has are kept)
  local image
  for image in "$@"; do
    docker image inspect "$image" >/dev/null 2>&1 \
      || die "image $image is not in the local Docker engine (hack/build-images.sh)"
    docker save "$image" | ctr_k8s images import - >/dev/null \
      || die "importing $image into the node's containerd failed"
    log "loaded $image"
  done
}

apply_dns() {
  sed -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" \
    -e "s|@NODE_LABEL@|$NODE_LABEL|g" "$here/node/coredns.yaml" | kc apply -f - >/dev/null
}

dns_ready() {
  [[ $(kc -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}') == 1 ]]
}

cmd_up() {
  local reason
  reason=$(why_no_node)
  [[ -z $reason ]] || die "cannot run a real node here: $reason"
  [[ -f $KUBECONFIG_PATH ]] || die "no cluster $NAME (hack/cluster.sh up first)"
  install_packages
  bash "$here/build-cluster-tools.sh" node 9>&- || die "building the node's binaries failed"
  claim_machine
  local t0=$SECONDS
  write_configs
  network_up
  start_containerd
  wait_for 60 "containerd" containerd_answers
  IMAGES="pause coredns" bash "$here/build-images.sh" >"$NODE_DIR/logs/build-images.log" 2>&1 \
    || die "building the node's images failed; see $NODE_DIR/logs/build-images.log"
  load_images "$SANDBOX_IMAGE" "$COREDNS_IMAGE"
  start_kubelet
  start_kube_proxy
  wait_for 180 "node $NODE_NAME Ready" node_ready
  apply_dns
  wait_for 180 "CoreDNS Ready" dns_ready
  log "node $NODE_NAME Ready at $NODE_IP in $((SECONDS - t0))s"
}

kill_pods() {  # every process in the node's pod cgroups, then the cgroups themselves
  local cg
  for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $cg ]] || continue
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  sleep 1
  for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $cg ]] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

kill_shims() {  # the runc shims of this node's containerd (they outlive it by design)
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK( |$)" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

unmount_all() {  # every mount under the node's directory, deepest first
  local m
  for m in $(awk '{print $2}' /proc/self/mounts | grep -F "$NODE_DIR/" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

cmd_down() {
  [[ -d $NODE_DIR ]] || return 0
  stop kubelet
  kill_pods
  stop kube-proxy
  stop containerd
  kill_shims
  [[ -x $BIN/kube-proxy ]] && command -v iptables >/dev/null \
    && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  network_down
  unmount_all
  rm -rf "$NODE_DIR"
  if [[ -f $OWNER_FILE && $(cat "$OWNER_FILE") == "$NAME" ]]; then rm -f "$OWNER_FILE"; fi
  log "node removed"
}

cmd_restart() {
  local c=${1:-}
  case $c in
    containerd) stop containerd; start_containerd ;;
    kubelet) stop kubelet; start_kubelet ;;
    kube-proxy) stop kube-proxy; start_kube_proxy ;;
    *) die "restart what? one of: ${COMPONENTS[*]}" ;;
  esac
}

cmd_status() {
  local c pid
  echo "node:       $NODE_NAME ($NODE_IP), dir $NODE_DIR"
  for c in "${COMPONENTS[@]}"; do
    pid=$(supervised "$c")
    local state=stopped
    [[ -n $pid ]] && state="running (supervisor pid $pid)"
    printf '%-11s %s\n' "$c:" "$state; log $NODE_DIR/logs/$c.log"
  done
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  load-images) shift; load_images "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  status) cmd_status ;;
  why-not) why_no_node ;;
  env)  # for hack/cluster.sh and the tests
    printf '%s=%s\n' NODE_IP "$NODE_IP" SERVICES_CIDR "$SERVICES_CIDR" \
      KUBERNETES_SERVICE_IP "$KUBERNETES_SERVICE_IP" DNS_SERVICE_IP "$DNS_SERVICE_IP" \
      NODE_NAME "$NODE_NAME" NODE_LABEL "$NODE_LABEL" ;;
  *) echo "usage: $0 up|down|load-images IMAGE...|restart COMPONENT|status|why-not|env" >&2; exit 2 ;;
esac
