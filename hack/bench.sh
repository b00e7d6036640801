#!/usr/bin/env bash
# `make bench`: the benchmark suite (bench/, issue 8) against a local kwok cluster.
#
#   hack/bench.sh            start or reuse the bench cluster, apply the CRD, run the suite,
#                            write bench/RESULTS.md (+ bench/RESULTS.json)
#
# Environment:
#   BGJ_CLUSTER        cluster name (default: bench, its own cluster, so the tests' shared
#                      cluster is not loaded and the audit log holds only the bench's traffic)
#   BENCH_SCALE        object counts × scale (default 0.2: the whole run stays under 10 min
#                      on 2 cores; 1 = the issue's full sizes)
#   BENCH_ONLY         comma-separated subset: probe,direct,m1,m2,m3,m4,m5,s5,b1,r1 (b1: N calls
#                      as one batch against N via enqueue_many, bench/bench_batches.py;
#                      r1: retryPolicy attempt lateness, bench/bench_retry.py)
#   BENCH_PROFILE=1    run the operator under pyinstrument (bench/profiles/; M1, S5, M2-M5)
#   BENCH_TUNE_CLUSTER raise the client QPS of kube-controller-manager and kube-scheduler
#                      (default 1; see tune_cluster below)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
VENV=${VENV:-$CACHE/venv}
export BGJ_CLUSTER=${BGJ_CLUSTER:-bench}
export BENCH_SCALE=${BENCH_SCALE:-0.2}
# A long run (B1 or M1 at 10,000) writes more than 300 MB of audit log: keep 1 GB of it, so
# that its request counts are whole (bench/audit.py's covers()). Read when the cluster is made.
export BGJ_AUDIT_LOG_BACKUPS=${BGJ_AUDIT_LOG_BACKUPS:-10}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE/kwok}
WORKDIR=$KWOK_WORKDIR/clusters/$BGJ_CLUSTER
export PATH=$VENV/bin:$PATH

log() { echo "[bench] $*" >&2; }

# kube-controller-manager's client is limited to 20 requests/s (burst 30) and
# kube-scheduler's to 50/s by default. With thousands of Jobs those limits, not the operator,
# decide when pods exist and when CronJobs fire: the Job controller needs ~3 requests per
# Job, so 10,000 Jobs take ~25 minutes to run. hack/cluster.sh sets neither, and it is shared
# with the tests, so the bench restarts those two components of ITS OWN cluster with higher
# limits (`hack/cluster.sh component NAME start --flag=value...`: the same command line plus
# these flags, kept by the cluster's supervisor for later restarts). Proposed instead: a
# componentsPatches entry in hack/cluster.sh (see bench/README.md).
tune_cluster() {
  local component pidfile pid flag missing
  local -a flags cmd
  for component in kube-controller-manager kube-scheduler; do
    pidfile=$WORKDIR/pids/$component.pid
    [[ -f $pidfile ]] || { log "no $pidfile; not tuning $component"; continue; }
    pid=$(<"$pidfile")
    mapfile -d '' cmd < "/proc/$pid/cmdline" || { log "$component ($pid) not running"; continue; }
    flags=(--kube-api-qps=1000 --kube-api-burst=2000)
    if [[ $component == kube-controller-manager ]]; then
      # 5 CronJob workers by default: 200 CronJobs due at one minute boundary then fire
      # over ~7 s whoever owns them (M4 measured the CronJob controller). The Job
      # controller's 5 workers are left alone: 50 ran every phase's pods at once, and that
      # load, not the operator, moved M1-M5 (measured: M2's probe p50 85 -> 165 ms).
      flags+=(--concurrent-cron-job-syncs=50)
    fi
    missing=0
    for flag in "${flags[@]}"; do
      [[ " ${cmd[*]} " == *" $flag "* ]] || missing=1
    done
    ((missing)) || continue
    log "restarting $component with ${flags[*]}"
    bash "$here/cluster.sh" component "$component" stop
    # its Lease, so that the new process leads at once instead of after the old one's expiry
    kubectl -n kube-system delete lease "$component" --ignore-not-found >/dev/null
    bash "$here/cluster.sh" component "$component" start "${flags[@]}" >/dev/null
    sleep 1
    pid=$(<"$pidfile")
    kill -0 "$pid" 2>/dev/null || { log "$component failed to restart; see $WORKDIR/logs/$component.log"; exit 1; }
  done
}

bash "$here/cluster.sh" up
KUBECONFIG=$(bash "$here/cluster.sh" kubeconfig)
export KUBECONFIG
if [[ ${BENCH_TUNE_CLUSTER:-1} == 1 ]]; then
  tune_cluster
fi
# --force-conflicts: the standalone benches (bench_retry, bench_queue) write the CRD with the
# Python client, which then owns its fields; without it a changed CRD is refused here.
kubectl apply --server-side --force-conflicts -f "$repo/crds/" >/dev/null
cd "$repo"
log "cluster $BGJ_CLUSTER, scale $BENCH_SCALE; audit log $WORKDIR/logs/audit.log"
exec "$VENV/bin/python" -m bench.suite "$@"
