"""The chart's requester policy on the local API server: a requeue annotation may name only
the user who writes it (``<time> by <user>``); one naming nobody, and every other write,
pass. (The operator side, requesterSource AdmissionPolicy with the setting the chart
sets along, is in tests/unit/test_run_history.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.bgj import Jobs, manifest, wait_for
from tests.unit.test_chart_render import CHART, HELM, helm

from backgroundjobs.api import constants as c

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)"),
]


@pytest.fixture
def requester_policy(api_client: client.ApiClient) -> Iterator[str]:
    """The chart's requester policy and binding, installed for the test and removed after."""
    out = helm("template", "rq", str(CHART), "-n", "bgj",
               "--show-only", "templates/requester-policy.yaml")  # fmt: skip
    assert out.returncode == 0, out.stderr
    policy, binding = [d for d in yaml.safe_load_all(out.stdout) if d]
    admission = client.AdmissionregistrationV1Api(api_client)
    admission.create_validating_admission_policy(policy)
    admission.create_validating_admission_policy_binding(binding)
    try:
        yield str(policy["metadata"]["name"])
    finally:
        admission.delete_validating_admission_policy_binding(binding["metadata"]["name"])
        admission.delete_validating_admission_policy(policy["metadata"]["name"])


def _requeue(bgjobs: Jobs, name: str, value: str) -> Any:
    return bgjobs.annotate(name, c.ANNOTATION_REQUEUE, value)


def test_a_requeue_may_name_only_its_own_requester(
    bgjobs: Jobs, api_client: client.ApiClient, requester_policy: str
) -> None:
    me = client.AuthenticationV1Api(api_client).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    assert me.status is not None and me.status.user_info is not None
    user = me.status.user_info.username
    bgjobs.create(manifest("asked"))
    bgjobs.wait_phase("asked", "Succeeded", timeout=120)

    def refused() -> str | None:  # the policy takes effect a moment after it is created
        try:
            _requeue(bgjobs, "asked", "2030-01-01T00:00:00Z by mallory")
        except ApiException as exc:
            return str(exc.body) if exc.status in (403, 422) else None
        return None

    message = wait_for("the policy to refuse a false requester", refused, timeout=60)
    assert "names mallory as the requester" in message and user in message
    body = bgjobs.get("asked")
    assert body is not None
    assert c.ANNOTATION_REQUEUE not in (body["metadata"].get("annotations") or {})
    # naming yourself, or nobody, passes
    _requeue(bgjobs, "asked", f"2030-01-01T00:00:00.000001Z by {user}")
    _requeue(bgjobs, "asked", "now")
    bgjobs.patch("asked", {"metadata": {"labels": {"team": "mail"}}})
