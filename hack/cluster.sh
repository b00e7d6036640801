#!/usr/bin/env bash
# The local cluster: a real kube-apiserver, etcd, kube-controller-manager and kube-scheduler
# run as local processes by `kwokctl --runtime binary`, with kwok faking the nodes and the pod
# lifecycle (hack/kwok/pod-stages.yaml). Every binary comes from the cache built by
# hack/build-cluster-tools.sh (kubectl from the venv); nothing is downloaded.
#
#   hack/cluster.sh up          start the cluster, or reuse it when it is already healthy
#   hack/cluster.sh down        delete it
#   hack/cluster.sh kubeconfig  print the kubeconfig path (KUBECONFIG=$(make -s kubeconfig))
#   hack/cluster.sh status      show components, nodes and where the logs are
#   hack/cluster.sh component NAME pid|hang|resume|kill|stop|start [--flag=value...]
#                               fault injection on one control-plane component (below)
#
# Environment: BGJ_CLUSTER (cluster name, default backgroundjobs; several can coexist),
# BGJ_CLUSTER_NODES (fake nodes, default 3, or 0 with REAL_NODES=1), BACKGROUNDJOBS_CACHE
# (default ~/.cache/backgroundjobs), KWOK_WORKDIR (default $BACKGROUNDJOBS_CACHE/kwok),
# BGJ_AUDIT_LOG_BACKUPS (rotations of the 100 MB audit log kept, default 3; read when the
# cluster is made: a running cluster keeps its own until `down`).
#
# REAL_NODES=1 hack/cluster.sh up: the same control plane plus a real node on this machine
# (hack/node.sh: kubelet, containerd, kube-proxy, a bridge pod network, CoreDNS), built by
# `hack/build-cluster-tools.sh node`. Such a cluster is made for it: its API server also
# listens on the node's address and serves the `kubernetes` Service. In every cluster kwok
# manages only the fake nodes (annotation kwok.x-k8s.io/node=fake), so it leaves a real node
# and its pods alone. `down` removes the node too. One real node per machine.
#
# Supervision: as a kubelet restarts the static pods of a real control plane, a supervisor
# per cluster (logs/supervisor.log) restarts etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok-controller when they exit (after 1 s, doubling up to 10 s while they
# keep exiting within 30 s of a start), with the command line they last ran with. So an API
# server outage longer than the controllers' lease (they exit, as designed) heals itself.
# `component NAME`: pid prints its pid; hang/resume send SIGSTOP/SIGCONT; kill sends SIGKILL
# (a crash: the supervisor restarts it); stop kills it and keeps it down until start, which
# runs it again at once (--flag=value arguments replace or add flags for this and later
# restarts). The reliability tests (tests/reliability/) drive faults through it.
#
# Per cluster, under $KWOK_WORKDIR/clusters/$BGJ_CLUSTER/: kubeconfig.yaml, logs/<component>.log
# logs/audit.log (the API server's audit log, policy hack/kwok/audit-policy.yaml) and
# logs/handler.log (what `kubectl logs` of any fake pod's handler container streams).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"

CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
BIN=$CACHE/bin
VENV=${VENV:-$CACHE/venv}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE/kwok}
NAME=${BGJ_CLUSTER:-backgroundjobs}
REAL_NODES=${REAL_NODES:-0}
# Rotations of the audit log kept (100 MB each), fixed when the cluster is made
AUDIT_BACKUPS=${BGJ_AUDIT_LOG_BACKUPS:-3}
[[ $AUDIT_BACKUPS =~ ^[0-9]+$ ]] || { echo "BGJ_AUDIT_LOG_BACKUPS: a number, not '$AUDIT_BACKUPS'" >&2; exit 2; }
if [[ $REAL_NODES == 1 ]]; then NODES=${BGJ_CLUSTER_NODES:-0}; else NODES=${BGJ_CLUSTER_NODES:-3}; fi
WORKDIR=$KWOK_WORKDIR/clusters/$NAME
KUBECONFIG_PATH=$WORKDIR/kubeconfig.yaml
POD_LOG=$WORKDIR/logs/handler.log  # the simulated handler log of every fake pod
CONFIG=$KWOK_WORKDIR/$NAME.kwokctl.yaml
KWOKCTL=$BIN/kwokctl
KUBECTL=$VENV/bin/kubectl

log() { echo "[cluster:$NAME] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# kwokctl starts the components as daemons that inherit open descriptors: never hand them the
# lock (fd 9), or the lock would be held for as long as the cluster runs.
kwokctl() { "$KWOKCTL" "$@" 9>&-; }

healthy() {  # the API server answers /readyz
  [[ -f $KUBECONFIG_PATH ]] && kc get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

wait_for() {  # wait_for SECONDS DESCRIPTION command...
  local timeout=$1 what=$2 t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - t0 >= timeout )); then
      die "timed out after ${timeout}s waiting for $what; logs: $WORKDIR/logs/"
    fi
    sleep 0.5
  done
}

check_binaries() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwokctl; do
    [[ -x $BIN/$b ]] || die "$BIN/$b is missing; run 'make setup' (hack/build-cluster-tools.sh)"
  done
  [[ -x $KUBECTL ]] || die "$KUBECTL is missing; run 'make venv' (hack/setup.sh venv)"
  local v
  v=$("$BIN/kube-apiserver" --version)
  [[ $v == "Kubernetes $K8S_VERSION" ]] \
    || die "$BIN/kube-apiserver reports '$v', expected 'Kubernetes $K8S_VERSION'; run 'make setup'"
}

real_node_options() {  # kwokctl options of a cluster made for a real node (hack/node.sh)
  local NODE_IP SERVICES_CIDR KUBERNETES_SERVICE_IP
  eval "$(bash "$here/node.sh" env)"
  echo "  kubeApiserverCertSANs: [$NODE_IP, $KUBERNETES_SERVICE_IP]"
}

real_node_patches() {  # the API server's side of a real node
  local NODE_IP SERVICES_CIDR KUBERNETES_SERVICE_IP
  eval "$(bash "$here/node.sh" env)"
  cat <<EOF
  # Pods reach the API server at the node's address through the kubernetes Service.
  - {key: bind-address, value: "0.0.0.0", override: true}
  - {key: advertise-address, value: "$NODE_IP"}
  - {key: service-cluster-ip-range, value: "$SERVICES_CIDR"}
  # kubectl logs/exec: the API server calls the kubelet at its InternalIP with this client
  # certificate (the kubelet trusts the cluster's CA).
  - {key: kubelet-preferred-address-types, value: InternalIP}
  - {key: kubelet-client-certificate, value: "$WORKDIR/pki/admin.crt"}
  - {key: kubelet-client-key, value: "$WORKDIR/pki/admin.key"}
EOF
}

write_config() {  # the kwokctl configuration: options, binaries, our stages
  mkdir -p "$KWOK_WORKDIR"
  {
    cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: $K8S_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  kwokVersion: $KWOK_VERSION
  bindAddress: 127.0.0.1
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  kubeAuditPolicy: $here/kwok/audit-policy.yaml
  kubectlBinary: $KUBECTL
  etcdctlBinary: $BIN/etcdctl
$( ((REAL_NODES == 1)) && real_node_options)
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: audit-log-maxsize
    value: "100"
  - key: audit-log-maxbackup
    value: "$AUDIT_BACKUPS"
$( ((REAL_NODES == 1)) && real_node_patches)
- name: kwok-controller
  extraArgs:
  # Only the fake nodes (apply_nodes annotates them), never a real node or its pods.
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
  # kwokctl passes an empty --node-ip: the fake nodes then get a Hostname address only, and
  # kwok's node-initialize stage, run again whenever a node is not Ready (a controller-manager
  # frozen past its grace period marks them Unknown), writes an empty address list over it.
  # The API server then reads no fake pod's log ("no preferred addresses found"). kwok's
  # kubelet endpoint listens on 127.0.0.1: its InternalIP.
  - {key: node-ip, value: 127.0.0.1, override: true}
- name: kube-controller-manager
  extraArgs:
  # All default controllers, among them job, cronjob, garbage-collector, namespace,
  # serviceaccount and serviceaccount-token (the signing key is passed by kwokctl).
  - key: controllers
    value: "*"
---
EOF
    cat "$here/kwok/node-stages.yaml"
    echo "---"
    cat "$here/kwok/pod-stages.yaml"
    echo "---"
    # Every fake pod's handler container "logs" the lines of one file, followed: tests append
    # to it to see a log stream end to end (API server -> kwok's kubelet endpoint).
    cat <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: handler-logs
spec:
  selector: {}
  logs:
  - containers: [handler]
    logsFile: $POD_LOG
    follow: true
EOF
  } > "$CONFIG"
}

CREATE_ARGS=(
  create cluster --name "$NAME" --config "$CONFIG" --runtime binary
  --kubeconfig ""  # leave ~/.kube/config alone
  --etcd-binary "$BIN/etcd"
  --kube-apiserver-binary "$BIN/kube-apiserver"
  --kube-controller-manager-binary "$BIN/kube-controller-manager"
  --kube-scheduler-binary "$BIN/kube-scheduler"
  --kwok-controller-binary "$BIN/kwok"
)

check_no_downloads() {  # fail before starting anything if kwokctl would fetch a file
  local plan sources src bad=0
  plan=$(kwokctl --dry-run "${CREATE_ARGS[@]}" 2>&1) || die "kwokctl dry run failed: $plan"
  if grep -qE '^(docker|podman|nerdctl|kind) ' <<<"$plan"; then
    die "kwokctl would use a container runtime; only --runtime binary works here"
  fi
  sources=$(sed -n 's/^# Download \(.*\) to .*/\1/p' <<<"$plan")
  [[ -n $sources ]] || die "kwokctl dry run lists no binaries; cannot verify nothing is downloaded"
  while read -r src; do
    if [[ $src != /* || ! -x $src ]]; then
      log "kwokctl would fetch '$src' (not a local executable)"
      bad=1
    fi
  done <<<"$sources"
  (( bad == 0 )) || die "refusing to start: every component must come from $BIN"
}

check_local_binaries() {  # after creation: every binary the cluster runs is one of ours
  local f target
  for f in "$WORKDIR"/bin/*; do
    target=$(readlink -f "$f")
    [[ $target == "$BIN"/* || $target == "$VENV"/* ]] \
      || die "$f resolves to $target, outside $BIN and $VENV"
  done
}

apply_nodes() {
  local i manifest=""
  ((NODES > 0)) || return 0
  for ((i = 0; i < NODES; i++)); do
    manifest+="
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    node-role.kubernetes.io/agent: \"\"
    type: kwok
status:
  allocatable: {cpu: \"64\", memory: 256Gi, pods: \"1000\"}
  capacity: {cpu: \"64\", memory: 256Gi, pods: \"1000\"}
"
  done
  kc apply -f - <<<"$manifest" >/dev/null
}

nodes_ready() {
  local ready
  ready=$(kc get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
    | grep -c '^True$')
  (( ready >= NODES ))
}

default_sa_exists() { kc -n default get serviceaccount default; }

finish_up() {
  mkdir -p "$(dirname "$POD_LOG")" && touch "$POD_LOG"
  wait_for 120 "the API server" healthy
  apply_nodes
  wait_for 120 "$NODES Ready nodes" nodes_ready
  wait_for 120 "the default ServiceAccount (serviceaccount controller)" default_sa_exists
  if ((REAL_NODES == 1)); then
    bash "$here/node.sh" up 9>&- || die "the real node did not come up (hack/node.sh status)"
  fi
}

made_for_real_nodes() { grep -q 'advertise-address' "$CONFIG" 2>/dev/null; }
# A cluster made before its fake nodes had an InternalIP (write_config's node-ip) loses their
# addresses once a node is not Ready: made again.
fake_nodes_without_ip() { [[ -f $CONFIG ]] && ! grep -q 'key: node-ip' "$CONFIG"; }

# --- supervision ------------------------------------------------------------------------
SUPERVISE=$WORKDIR/supervise  # <component>.argv (NUL-separated), <component>.hold, lock
SUPERVISED=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller)

# The supervisor's loop, run by `bash -c` from memory (a script file edited while it runs
# would be re-read mid-way). Arguments: WORKDIR, then the components.
# shellcheck disable=SC2016  # expanded by the supervisor's shell
SUPERVISOR_LOOP='
workdir=$1; shift
components=("$@")
declare -A last_pid backoff started
alive() {  # alive PID: running or stopped, not a zombie
  local state
  [[ -n $1 && -r /proc/$1/stat ]] || return 1
  state=$(sed -E "s/^[0-9]+ \(.*\) (.).*/\1/" "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}
launch() {  # launch COMPONENT: run its saved command line, detached; the pid file follows
  local c=$1 argv
  mapfile -d "" argv <"$workdir/supervise/$c.argv"
  # The pid is the component itself (setsid execs it); the lock (fd 8) is not inherited.
  (cd "$workdir" || exit 1
   setsid "${argv[@]}" >>"$workdir/logs/$c.log" 2>&1 </dev/null &
   echo $! >"$workdir/pids/$c.pid") 8>&- 9>&-
  started[$c]=$SECONDS
}
trap "exit 0" TERM INT
echo "[supervisor] started at $(date -u +%FT%TZ): ${components[*]}"
while [[ -f $workdir/kwok.yaml ]]; do
  for c in "${components[@]}"; do
    pid=$(cat "$workdir/pids/$c.pid" 2>/dev/null || true)
    if alive "$pid"; then
      if [[ ${last_pid[$c]:-} != "$pid" ]]; then  # a new process: remember how it was run
        last_pid[$c]=$pid
        started[$c]=$SECONDS
        # (a process killed meanwhile reads as an empty command line: keep the last one)
        cp "/proc/$pid/cmdline" "$workdir/supervise/$c.argv.tmp" 2>/dev/null \
          && [[ -s $workdir/supervise/$c.argv.tmp ]] \
          && mv "$workdir/supervise/$c.argv.tmp" "$workdir/supervise/$c.argv"
      fi
      continue
    fi
    [[ -f $workdir/supervise/$c.hold || ! -s $workdir/supervise/$c.argv ]] && continue
    exec 8>"$workdir/supervise/lock"
    flock 8
    pid=$(cat "$workdir/pids/$c.pid" 2>/dev/null || true)
    if ! alive "$pid" && ! [[ -f $workdir/supervise/$c.hold ]]; then
      # Exited within 30 s of its start: wait longer each time (1, 2, 4, 8, 10 s).
      if (( SECONDS - ${started[$c]:-0} < 30 )); then
        backoff[$c]=$(( ${backoff[$c]:-0} == 0 ? 1 : (backoff[$c] * 2 > 10 ? 10 : backoff[$c] * 2) ))
      else
        backoff[$c]=1
      fi
      echo "[supervisor] $c (pid ${pid:-?}) is gone at $(date -u +%FT%TZ); restarting in ${backoff[$c]}s"
      flock -u 8
      sleep "${backoff[$c]}"
      flock 8
      pid=$(cat "$workdir/pids/$c.pid" 2>/dev/null || true)
      if ! alive "$pid" && ! [[ -f $workdir/supervise/$c.hold ]]; then
        launch "$c"
        echo "[supervisor] $c restarted: pid $(cat "$workdir/pids/$c.pid")"
      fi
    fi
    exec 8>&-
  done
  sleep 1
done
echo "[supervisor] the cluster is gone; exiting"
'

supervisor_pid() {  # the pid of this cluster's running supervisor, or nothing
  local pid
  pid=$(cat "$SUPERVISE/supervisor.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && grep -qa "bgj-supervise-cluster $NAME" "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

supervisor_start() {
  [[ -n $(supervisor_pid) ]] && return 0
  mkdir -p "$SUPERVISE" "$WORKDIR/logs"
  local c pid
  for c in "${SUPERVISED[@]}"; do  # the command lines of the running components
    pid=$(cat "$WORKDIR/pids/$c.pid" 2>/dev/null || true)
    [[ -n $pid && -r /proc/$pid/cmdline ]] && cp "/proc/$pid/cmdline" "$SUPERVISE/$c.argv.tmp" \
      && [[ -s $SUPERVISE/$c.argv.tmp ]] && mv "$SUPERVISE/$c.argv.tmp" "$SUPERVISE/$c.argv"
  done
  setsid bash -c "$SUPERVISOR_LOOP" "bgj-supervise-cluster $NAME" "$WORKDIR" "${SUPERVISED[@]}" \
    >>"$WORKDIR/logs/supervisor.log" 2>&1 </dev/null 9>&- &
  echo $! >"$SUPERVISE/supervisor.pid"
}

supervisor_stop() {
  local pid i
  pid=$(supervisor_pid)
  [[ -n $pid ]] || return 0
  # Under the lock: never between its check and a launch.
  exec 8>"$SUPERVISE/lock"
  flock 8
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  exec 8>&-
  rm -f "$SUPERVISE/supervisor.pid"
}

component_pid() { cat "$WORKDIR/pids/$1.pid" 2>/dev/null || true; }

component_alive() {  # component_alive PID: running or stopped, not a zombie
  local state
  [[ -n $1 && -r /proc/$1/stat ]] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

cmd_component() {  # component NAME ACTION [--flag=value...]
  local c=${1:-} action=${2:-} pid i
  [[ " ${SUPERVISED[*]} " == *" $c "* ]] \
    || die "usage: $0 component ${SUPERVISED[*]// /|} pid|hang|resume|kill|stop|start"
  [[ -f $WORKDIR/kwok.yaml ]] || die "no cluster $NAME"
  shift 2 || true
  mkdir -p "$SUPERVISE"
  pid=$(component_pid "$c")
  case $action in
    pid) echo "$pid" ;;
    hang) kill -STOP "$pid" ;;
    resume) kill -CONT "$pid" ;;
    kill) kill -KILL "$pid" ;;
    stop)
      touch "$SUPERVISE/$c.hold"
      if component_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do component_alive "$pid" || break; sleep 0.1; done
      fi
      ;;
    start)
      [[ -s $SUPERVISE/$c.argv ]] || die "no saved command line of $c ($SUPERVISE/$c.argv)"
      exec 8>"$SUPERVISE/lock"
      flock 8
      if (($# > 0)); then  # replace or add flags
        local -a argv kept=()
        local arg flag
        mapfile -d '' argv <"$SUPERVISE/$c.argv"
        for arg in "${argv[@]}"; do
          for flag in "$@"; do [[ $arg == "${flag%%=*}="* ]] && continue 2; done
          kept+=("$arg")
        done
        printf '%s\0' "${kept[@]}" "$@" >"$SUPERVISE/$c.argv"
      fi
      if component_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do component_alive "$pid" || break; sleep 0.1; done
      fi
      rm -f "$SUPERVISE/$c.hold"
      local -a run
      mapfile -d '' run <"$SUPERVISE/$c.argv"
      (cd "$WORKDIR" || exit 1
       setsid "${run[@]}" >>"$WORKDIR/logs/$c.log" 2>&1 </dev/null &
       echo $! >"$WORKDIR/pids/$c.pid") 8>&- 9>&-
      exec 8>&-
      component_pid "$c"
      ;;
    *) die "unknown action '$action': pid|hang|resume|kill|stop|start" ;;
  esac
}

cmd_up() {
  check_binaries
  mkdir -p "$KWOK_WORKDIR"
  exec 9>"$KWOK_WORKDIR/$NAME.lock"
  flock 9  # one `up` at a time per cluster (tests and make may race)
  local t0=$SECONDS how
  if ! healthy; then supervisor_stop; fi  # kwokctl alone starts or creates the components
  if ((REAL_NODES == 1)) && [[ -d $WORKDIR ]] && ! made_for_real_nodes; then
    log "cluster $NAME was made without REAL_NODES=1; recreating it for a real node"
    kwokctl delete cluster --name "$NAME" >&2 || rm -rf "$WORKDIR"
  fi
  if [[ -d $WORKDIR ]] && fake_nodes_without_ip; then
    log "cluster $NAME was made without an address for its fake nodes; recreating it"
    supervisor_stop
    kwokctl delete cluster --name "$NAME" >&2 || rm -rf "$WORKDIR"
  fi
  if healthy; then
    how=reused
  elif [[ -f $WORKDIR/kwok.yaml ]] && kwokctl start cluster --name "$NAME" >&2 \
    && (wait_for 60 "the API server" healthy); then
    how=restarted
  else
    if [[ -d $WORKDIR ]]; then
      log "removing a broken cluster"
      kwokctl delete cluster --name "$NAME" >&2 || rm -rf "$WORKDIR"
    fi
    write_config
    check_no_downloads
    log "creating (kube $K8S_VERSION, kwok $KWOK_VERSION, $NODES nodes) in $WORKDIR"
    kwokctl "${CREATE_ARGS[@]}" --wait 120s >&2 || die "kwokctl create failed; logs: $WORKDIR/logs/"
    check_local_binaries
    how=created
  fi
  finish_up
  supervisor_start
  log "up in $((SECONDS - t0))s ($how); KUBECONFIG=$KUBECONFIG_PATH"
}

cmd_down() {
  if [[ -d $SUPERVISE ]]; then supervisor_stop; fi
  bash "$here/node.sh" down
  if [[ -d $WORKDIR ]]; then
    # Components the supervisor restarted are not kwokctl's children: it leaves them running.
    local pids=() pid file
    for file in "$WORKDIR"/pids/*.pid; do  # one at a time: kwokctl's end without a newline
      pid=$(cat "$file" 2>/dev/null || true)
      if [[ -n $pid ]] && grep -qa "$WORKDIR" "/proc/$pid/cmdline" 2>/dev/null; then
        pids+=("$pid")
      fi
    done
    kwokctl delete cluster --name "$NAME" >&2
    for pid in "${pids[@]}"; do
      if grep -qa "$WORKDIR" "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    done
    # A component restarted more than once has a pid in no file: any process still running
    # one of this cluster's binaries (or its supervisor) goes too.
    local proc
    for proc in /proc/[0-9]*; do
      pid=${proc#/proc/}
      [[ $pid == "$$" ]] && continue
      if grep -qa "$WORKDIR/" "$proc/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    done
  fi
  rm -f "$CONFIG" "$KWOK_WORKDIR/$NAME.lock"
  log "deleted"
}

cmd_status() {
  if ! [[ -f $WORKDIR/kwok.yaml ]]; then
    log "not created (hack/cluster.sh up)"
    return 1
  fi
  echo "cluster:    $NAME"
  echo "kubeconfig: $KUBECONFIG_PATH"
  echo "logs:       $WORKDIR/logs/ (audit log: $WORKDIR/logs/audit.log)"
  if healthy; then
    echo "apiserver:  $(kc config view -o jsonpath='{.clusters[0].cluster.server}') ready"
    kwokctl get components --name "$NAME" 2>/dev/null || true
    local sup
    sup=$(supervisor_pid)
    if [[ -n $sup ]]; then
      echo "supervisor: pid $sup (log $WORKDIR/logs/supervisor.log)"
    else
      echo "supervisor: NOT running (hack/cluster.sh up starts it)"
    fi

    kc get nodes -o wide
    [[ -d $KWOK_WORKDIR/nodes/$NAME ]] && bash "$here/node.sh" status
  else
    echo "apiserver:  not responding"
    return 1
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  kubeconfig)
    echo "$KUBECONFIG_PATH"
    [[ -f $KUBECONFIG_PATH ]] || log "no cluster yet: run 'make cluster-up' (hack/cluster.sh up)"
    ;;
  status) cmd_status ;;
  component) shift; cmd_component "$@" ;;
  *) echo "usage: $0 up|down|kubeconfig|status|component" >&2; exit 2 ;;
esac
