"""A batch for real: 200 notifications as one Indexed Job of the example image on a real node,
each item delivered exactly once to its user's inbox on a volume (the runtime picks its item
from the mounted ConfigMap by JOB_COMPLETION_INDEX)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from tests.e2e.conftest import OperatorRelease
from tests.e2e.incluster import node_volume
from tests.e2e.realcluster import Jobs, background_job
from tests.e2e.test_cluster_scenarios import handler_template

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

USERS = 200  # the bulk notification (scenario 5), each user once


def test_a_batch_of_200_notifications_delivers_each_once(
    jobs: Jobs,
    core_v1: client.CoreV1Api,
    cluster_images: dict[str, str],
    operator_release: OperatorRelease,
) -> None:
    volume = node_volume(
        core_v1, jobs.namespace, operator_release.namespace, cluster_images["examples"]
    )
    users = [f"user-{i:03d}" for i in range(USERS)]
    try:
        pod_volume, mount = volume.mount("/inbox")
        env = [{"name": "BGJ_NOTIFY_DIR", "value": "/inbox"}]
        jobs.create(
            background_job(
                "terms-batch",
                "notifications.send_to_user",
                items=[
                    {"args": [u, "Our terms changed"], "kwargs": {"title": "News"}} for u in users
                ],
                parallelism=20,  # the seed's WorkerCount
                retries=1,
                podTemplate=handler_template(env, [mount], [pod_volume]),
            ),
            background_job(
                "terms-batch-done",
                "test.echo",
                ["done"],
                after={"name": "terms-batch"},
            ),
        )
        status = jobs.wait_phase("terms-batch", timeout=900)
        assert status["phase"] == "Succeeded", status
        assert status["batch"]["succeeded"] == USERS and status["batch"]["failed"] == 0
        assert status["result"] == {"total": USERS, "succeeded": USERS, "failed": 0}
        child = jobs.wait_phase("terms-batch-done", timeout=300)
        assert child["phase"] == "Succeeded", child
        assert child["result"]["parentResult"] == status["result"]  # the batch's counts
        inboxes = json.loads(
            volume.run_as_root(
                "import json, os\n"
                "root = os.environ['VOLUME']\n"
                "print(json.dumps({f: open(os.path.join(root, f)).read().splitlines()"
                " for f in sorted(os.listdir(root))}))"
            )
        )
        assert sorted(inboxes) == [f"{u}.jsonl" for u in users]
        for user in users:
            (line,) = inboxes[f"{user}.jsonl"]  # delivered once
            notification = json.loads(line)
            assert notification["userId"] == user and notification["title"] == "News"
        ids = {json.loads(lines[0])["id"] for lines in inboxes.values()}
        assert len(ids) == USERS  # an idempotence key per item
        assert len(jobs.pods("terms-batch")) == USERS  # one pod per item, none retried
    finally:
        volume.delete()
