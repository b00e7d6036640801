"""A queue's rate limit kept within 10 % both ways: 41 jobs wait in a paused queue with
``rateLimit {perSecond: 2, burst: 1}``; once resumed the first starts at once and the other 40
at 2/s, so their Jobs appear over 20 s. Measured from a watch's clock (sub-second), over a
window long enough that a watch's jitter (tenths of a second) stays well inside 10 %;
the Jobs' creationTimestamps (whole seconds) agree within their granularity."""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.integration.bgj import Jobs, manifest, wait_for
from tests.integration.queue_helpers import JobLog, Queues

pytestmark = pytest.mark.integration

RATE = 2.0
JOBS = 41


def test_a_rate_limited_queue_starts_jobs_within_10_percent_of_its_rate(
    bgjobs: Jobs, api_client: client.ApiClient
) -> None:
    queues = Queues(api_client, bgjobs.ns)
    queues.create("paced", rateLimit={"perSecond": RATE, "burst": 1}, paused=True)
    names = [f"p-{i:02d}" for i in range(JOBS)]
    with JobLog(api_client, bgjobs.ns) as log:
        for name in names:
            bgjobs.create(manifest(name, queue="paced"))
        wait_for(
            "every job to wait in the paused queue",
            lambda: (queues.get("paced").get("status") or {}).get("pending") == JOBS,
            timeout=120,
        )
        assert log.created == []
        queues.patch("paced", {"paused": False})
        wait_for("every Job", lambda: len(log.created) == JOBS, timeout=120)
        created_at = list(log.created_at)
    assert log.created == names
    span = created_at[-1] - created_at[0]
    ideal = (JOBS - 1) / RATE
    rate = (JOBS - 1) / span
    assert abs(rate - RATE) <= 0.1 * RATE, f"{rate:.3f}/s over {span:.2f}s (ideal {ideal:.1f}s)"
    stamps = sorted(j.metadata.creation_timestamp.timestamp() for j in bgjobs.jobs())
    assert abs((stamps[-1] - stamps[0]) - span) <= 1.0 + 0.1 * ideal
