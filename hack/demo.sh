#!/usr/bin/env bash
# make demo: a local cluster (or the one in $KUBECONFIG), the CRD, the operator running
# locally, and one job of each type plus a failing one that is fixed and requeued, shown
# live as they move through their phases. Then: what to try next.
#
# Env: DEMO_NAMESPACE (default bgjobs-demo), DEMO_SECONDS (how long to watch, default 75),
#      DEMO_IMAGES=1 to build the images first (needs Docker; the kwok cluster does not run
#      them, a real cluster would).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
export PATH=$CACHE/venv/bin:$CACHE/bin:$PATH
NS=${DEMO_NAMESPACE:-bgjobs-demo}
SECONDS_TO_WATCH=${DEMO_SECONDS:-75}
say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

bash "$root/hack/setup.sh"
if [[ -n ${KUBECONFIG:-} ]] && kubectl version --request-timeout=5s >/dev/null 2>&1; then
  say "using the cluster in KUBECONFIG=$KUBECONFIG"
else
  say "starting the local cluster (kwok, binaries built from Go modules)"
  bash "$root/hack/cluster.sh" up
  KUBECONFIG=$(bash "$root/hack/cluster.sh" kubeconfig)
  export KUBECONFIG
fi
if [[ ${DEMO_IMAGES:-0} == 1 ]]; then
  say "building the images"
  bash "$root/hack/build-images.sh"
fi

say "installing the BackgroundJob CRD"
kubectl apply --server-side --force-conflicts -f "$root/crds/" >/dev/null
kubectl wait --for condition=Established crd/backgroundjobs.backgroundjobs.dev --timeout=60s >/dev/null
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl delete bgj --all -n "$NS" --wait=false >/dev/null 2>&1 || true

pidfile=$CACHE/demo-operator.pid
if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  say "the operator is already running (pid $(cat "$pidfile"))"
else
  say "starting the operator (log: $CACHE/demo-operator.log)"
  # The dev cluster's admin is the one tenant: the operator's pod policy check is off unless
  # asked for (docs/SECURITY.md), so the examples' Secret references run.
  BACKGROUNDJOBS_METRICS_PORT=${BACKGROUNDJOBS_METRICS_PORT:-9108} \
    BACKGROUNDJOBS_POD_POLICY_CHECK=${BACKGROUNDJOBS_POD_POLICY_CHECK:-false} \
    nohup bgjobs operator run --all-namespaces --liveness http://127.0.0.1:8108/healthz \
    >"$CACHE/demo-operator.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 60); do
    curl -fs http://127.0.0.1:8108/healthz >/dev/null 2>&1 && break
    sleep 0.5
  done
fi

say "applying one job of each type (pods are simulated by kwok; annotations set how they end)"
kubectl apply -n "$NS" -f - <<'EOF'
apiVersion: backgroundjobs.dev/v1alpha1
kind: BackgroundJob
metadata: {name: welcome-email}
spec:
  handler: mail.send
  args: ["new.user@example.com"]
  kwargs: {subject: Welcome, body: "<h1>Hi!</h1>", html: true}
  podTemplate:
    metadata:
      annotations: {kwok.backgroundjobs.dev/duration: 8s, kwok.backgroundjobs.dev/message: '{"sent": true}'}
---
apiVersion: backgroundjobs.dev/v1alpha1
kind: BackgroundJob
metadata: {name: reminder-in-20s}
spec:
  handler: mail.send
  args: ["user@example.com"]
  kwargs: {subject: "Did you reset your password?", body: "…"}
  delay: 20s
---
apiVersion: backgroundjobs.dev/v1alpha1
kind: BackgroundJob
metadata: {name: cleanup-every-minute}
spec:
  handler: cleanup.temp_files
  kwargs: {directory: /tmp/app, older_than_hours: 24}
  schedule: "* * * * *"
---
apiVersion: backgroundjobs.dev/v1alpha1
kind: BackgroundJob
metadata: {name: monthly-report}
spec:
  handler: report.generate
  kwargs: {user_id: 42}
  podTemplate:
    metadata:
      annotations: {kwok.backgroundjobs.dev/duration: 12s, kwok.backgroundjobs.dev/message: '"/reports/42.pdf"'}
---
apiVersion: backgroundjobs.dev/v1alpha1
kind: BackgroundJob
metadata: {name: report-ready-email}
spec:
  handler: mail.send
  args: ["user42@example.com"]
  kwargs: {subject: "Your report is ready", body: "…"}
  after: {name: monthly-report}
---
apiVersion: backgroundjobs.dev/v1alpha1
kind: BackgroundJob
metadata: {name: flaky-payment}
spec:
  handler: test.echo
  args: ["charge card"]
  retries: 1
  podTemplate:
    metadata:
      annotations: {kwok.backgroundjobs.dev/exit-code: "1", kwok.backgroundjobs.dev/message: '{"error": "gateway timeout", "type": "TimeoutError"}'}
EOF

show() {
  if [[ -t 1 ]]; then clear; fi
  printf 'backgroundjobs demo — namespace %s — %ss left\n\n' "$NS" "$1"
  bgjobs get -n "$NS" || true
  echo
  bgjobs top -n "$NS" --once || true
}

requeued=0
end=$((SECONDS + SECONDS_TO_WATCH))
while ((SECONDS < end)); do
  show $((end - SECONDS))
  phase=$(kubectl get bgj flaky-payment -n "$NS" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  if [[ $phase == Failed && $requeued == 0 ]]; then
    echo
    echo ">> flaky-payment failed after its retry; fixing the cause and requeueing it"
    kubectl patch bgj flaky-payment -n "$NS" --type merge \
      -p '{"spec":{"podTemplate":{"metadata":{"annotations":{"kwok.backgroundjobs.dev/exit-code":"0","kwok.backgroundjobs.dev/message":"{\"charged\": true}"}}}}}' >/dev/null
    bgjobs requeue -n "$NS" flaky-payment >/dev/null
    requeued=1
    sleep 2
  fi
  sleep 3
done
show 0

say "the story of one job"
bgjobs describe -n "$NS" flaky-payment || true

cat <<EOF

$(tput bold 2>/dev/null || true)Try next$(tput sgr0 2>/dev/null || true)  (export KUBECONFIG=$KUBECONFIG; export PATH=$CACHE/venv/bin:\$PATH)
  bgjobs get -n $NS -w                          watch the jobs change
  bgjobs enqueue -n $NS test.echo '"hello"'     fire-and-forget
  bgjobs schedule -n $NS test.echo '"later"' --delay 30s
  bgjobs trigger -n $NS reminder-in-20s          (if it has not run yet)
  bgjobs recurring trigger -n $NS cleanup-every-minute
  kubectl get bgj -n $NS -o wide; kubectl explain bgj.spec
  kubectl apply -n $NS -f examples/              the reference scenarios
  curl -s localhost:\${BACKGROUNDJOBS_METRICS_PORT:-9108}/metrics | grep ^backgroundjobs_
The operator keeps running (pid $(cat "$pidfile"), log $CACHE/demo-operator.log);
stop it with: kill \$(cat $pidfile); stop the cluster with: make cluster-down
EOF
