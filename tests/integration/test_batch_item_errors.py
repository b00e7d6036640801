"""Each failed item's last error in a batch's status (status.batch.itemErrors), shown by
``bgjobs describe``; kwok fails the pods of the indexes named in an annotation."""

from __future__ import annotations

import pytest
from tests.integration.bgj import Jobs, manifest

from backgroundjobs.cli import main

pytestmark = pytest.mark.integration

FAIL_INDEXES = "kwok.backgroundjobs.dev/fail-indexes"
FAIL_MESSAGE = "kwok.backgroundjobs.dev/fail-message"


def test_failed_items_and_their_errors_in_status_and_describe(
    bgjobs: Jobs, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = {FAIL_INDEXES: "0,2", FAIL_MESSAGE: '{"error": "mailbox full", "type": "SMTPError"}'}
    items = [{"args": [f"user-{i}"]} for i in range(4)]
    bgjobs.create(manifest("mails", pod_annotations=pod, items=items, retries=0, maxFailed=1))
    st = bgjobs.wait_phase("mails", "Succeeded", "Failed", timeout=120)
    assert st["phase"] == "Failed", st.get("message")  # two failed, over the budget of one
    errors = st["batch"]["itemErrors"]
    assert [e["index"] for e in errors] == [0, 2]
    assert {e["error"] for e in errors} == {"SMTPError: mailbox full"}

    capsys.readouterr()
    assert main(["-n", namespace, "describe", "mails"]) == 0, capsys.readouterr().err
    described = capsys.readouterr().out
    assert "Errors:     #0: SMTPError: mailbox full" in described
    assert "#2: SMTPError: mailbox full" in described
