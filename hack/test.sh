#!/usr/bin/env bash
# The test suite, as `make test` and CI run it:
#   1. unit tests (no cluster),
#   2. the local cluster started or reused (hack/cluster.sh up), unless KUBECONFIG is set;
#      its name is BGJ_CLUSTER, default backgroundjobs-test: the tests' own, never the one
#      `make demo` runs its operator on (two operators would act on the tests' objects),
#   3. integration tests against it,
#   4. e2e tests (hack/e2e.sh: built images with Docker, then the chart and the scenarios on
#      a cluster with a real node, BGJ_E2E_CLUSTER, default backgroundjobs-e2e) when a Docker
#      engine answers or can be installed and started here (root); otherwise reported as
#      skipped. Where no real node can run, the cluster tests are skipped with the reason.
# Arguments are passed to every pytest run (e.g. hack/test.sh -x -k cron).
#
# A phase in which pytest collects nothing fails the run (pytest's exit code 5), except when
# arguments were given and another phase ran tests: `-k cron` may well match no e2e test.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
VENV=${VENV:-$CACHE/venv}
PY=$VENV/bin/python
export PATH=$VENV/bin:$CACHE/bin:$PATH
cd "$root" || exit 1

[[ -x $PY ]] || { echo "[test] $PY is missing: run 'make setup' first" >&2; exit 1; }

summary=()
failed=0
ran_any=0
reports=$(mktemp -d)

phase() {  # phase NAME pytest-args...: runs one pytest phase and records its outcome
  local name=$1; shift
  local t0=$SECONDS rc
  echo
  echo "[test] ===== $name ====="
  "$PY" -m pytest --junitxml="$reports/$name.xml" "$@"
  rc=$?
  local took=$((SECONDS - t0))
  case $rc in
    0) summary+=("$name: passed (${took}s)"); ran_any=1 ;;
    5)
      if (( ${#extra[@]} > 0 )); then
        summary+=("$name: no test selected by '${extra[*]}' (${took}s)")
      else
        summary+=("$name: FAILED, pytest collected no test (${took}s)")
        failed=1
      fi ;;
    *) summary+=("$name: FAILED, pytest exit code $rc (${took}s)"); failed=1 ;;
  esac
  return "$rc"
}

has_tests() { compgen -G "$1/test_*.py" >/dev/null || compgen -G "$1/*_test.py" >/dev/null; }

why_no_docker() {  # empty when a Docker engine answers or can be set up here
  if command -v docker >/dev/null && timeout 30 docker info >/dev/null 2>&1; then
    return 0
  fi
  if [[ $(id -u) != 0 ]]; then
    echo "no Docker engine answers, and installing or starting one needs root"
  elif ! command -v dockerd >/dev/null && ! command -v apt-get >/dev/null; then
    echo "no Docker engine, and neither dockerd nor apt-get to get one"
  elif [[ ! -f $root/hack/build-images.sh ]]; then
    echo "no Docker engine answers, and hack/build-images.sh (which starts one) is missing"
  fi
}

totals() {  # one closing line over all phases, from pytest's JUnit reports
  "$PY" - "$reports" <<'PY'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for report in Path(sys.argv[1]).glob("*.xml"):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in n:
            n[key] += int(suite.get(key, 0))
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"total: {passed} passed, {n['failures'] + n['errors']} failed, {n['skipped']} skipped")
PY
  rm -rf "$reports"
}

finish() {
  echo
  echo "[test] ===== summary ====="
  printf '[test]   %s\n' "${summary[@]}"
  totals
  if (( failed == 0 && ran_any == 0 )); then
    echo "[test] FAILED: no test ran"
    failed=1
  fi
  (( failed == 0 )) && echo "[test] all passed" || echo "[test] FAILED"
  exit "$failed"
}

extra=("$@")
export BGJ_CLUSTER=${BGJ_CLUSTER:-backgroundjobs-test}
kubeconfig_given=${KUBECONFIG:-}

phase unit -m unit tests/unit "${extra[@]}"

if [[ -z ${KUBECONFIG:-} ]]; then
  if ! bash hack/cluster.sh up; then
    summary+=("cluster: FAILED to start (hack/cluster.sh up)")
    failed=1
    finish
  fi
  KUBECONFIG=$(bash hack/cluster.sh kubeconfig)
  export KUBECONFIG
fi
echo "[test] cluster: KUBECONFIG=$KUBECONFIG"

# The dashboard's browser tests need Chromium (Debian's package): installed here when missing.
bash hack/chromium.sh || summary+=("chromium: could not be installed (hack/chromium.sh)")

# Kueue's own manager (marker kueue) is left to `make test-kueue`: its cold build is too long
# for every set-up; the hand-off itself is tested here against a fake admission.
# --durations: the slowest tests in every run's log, where the suite's time goes.
phase integration -m "integration and not kueue" --durations=25 tests/integration "${extra[@]}"

if ! has_tests tests/e2e; then
  summary+=("e2e: skipped, tests/e2e has no tests yet")
else
  reason=$(why_no_docker)
  if [[ -n $reason ]]; then
    summary+=("e2e: skipped, $reason")
  else
    # The e2e tests bring their own cluster unless the caller gave one.
    if [[ -n $kubeconfig_given ]]; then
      phase e2e -m "e2e and not kueue" --durations=15 tests/e2e "${extra[@]}"
    else
      KUBECONFIG='' phase e2e -m "e2e and not kueue" --durations=15 tests/e2e "${extra[@]}"
    fi
  fi
fi

finish
