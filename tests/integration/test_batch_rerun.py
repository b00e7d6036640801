"""A ``failed-only`` requeue of a batch (API.md, "Requeue only the failed items"): the new
run is an Indexed Job over only the items that did not succeed, each run with its own
arguments and reported under its index in the batch. kwok fails the pods of the completion
indexes named in ``kwok.backgroundjobs.dev/fail-indexes`` (hack/kwok/README.md): the same
annotation on the rerun's pods fails other items, which shows the indexes mapped back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.integration.bgj import Jobs, manifest, wait_for
from tests.integration.test_batches import FAIL_INDEXES, FAIL_MESSAGE, batch, configmaps

from backgroundjobs.api import constants as c
from backgroundjobs.cli import main
from backgroundjobs.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(kubeconfig: str, namespace: str, operator: object) -> Iterator[Client]:
    with Client(kubeconfig=kubeconfig, namespace=namespace) as jobs_client:
        yield jobs_client


def finished_run(bgjobs: Jobs, name: str, run: int) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        st = bgjobs.status(name)
        return st if st.get("runs") == run and st.get("phase") in ("Succeeded", "Failed") else None

    return wait_for(f"{name} run {run} to finish", probe, timeout=120)


def item_lines(bgjobs: Jobs, configmap: str) -> list[dict[str, Any]]:
    cm = bgjobs.core.read_namespaced_config_map(configmap, bgjobs.ns)
    return [json.loads(line) for line in cm.data[c.BATCH_ITEMS_KEY].splitlines()]


def test_failed_only_reruns_those_items_under_their_indexes(
    bgjobs: Jobs, jobs: Client, namespace: str, operator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = {FAIL_INDEXES: "1,3,4", FAIL_MESSAGE: '{"error": "mailbox full", "type": "SMTPError"}'}
    bgjobs.create(batch("mails", 6, pod, retries=0, parallelism=3))
    st = finished_run(bgjobs, "mails", 1)
    assert st["phase"] == "Failed" and st["batch"]["failedIndexes"] == "1,3,4"

    # run 2 from the CLI: items 1, 3 and 4 at completion indexes 0, 1, 2; index 1 fails again
    assert main(["-n", namespace, "requeue", "mails", "--failed-only"]) == 0, capsys.readouterr()
    st = finished_run(bgjobs, "mails", 2)
    assert [(x["index"], x["args"]) for x in item_lines(bgjobs, "mails-2")] == [
        (1, ["user-1"]),
        (3, ["user-3"]),
        (4, ["user-4"]),
    ]
    assert bgjobs.job("mails-2").spec.completions == 3
    assert len(bgjobs.pods("mails-2")) == 3  # those items only, once each
    b = st["batch"]
    assert (b["total"], b["succeeded"], b["failed"], b["failedIndexes"]) == (6, 5, 1, "3")
    assert b["itemErrors"] == [{"index": 3, "error": "SMTPError: mailbox full"}]
    assert b["rerun"] == {"fromRun": 1, "items": 3, "indexes": "1,3,4"}
    assert st["phase"] == "Failed" and "rerun of 3 items of run 1" in st["message"]

    # run 3 from the client, the operator killed after the ConfigMap and before the Job
    operator.kill()
    try:
        jobs.requeue("mails", failed_only=True)
        made = bgjobs.get("mails")
        assert made is not None
        owner = client.V1OwnerReference(
            api_version=c.API_VERSION, kind=c.KIND, name="mails",
            uid=made["metadata"]["uid"], controller=True,
        )  # fmt: skip
        line = {"index": 3, "args": ["user-3"], "kwargs": {"title": "News"}}
        bgjobs.core.create_namespaced_config_map(
            bgjobs.ns,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name="mails-3", labels={c.LABEL_NAME: "mails"}, owner_references=[owner]
                ),
                data={c.BATCH_ITEMS_KEY: json.dumps(line, separators=(",", ":")) + "\n"},
            ),
        )
    finally:
        operator.start()
    st = finished_run(bgjobs, "mails", 3)
    assert st["phase"] == "Succeeded", st["message"]
    b = st["batch"]
    assert (b["succeeded"], b["failed"], b["progress"]) == (6, 0, "6/6")
    assert b["rerun"] == {"fromRun": 2, "items": 1, "indexes": "3"}
    assert [j.metadata.name for j in bgjobs.jobs("mails")] == ["mails-1", "mails-2", "mails-3"]
    assert sorted(m.metadata.name for m in configmaps(bgjobs, "mails")) == [
        "mails-1",
        "mails-2",
        "mails-3",
    ]
    assert len(bgjobs.pods("mails-3")) == 1

    # nothing failed in run 3: refused with a Warning, no run 4
    jobs.requeue("mails", failed_only=True)
    wait_refused(bgjobs, "mails", "nothing to rerun")
    st = bgjobs.status("mails")
    assert st["runs"] == 3 and st["phase"] == "Succeeded"
    assert bgjobs.job("mails-4") is None


def wait_refused(bgjobs: Jobs, name: str, why: str) -> None:
    """Wait for the RequeueIgnored Warning on ``name`` whose message says ``why``."""
    wait_for(
        "the refusal",
        lambda: any(
            e.reason == "RequeueIgnored" and why in (e.message or "") for e in bgjobs.events(name)
        ),
    )


def test_failed_only_on_a_job_that_is_not_a_batch_is_refused(bgjobs: Jobs, jobs: Client) -> None:
    bgjobs.create(manifest("single", args=[1]))
    bgjobs.wait_phase("single", "Succeeded")
    jobs.requeue("single", failed_only=True)
    wait_refused(bgjobs, "single", "not a batch")
    assert bgjobs.status("single")["runs"] == 1 and bgjobs.job("single-2") is None
