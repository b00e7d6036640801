"""status.progress on the local cluster: the operator reads a running pod's progress records
from its log (kwok serves every fake pod's handler log from one file: hack/cluster.sh) into
the status and the PROGRESS column, and keeps it after the run.

What kwok cannot show is the runtime writing those records in a real container:
tests/e2e/test_cluster_progress.py covers that on a real node."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration

Body = dict[str, Any]
# The operator reads every 5 s (BACKGROUNDJOBS_PROGRESS_INTERVAL's default): a few rounds.
SEEN_WITHIN = 30.0
# The fake pods run until the test ends them (kwok's stage restarts a pod's RUN_FOR at each
# change of the pod, so patching it to 1s ends it): the operator reads only running pods, and
# a fixed run of a few seconds raced the reads on a loaded machine (a CI run whose pod ended
# before the first read, so its progress never showed).
UNTIL_ENDED = "600s"


def append_pod_log(kubeconfig: str, record: Body) -> None:
    """Append one JSON line to what every fake pod's handler container logs (a file in the
    container runtime's log format)."""
    path = Path(kubeconfig).resolve().parent / "logs" / "handler.log"
    if not path.exists():
        pytest.skip(f"no {path}: not the project's local cluster (hack/cluster.sh)")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with path.open("a") as f:
        f.write(f"{stamp} stdout F {json.dumps(record)}\n")


def progress_record(name: str, namespace: str, done: int, total: int, message: str) -> Body:
    """A record as ``backgroundjobs.progress()`` logs it (runtime.logrecord)."""
    return {
        "time": datetime.now(UTC).isoformat(),
        "level": "info",
        "logger": "backgroundjobs.runtime",
        "message": message,
        "job": name,
        "namespace": namespace,
        "run": 1,
        "handler": "test.echo",
        "event": "progress",
        "done": done,
        "total": total,
        "percent": round(100.0 * done / total, 1),
    }


def seen(operator: OperatorProcess, what: str, probe: Any) -> Any:
    """``wait_for`` over a few of the operator's read rounds; on a timeout, the operator's
    last log lines say what it was doing."""
    try:
        return wait_for(what, probe, SEEN_WITHIN)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nthe operator's log:\n{operator.log_tail(40)}") from None


def test_progress_shows_while_running_and_is_kept_after(
    bgjobs: Jobs, namespace: str, kubeconfig: str, operator: OperatorProcess
) -> None:
    running = {RUN_FOR: UNTIL_ENDED}
    bgjobs.create(manifest("export", pod_annotations=running))
    bgjobs.create(manifest("bystander", pod_annotations=running))
    wait_for(
        "both running",
        lambda: all(bgjobs.status(n).get("phase") == "Running" for n in ("export", "bystander")),
        60,
    )

    append_pod_log(kubeconfig, progress_record("export", namespace, 3, 4, "rows exported"))
    progress = seen(
        operator, "status.progress of export", lambda: bgjobs.status("export").get("progress")
    )
    assert progress["summary"] == "3/4 (75%)"
    assert progress["message"] == "rows exported"
    assert progress["pod"].startswith("export-1-")
    assert bgjobs.status("export")["phase"] == "Running"

    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "-n", namespace, "get", "bgj", "export"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, row = out.splitlines()[:2]
    assert "PROGRESS" in header.split()
    assert "3/4 (75%)" in row

    # Every fake pod logs the same file: the record names its job, the bystander takes none.
    assert "progress" not in bgjobs.status("bystander")

    # A newer record replaces it; after the run the last one read stays.
    append_pod_log(kubeconfig, progress_record("export", namespace, 4, 4, "done"))
    seen(
        operator,
        "the newer progress",
        lambda: (bgjobs.status("export").get("progress") or {}).get("summary") == "4/4 (100%)",
    )
    bgjobs.core.patch_namespaced_pod(  # the handler ends
        progress["pod"], namespace, {"metadata": {"annotations": {RUN_FOR: "1s"}}}
    )
    final = bgjobs.wait_phase("export", "Succeeded", timeout=90)
    assert final["progress"]["summary"] == "4/4 (100%)"
    assert final["progress"]["message"] == "done"

    # The pods gone (deleted by hand here; retention or a node's loss elsewhere): still there.
    bgjobs.core.delete_collection_namespaced_pod(
        namespace, label_selector=f"{c.LABEL_JOB_NAME}={final['jobName']}"
    )
    wait_for("its pods gone", lambda: not bgjobs.pods(final["jobName"]), 60)
    assert bgjobs.status("export")["progress"]["summary"] == "4/4 (100%)"
