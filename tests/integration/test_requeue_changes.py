"""Requeue with changes (issue 17 item 5) on the local cluster: the new run uses the new
spec, status.runHistory says which generation and who asked, a SIGKILL of the operator
right after the requeue's write still gives exactly one new run, an invalid change or a
user without patch rights changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.integration.bgj import FAIL_EXIT, RUN_FOR, Jobs, manifest, wait_for

from backgroundjobs.api import constants as c
from backgroundjobs.cli import main

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _failed(bgjobs: Jobs, name: str, **spec: Any) -> dict[str, Any]:
    bgjobs.create(manifest(name, pod_annotations={FAIL_EXIT: "1"}, retries=0, **spec))
    bgjobs.wait_phase(name, "Failed", timeout=120)
    body = bgjobs.get(name)
    assert body is not None
    return body


def _handler_container(job: Any) -> Any:
    (container,) = [x for x in job.spec.template.spec.containers if x.name == "handler"]
    return container


def _env(container: Any) -> dict[str, str]:
    return {e.name: e.value for e in container.env or [] if e.value is not None}


def _wait_failed_run(bgjobs: Jobs, name: str, run: int) -> None:
    def probe() -> bool:
        st = bgjobs.status(name)
        return st.get("runs") == run and st.get("phase") == "Failed"

    wait_for(f"run {run} of {name} to fail", probe, timeout=120)


def _with_runs(status: dict[str, Any], count: int) -> dict[str, Any] | None:
    """The status once its run history holds ``count`` runs."""
    return status if len(status.get("runHistory") or []) == count else None


def test_requeue_with_new_kwargs_env_image_runs_them_and_records_who_asked(
    bgjobs: Jobs, namespace: str, api_client: client.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _failed(bgjobs, "mail", kwargs={"to": "old@example.com", "n": 1})
    assert before["metadata"]["generation"] == 1
    rc = main(
        ["-n", namespace, "requeue", "mail", "-k", "to=new@example.com",
         "--env", "MODE=careful", "--image", "example.com/handlers:2", "--limits", "memory=2Gi"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "requeued" in out
    job = wait_for("the requeued run's Job", lambda: bgjobs.job("mail-2"), timeout=120)
    handler = _handler_container(job)
    env = _env(handler)
    assert json.loads(env[c.ENV_KWARGS]) == {"to": "new@example.com", "n": 1}
    assert env["MODE"] == "careful"
    assert handler.image == "example.com/handlers:2"
    assert handler.resources.limits["memory"] == "2Gi"
    body = bgjobs.get("mail")
    assert body is not None
    generation = body["metadata"]["generation"]
    assert generation == 2  # one write: the spec changed once
    status = wait_for(
        "run 2 in the run history",
        lambda: _with_runs(bgjobs.status("mail"), 2),
        timeout=60,
    )
    first, second = status["runHistory"]
    assert (first["run"], first["generation"], first["reason"]) == (1, 1, "Created")
    assert (second["run"], second["job"], second["generation"]) == (2, "mail-2", 2)
    assert second["reason"] == "Requeued"
    # the test cluster's kubeconfig user, as the API server named it (SelfSubjectReview)
    review = client.AuthenticationV1Api(api_client).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    assert review.status is not None and review.status.user_info is not None
    assert second["requestedBy"] == review.status.user_info.username
    assert second["requesterSource"] == "Client"  # no admission policy in this cluster
    rc = main(["-n", namespace, "describe", "mail"])
    out, _ = capsys.readouterr()
    assert "Run history: the last 2" in out
    assert "Requeued" in out and f"{second['requestedBy']} (unchecked)" in out


def test_changes_to_a_running_job_are_refused_and_nothing_changes(
    bgjobs: Jobs, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bgjobs.create(manifest("busy", pod_annotations={RUN_FOR: "120s"}))
    bgjobs.wait_phase("busy", "Running", timeout=120)
    rc = main(["-n", namespace, "requeue", "busy", "-k", "x=1"])
    _, err = capsys.readouterr()
    assert rc == 1 and "busy is Running: only a finished job" in err, err
    body = bgjobs.get("busy")
    assert body is not None and body["metadata"]["generation"] == 1
    assert c.ANNOTATION_REQUEUE not in (body["metadata"].get("annotations") or {})


def test_an_invalid_change_is_refused_naming_the_field_and_nothing_changes(
    bgjobs: Jobs, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _failed(bgjobs, "bad")
    rc = main(["-n", namespace, "requeue", "bad", "--image", "has space", "-k", "x=1"])
    _, err = capsys.readouterr()
    assert rc == 4, err
    assert "spec.image" in err and "whitespace" in err
    after = bgjobs.get("bad")
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert c.ANNOTATION_REQUEUE not in (after["metadata"].get("annotations") or {})
    assert after["spec"] == before["spec"]
    time.sleep(3)  # the operator had the time to act, had anything changed
    assert [j.metadata.name for j in bgjobs.jobs("bad")] == ["bad-1"]
    assert bgjobs.status("bad")["runs"] == 1


def test_a_user_without_patch_rights_is_refused(
    bgjobs: Jobs, namespace: str, kubeconfig: str, api_client: client.ApiClient
) -> None:
    before = _failed(bgjobs, "guarded")
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {  # type: ignore[arg-type]
            "metadata": {"name": "bgj-reader"},
            "rules": [{"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {  # type: ignore[arg-type]
            "metadata": {"name": "bgj-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "bgj-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "reader"}],
        },
    )  # fmt: skip
    env = {"KUBECONFIG": kubeconfig, "PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(Path.home())}
    for changes in ([], ["-k", "x=2"]):  # the plain request, and a read then a patch
        done = subprocess.run(
            [str(BIN / "bgjobs"), "-n", namespace, "--as", "reader", "requeue", "guarded",
             *changes],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert "not allowed (403" in done.stderr and '"reader"' in done.stderr
        assert "patch" in done.stderr
    after = bgjobs.get("guarded")
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert c.ANNOTATION_REQUEUE not in (after["metadata"].get("annotations") or {})


def test_sigkill_right_after_the_requeue_write_gives_exactly_one_new_run(
    bgjobs: Jobs, namespace: str, operator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _failed(bgjobs, "killed")
    # 1: the write lands, the operator dies at once (before or after it acted: a race)
    assert main(["-n", namespace, "requeue", "killed", "-k", "attempt=2"]) == 0
    operator.kill()
    operator.start()
    _wait_failed_run(bgjobs, "killed", 2)
    # 2: the operator is down when the write lands, and comes back
    operator.kill()
    try:
        assert main(["-n", namespace, "requeue", "killed", "-k", "attempt=3"]) == 0
        time.sleep(1)
    finally:
        operator.start()
    _wait_failed_run(bgjobs, "killed", 3)
    # and killed again once it acted: nothing more
    operator.kill()
    operator.start()
    time.sleep(3)
    capsys.readouterr()
    status = bgjobs.status("killed")
    assert status["runs"] == 3
    assert sorted(j.metadata.name for j in bgjobs.jobs("killed")) == [
        "killed-1", "killed-2", "killed-3",
    ]  # fmt: skip
    history = status["runHistory"]
    assert [(r["run"], r["generation"]) for r in history] == [(1, 1), (2, 2), (3, 3)]
    job3 = bgjobs.job("killed-3")
    assert json.loads(_env(_handler_container(job3))[c.ENV_KWARGS]) == {"attempt": 3}


def test_requeue_of_a_recurring_job_runs_it_once_now_schedule_unchanged(
    bgjobs: Jobs, namespace: str
) -> None:
    bgjobs.create(manifest("nightly", schedule="0 3 1 1 *"))
    due = wait_for("the next run", lambda: bgjobs.status("nightly").get("dueAt"), timeout=60)
    assert main(["-n", namespace, "requeue", "nightly", "-k", "full=true"]) == 0
    status = wait_for(
        "the requeued run",
        lambda: _with_runs(bgjobs.status("nightly"), 1),
        timeout=120,
    )
    (record,) = status["runHistory"]
    assert record["reason"] == "Requeued" and record["generation"] == 2
    job = wait_for("its Job", lambda: bgjobs.job(record["job"]), timeout=60)
    assert json.loads(_env(_handler_container(job))[c.ENV_KWARGS]) == {"full": True}
    # the Event is posted after the status write that records the run
    wait_for("the Requeued Event", lambda: "Requeued" in bgjobs.event_reasons("nightly"), 60)
    assert bgjobs.status("nightly")["dueAt"] == due
