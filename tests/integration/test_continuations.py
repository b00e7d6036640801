"""Continuations: a BackgroundJob with ``spec.after`` starts when its parent reaches the state
named in ``after.when`` (API.md §1, "continuations"). Timeouts are generous: outcomes only.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.bgj import FAIL_EXIT, MESSAGE, RUN_FOR, Jobs, manifest, wait_for

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration

LONG = {RUN_FOR: "600s"}  # a parent that runs until it is cancelled or deleted
SETTLE = 4.0  # seconds to watch that nothing more happens


def child(name: str, parent: str, when: str | None = None, **spec: Any) -> dict[str, Any]:
    after: dict[str, Any] = {"name": parent}
    if when is not None:
        after["when"] = when
    return manifest(name, after=after, **spec)


def wait_reason(bgjobs: Jobs, name: str, ctype: str, reason: str, timeout: float = 90) -> Any:
    def probe() -> dict[str, Any] | None:
        cnd = bgjobs.condition(name, ctype)
        return cnd if cnd and cnd["status"] == "True" and cnd["reason"] == reason else None

    return wait_for(f"{name}: condition {ctype} True with reason {reason}", probe, timeout)


def env_of(job: Any) -> dict[str, str]:
    (handler,) = [x for x in job.spec.template.spec.containers if x.name == c.HANDLER_CONTAINER]
    return {e.name: e.value for e in handler.env or []}


def assert_child_ran(bgjobs: Jobs, name: str) -> None:
    st = bgjobs.wait_phase(name, "Succeeded", timeout=120)
    assert st["runs"] == 1
    assert [j.metadata.name for j in bgjobs.jobs(name)] == [st["jobName"]]


def assert_child_waits(bgjobs: Jobs, name: str, reason: str) -> None:
    wait_reason(bgjobs, name, "Waiting", reason)
    time.sleep(SETTLE)
    st = bgjobs.status(name)
    assert st["phase"] == "Waiting"
    assert not st.get("runs")
    assert bgjobs.jobs(name) == []


# parent outcome -> (how to bring it about) ; expected child outcome per `when`
EXPECTED = {
    # (when, outcome): ("runs", None) | ("waits", reason) | ("fails", reason)
    ("Succeeded", "succeeded"): ("runs", None),
    ("Succeeded", "failed"): ("waits", "ParentFailed"),
    ("Succeeded", "cancelled"): ("waits", "ParentFailed"),
    ("Succeeded", "deleted"): ("fails", "ParentDeleted"),
    ("Failed", "succeeded"): ("waits", "ParentSucceeded"),
    ("Failed", "failed"): ("runs", None),
    ("Failed", "cancelled"): ("runs", None),
    ("Failed", "deleted"): ("fails", "ParentDeleted"),
    ("Finished", "succeeded"): ("runs", None),
    ("Finished", "failed"): ("runs", None),
    ("Finished", "cancelled"): ("runs", None),
    ("Finished", "deleted"): ("fails", "ParentDeleted"),
}


@pytest.mark.parametrize(("when", "outcome"), sorted(EXPECTED), ids=lambda v: str(v))
def test_when_matrix(bgjobs: Jobs, when: str, outcome: str) -> None:
    if outcome == "succeeded":
        parent = manifest("parent", pod_annotations={MESSAGE: '{"ok": 1}'})
    elif outcome == "failed":
        parent = manifest("parent", retries=0, pod_annotations={FAIL_EXIT: "1"})
    else:
        parent = manifest("parent", pod_annotations=LONG)
    bgjobs.create(parent)
    bgjobs.create(child("kid", "parent", when))

    if outcome in ("cancelled", "deleted"):
        bgjobs.wait_phase("parent", "Running")
        wait_reason(bgjobs, "kid", "Waiting", "ParentRunning")
        assert bgjobs.jobs("kid") == []
        if outcome == "cancelled":
            bgjobs.annotate("parent", c.ANNOTATION_CANCEL, "now")
            bgjobs.wait_phase("parent", "Cancelled")
        else:
            bgjobs.delete("parent")
            wait_for("the parent to be gone", lambda: bgjobs.get("parent") is None, timeout=60)
    else:
        bgjobs.wait_phase("parent", "Succeeded" if outcome == "succeeded" else "Failed")

    what, reason = EXPECTED[(when, outcome)]
    if what == "runs":
        assert_child_ran(bgjobs, "kid")
    elif what == "waits":
        assert_child_waits(bgjobs, "kid", reason)
    else:
        st = bgjobs.wait_phase("kid", "Failed")
        failed = bgjobs.condition("kid", "Failed")
        assert failed is not None and failed["status"] == "True"
        assert failed["reason"] == reason
        assert not st.get("runs")
        time.sleep(SETTLE)
        assert bgjobs.jobs("kid") == []
        assert bgjobs.status("kid")["phase"] == "Failed"


def test_chain_of_five_runs_in_order(bgjobs: Jobs) -> None:
    names = ["a", "b", "c", "d", "e"]
    bgjobs.create(manifest("a"))
    for parent, name in itertools.pairwise(names):
        bgjobs.create(child(name, parent))

    bgjobs.wait_phase("e", "Succeeded", timeout=240)

    jobs = {}
    for name in names:
        st = bgjobs.status(name)
        assert st["phase"] == "Succeeded" and st["runs"] == 1
        (job,) = bgjobs.jobs(name)
        jobs[name] = job
    for parent, name in itertools.pairwise(names):
        done = jobs[parent].status.completion_time
        assert done is not None
        assert jobs[name].metadata.creation_timestamp >= done, (
            f"{name}'s Job was created before {parent}'s Job completed"
        )


def test_three_children_of_one_parent(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("root", pod_annotations={MESSAGE: '"root-result"'}))
    kids = {"k1": "Succeeded", "k2": "Finished", "k3": None}
    for name, when in kids.items():
        bgjobs.create(child(name, "root", when))

    for name in kids:
        assert_child_ran(bgjobs, name)
        assert env_of(bgjobs.jobs(name)[0])[c.ENV_PARENT_RESULT] == '"root-result"'
    assert bgjobs.status("root")["runs"] == 1


def test_child_created_before_parent_waits_then_runs(bgjobs: Jobs) -> None:
    bgjobs.create(child("early", "late-parent"))
    wait_reason(bgjobs, "early", "Waiting", "ParentNotFound")
    assert bgjobs.status("early")["phase"] == "Waiting"
    time.sleep(2)
    assert bgjobs.jobs("early") == []

    bgjobs.create(manifest("late-parent"))

    bgjobs.wait_phase("late-parent", "Succeeded")
    assert_child_ran(bgjobs, "early")


def test_parent_result_reaches_the_child_env(bgjobs: Jobs) -> None:
    result = {"invoice": "INV-7", "lines": [1, 2, 3], "total": 12.5, "note": "ü"}
    bgjobs.create(manifest("producer", pod_annotations={MESSAGE: json.dumps(result)}))
    bgjobs.create(child("consumer", "producer"))

    assert_child_ran(bgjobs, "consumer")
    parent_result = bgjobs.status("producer")["result"]
    assert parent_result == result
    env = env_of(bgjobs.jobs("consumer")[0])
    assert env[c.ENV_PARENT] == "producer"
    assert json.loads(env[c.ENV_PARENT_RESULT]) == parent_result
    assert env[c.ENV_NAME] == "consumer"


def test_requeued_parent_releases_a_waiting_child(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("flaky", retries=0, pod_annotations={FAIL_EXIT: "1"}))
    bgjobs.create(child("after-flaky", "flaky"))
    bgjobs.wait_phase("flaky", "Failed")
    assert_child_waits(bgjobs, "after-flaky", "ParentFailed")

    bgjobs.patch(
        "flaky",
        {
            "metadata": {"annotations": {c.ANNOTATION_REQUEUE: "retry-1"}},
            "spec": {
                "podTemplate": {"metadata": {"annotations": {FAIL_EXIT: "0", MESSAGE: '"2nd"'}}}
            },
        },
    )

    st = wait_for(
        "the parent's second run to succeed",
        lambda: (s := bgjobs.status("flaky")).get("phase") == "Succeeded" and s,
        timeout=120,
    )
    assert st["runs"] == 2
    assert st["handledActions"]["requeue"] == "retry-1"
    assert len(bgjobs.jobs("flaky")) == 2
    assert_child_ran(bgjobs, "after-flaky")
    env = env_of(bgjobs.jobs("after-flaky")[0])
    assert json.loads(env[c.ENV_PARENT_RESULT]) == "2nd"


def test_recurring_parent_is_invalid(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("cron-parent", schedule="0 0 1 1 *"))
    bgjobs.create(child("cron-child", "cron-parent"))

    st = bgjobs.wait_phase("cron-child", "Failed")
    failed = bgjobs.condition("cron-child", "Failed")
    assert failed is not None
    assert (failed["status"], failed["reason"]) == ("True", "InvalidSpec")
    assert "Recurring" in failed["message"]
    assert not st.get("runs")
    wait_for(
        "a Warning InvalidSpec event",
        lambda: any(
            e.reason == "InvalidSpec" and e.type == "Warning" for e in bgjobs.events("cron-child")
        ),
        timeout=30,
    )
    time.sleep(2)
    assert bgjobs.jobs("cron-child") == []


def test_requeued_child_gets_the_parent_result_again(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("source", pod_annotations={MESSAGE: '{"batch": 3}'}))
    bgjobs.create(child("sink", "source"))
    assert_child_ran(bgjobs, "sink")

    bgjobs.annotate("sink", c.ANNOTATION_REQUEUE, "again")

    wait_for(
        "the child's second run to succeed",
        lambda: (s := bgjobs.status("sink")).get("runs") == 2 and s.get("phase") == "Succeeded",
        timeout=120,
    )
    jobs = sorted(bgjobs.jobs("sink"), key=lambda j: j.metadata.name)
    assert len(jobs) == 2
    for job in jobs:
        env = env_of(job)
        assert env[c.ENV_PARENT] == "source"
        assert json.loads(env[c.ENV_PARENT_RESULT]) == {"batch": 3}, job.metadata.name


REFUSE = "test.backgroundjobs.dev/refuse-succeeded"


def _refuse_succeeded_status(
    api_client: client.ApiClient, ns: str
) -> tuple[str, client.AdmissionregistrationV1Api]:
    """A ValidatingAdmissionPolicy (and binding, for ``ns`` only) refusing any write that
    makes a BackgroundJob labelled REFUSE say phase Succeeded: the status patch fails as an
    API server or network failure would make it fail."""
    adm = client.AdmissionregistrationV1Api(api_client)
    name = f"bgj-test-refuse-succeeded-{ns}"
    adm.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [c.GROUP],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": [f"{c.PLURAL}/status"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": (
                            f"!(has(object.metadata.labels) && '{REFUSE}' in object.metadata.labels"
                            " && has(object.status) && has(object.status.phase)"
                            " && object.status.phase == 'Succeeded')"
                        ),
                        "message": "refused by the test's policy",
                    }
                ],
            },
        }
    )
    adm.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
                },
            },
        }
    )
    return name, adm


def test_parent_status_write_refused_then_allowed(
    bgjobs: Jobs, api_client: client.ApiClient
) -> None:
    """The hand-off shows a finished parent's outcome to its children before the parent's
    status patch is answered; when that patch fails the parent's status must still be written
    once the API server takes it again (the operator's cache must not keep the unwritten
    status as if it were stored), and nothing runs twice."""
    name, adm = _refuse_succeeded_status(api_client, bgjobs.ns)
    try:
        # The policy is in force once a dry-run status write that it refuses is refused.
        probe = manifest("policy-probe", suspend=True)
        probe["metadata"]["labels"] = {REFUSE: "1"}
        bgjobs.create(probe)

        def refused() -> bool:
            try:
                bgjobs.custom.patch_namespaced_custom_object_status(
                    c.GROUP,
                    c.VERSION,
                    bgjobs.ns,
                    c.PLURAL,
                    "policy-probe",
                    {"status": {"phase": "Succeeded"}},
                    dry_run="All",
                )
            except ApiException as exc:
                return "refused by the test's policy" in str(exc.body)
            return False

        wait_for("the admission policy to be in force", refused, timeout=60, interval=0.5)

        parent = manifest("blocked-parent")
        parent["metadata"]["labels"] = {REFUSE: "1"}
        bgjobs.create(parent)
        bgjobs.create(child("after-blocked", "blocked-parent"))

        def parent_job_complete() -> bool:
            jobs = bgjobs.jobs("blocked-parent")
            return bool(jobs) and jobs[0].status.completion_time is not None

        wait_for("the parent's Job to complete", parent_job_complete, timeout=90)
        time.sleep(SETTLE)  # the operator tries (and fails) to write Succeeded meanwhile
        assert bgjobs.status("blocked-parent").get("phase") != "Succeeded"
    finally:
        adm.delete_validating_admission_policy_binding(name)
        adm.delete_validating_admission_policy(name)

    st = bgjobs.wait_phase("blocked-parent", "Succeeded", timeout=150)
    assert st["runs"] == 1
    assert [j.metadata.name for j in bgjobs.jobs("blocked-parent")] == [st["jobName"]]
    assert_child_ran(bgjobs, "after-blocked")
    assert bgjobs.status("after-blocked")["phase"] == "Succeeded"
