"""Per-handler defaults and retention per outcome on the local cluster: the client writes a
handler's declared options into the BackgroundJob (call options win), and the operator
deletes a success kept ``0s`` at once while it keeps a failure kept ``720h``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests.integration.bgj import Jobs, wait_for

from backgroundjobs import handler
from backgroundjobs.client import Client

pytestmark = pytest.mark.integration

FAIL_AT_ONCE = {"metadata": {"annotations": {"kwok.backgroundjobs.dev/exit-code": "2"}}}


@handler(
    "tests.integration.mail_send",
    queue="critical",
    retries=5,
    timeout="5m",
    keep_succeeded="0s",
    keep_failed="720h",
)
def mail_send(to: str) -> None:
    """Declared options: critical queue, 5 retries, 5 minutes, successes not kept."""


@pytest.fixture
def client(kubeconfig: str, namespace: str, operator: object) -> Iterator[Client]:
    with Client(kubeconfig=kubeconfig, namespace=namespace) as c:
        yield c


def test_the_handler_s_defaults_are_applied_and_call_options_win(
    client: Client, bgjobs: Jobs
) -> None:
    declared = client.enqueue(mail_send, "a@b.c", pod_template=FAIL_AT_ONCE)
    spec = (bgjobs.get(declared) or {})["spec"]
    assert (spec["queue"], spec["retries"], spec["timeout"]) == ("critical", 5, "5m")
    assert (spec["ttlAfterSucceeded"], spec["ttlAfterFailed"]) == ("0s", "720h")

    chosen = client.enqueue(
        "tests.integration.mail_send", "a@b.c", queue="default", retries=1, keep_succeeded="1h"
    )
    spec = (bgjobs.get(chosen) or {})["spec"]
    assert (spec["queue"], spec["retries"], spec["timeout"]) == ("default", 1, "5m")
    assert spec["ttlAfterSucceeded"] == "1h"

    # retention per outcome: the success (kept 0s) is deleted once it finished, the failure
    # (kept 720h) stays
    fine = client.enqueue(mail_send, "a@b.c", name="kept-0s")
    wait_for("the success kept 0s to be deleted", lambda: bgjobs.get(fine) is None, 90)
    failed = bgjobs.wait_phase(declared, "Failed")
    assert failed["phase"] == "Failed"
    time.sleep(3)  # a reconcile after the end would have deleted it by now
    assert bgjobs.get(declared) is not None
