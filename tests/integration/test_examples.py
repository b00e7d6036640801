"""The manifests in examples/ are accepted by the API server and reach their first phase."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.integration.bgj import Jobs

pytestmark = pytest.mark.integration

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
EXPECTED = {
    "welcome-email-42": ("Immediate", {"Running", "Succeeded"}),
    "password-reset-42": ("Immediate", {"Running", "Succeeded"}),
    "password-reset-42-reminder": ("Delayed", {"Scheduled"}),
    "delayed-echo": ("Delayed", {"Scheduled"}),
    "cleanup-temp-files": ("Recurring", {"Scheduled"}),
    "cleanup-expired-cache": ("Recurring", {"Scheduled"}),
    "monthly-report-42": ("Immediate", {"Running", "Succeeded"}),
    "monthly-report-42-email": ("Continuation", {"Waiting", "Running", "Succeeded"}),
    "terms-changed": ("Batch", {"Running", "Succeeded"}),
    "terms-changed-summary": ("Continuation", {"Waiting", "Running", "Succeeded"}),
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted_and_reconciled(path: Path, bgjobs: Jobs) -> None:
    all_docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    docs = [d for d in all_docs if d["kind"] == "BackgroundJob"]
    assert docs, f"{path} has no BackgroundJob"
    for secret in (d for d in all_docs if d["kind"] == "Secret"):  # what a job refers to
        bgjobs.core.create_namespaced_secret(bgjobs.ns, secret)
    for doc in docs:
        bgjobs.create(doc)
    for doc in docs:
        name = doc["metadata"]["name"]
        job_type, phases = EXPECTED[name]
        st = bgjobs.wait_phase(name, *phases)
        assert st["type"] == job_type
