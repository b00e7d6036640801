"""docs/gitops.md's Argo CD health check on BackgroundJobs as the operator leaves them: each
phase a real object reaches maps to the health Argo CD should show."""

from __future__ import annotations

import pytest
from tests.gitops_health import argo_health
from tests.integration.bgj import FAIL_EXIT, RUN_FOR, Jobs, manifest

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration


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
    # The message Argo CD shows is the operator's own summary.
    _, message = argo_health(jobs.get("broken") or {})
    assert message == jobs.status("broken")["message"] and message
