"""What GitOps tools see of BackgroundJobs as the operator leaves them: docs/gitops.md's Argo CD
health check, and kstatus itself (Flux, kpt, Config Sync; built by hack/kstatus.sh), for each
phase a real object reaches."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.gitops_health import argo_health
from tests.integration.bgj import FAIL_EXIT, RUN_FOR, Jobs, manifest

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration

KSTATUS = Path(os.environ.get("BACKGROUNDJOBS_CACHE", Path.home() / ".cache/backgroundjobs"))
KSTATUS = KSTATUS / "bin" / "kstatus"
# kstatus' word for each Argo CD health: the two must agree on every job.
KSTATUS_OF_HEALTH = {
    "Healthy": "Current",
    "Suspended": "Current",
    "Progressing": "InProgress",
    "Degraded": "Failed",
}


def kstatus(obj: dict) -> str:
    """kstatus' status of one object (the real library, through hack/kstatus)."""
    assert KSTATUS.is_file(), f"{KSTATUS} is missing: run bash hack/kstatus.sh (hack/setup.sh does)"
    out = subprocess.run(
        [str(KSTATUS)], input=json.dumps(obj), capture_output=True, text=True, check=True
    ).stdout
    return out.split()[1]


def test_health_of_real_backgroundjobs(bgjobs: Jobs) -> None:
    jobs = bgjobs
    jobs.create(manifest("ok"))
    jobs.create(manifest("broken", retries=0, pod_annotations={FAIL_EXIT: "1"}))
    jobs.create(manifest("later", delay="1h"))
    jobs.create(manifest("paused", delay="1h", suspend=True))
    jobs.create(manifest("busy", pod_annotations={RUN_FOR: "1h"}))
    jobs.create(manifest("stopped", pod_annotations={RUN_FOR: "1h"}))
    jobs.create(manifest("nightly", schedule="0 2 * * *"))
    jobs.create(manifest("after-broken", after={"name": "broken"}))

    expected = {
        "ok": ("Succeeded", "Healthy"),
        "broken": ("Failed", "Degraded"),
        "later": ("Scheduled", "Healthy"),
        "paused": ("Suspended", "Suspended"),
        "busy": ("Running", "Progressing"),
        "nightly": ("Scheduled", "Healthy"),
        "after-broken": ("Waiting", "Degraded"),  # ParentFailed: stuck until a requeue
    }
    jobs.wait_phase("stopped", "Running")
    jobs.annotate("stopped", c.ANNOTATION_CANCEL, "now")
    expected["stopped"] = ("Cancelled", "Suspended")
    for name, (phase, _) in expected.items():
        jobs.wait_phase(name, phase)
    assert (jobs.condition("after-broken", "Waiting") or {}).get("reason") == "ParentFailed"

    health = {name: argo_health(jobs.get(name) or {})[0] for name in expected}
    assert health == {name: h for name, (_, h) in expected.items()}
    seen = {name: kstatus(jobs.get(name) or {}) for name in expected}
    assert seen == {name: KSTATUS_OF_HEALTH[h] for name, (_, h) in expected.items()}
    # Stalled carries why: the failure's reason, or the parent's.
    assert (jobs.condition("broken", "Stalled") or {}).get("reason") == "BackoffLimitExceeded"
    assert (jobs.condition("after-broken", "Stalled") or {}).get("reason") == "ParentFailed"
    # The message Argo CD shows is the operator's own summary.
    _, message = argo_health(jobs.get("broken") or {})
    assert message == jobs.status("broken")["message"] and message
