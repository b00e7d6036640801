"""Batches: a BackgroundJob with ``spec.items`` runs as one Indexed Job over a ConfigMap of
its items (API.md, "Batches"). kwok plays the pods: ``kwok.backgroundjobs.dev/fail-indexes``
makes the pods of the given completion indexes fail (hack/kwok/README.md)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.bgj import MESSAGE, RUN_FOR, Jobs, manifest, wait_for

from backgroundjobs import InvalidArguments
from backgroundjobs.api import constants as c
from backgroundjobs.cli import main
from backgroundjobs.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "job_images" / "examples"))
from bgj_examples import notifications

pytestmark = pytest.mark.integration

FAIL_INDEXES = "kwok.backgroundjobs.dev/fail-indexes"
FAIL_MESSAGE = "kwok.backgroundjobs.dev/fail-message"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def batch(name: str, n: int, pod: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    items = [{"args": [f"user-{i}"], "kwargs": {"title": "News"}} for i in range(n)]
    return manifest(name, pod_annotations=pod, items=items, **spec)


def configmaps(bgjobs: Jobs, name: str) -> list[Any]:
    return list(
        bgjobs.core.list_namespaced_config_map(
            bgjobs.ns, label_selector=f"{c.LABEL_NAME}={name}"
        ).items
    )


def refusal(bgjobs: Jobs, body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as err:
        bgjobs.create(body)
    assert err.value.status == 422
    return str(json.loads(err.value.body)["message"])


@pytest.fixture
def jobs(kubeconfig: str, namespace: str, operator: object) -> Iterator[Client]:
    with Client(kubeconfig=kubeconfig, namespace=namespace) as jobs_client:
        yield jobs_client


def test_batch_is_one_indexed_job_over_a_configmap_and_shows_progress(bgjobs: Jobs) -> None:
    bgjobs.create(batch("news", 6, {RUN_FOR: "2s"}, parallelism=2, retries=1))
    st = bgjobs.wait_phase("news", "Running")
    assert st["type"] == "Batch"
    (cm,) = configmaps(bgjobs, "news")
    assert cm.metadata.name == "news-1" and cm.immutable
    assert cm.metadata.owner_references[0].kind == c.KIND
    lines = cm.data[c.BATCH_ITEMS_KEY].splitlines()
    assert [json.loads(x)["args"] for x in lines] == [[f"user-{i}"] for i in range(6)]
    (job,) = bgjobs.jobs("news")
    assert job.metadata.name == "news-1"
    assert job.spec.completion_mode == "Indexed"
    assert (job.spec.completions, job.spec.parallelism) == (6, 2)
    assert job.spec.backoff_limit_per_index == 1
    assert job.spec.max_failed_indexes is None
    volumes = {v.name: v for v in job.spec.template.spec.volumes}
    assert volumes[c.BATCH_ITEMS_VOLUME].config_map.name == "news-1"

    seen: set[str] = set()

    def done() -> bool:
        st = bgjobs.status("news")
        seen.add((st.get("batch") or {}).get("progress", ""))
        return st.get("phase") == "Succeeded"

    wait_for("the batch to succeed", done, timeout=120)
    assert any(p not in ("0/6", "6/6", "") for p in seen), seen  # progress in between
    st = bgjobs.status("news")
    assert st["batch"] == {"total": 6, "succeeded": 6, "failed": 0, "running": 0, "progress": "6/6"}
    assert st["result"] == {"total": 6, "succeeded": 6, "failed": 0}
    assert len(bgjobs.pods("news-1")) == 6  # each item once


def test_failed_items_within_the_budget_succeed_with_their_indexes(bgjobs: Jobs) -> None:
    pod = {FAIL_INDEXES: "1,4", FAIL_MESSAGE: '{"error": "no such user", "type": "KeyError"}'}
    bgjobs.create(batch("budget", 6, pod, retries=1, maxFailed=2, parallelism=3))
    st = bgjobs.wait_phase("budget", "Succeeded", "Failed", timeout=120)
    assert st["phase"] == "Succeeded", st.get("message")
    b = st["batch"]
    assert (b["succeeded"], b["failed"], b["failedIndexes"]) == (4, 2, "1,4")
    assert b["lastError"] == "KeyError: no such user"
    assert b["itemErrors"] == [
        {"index": 1, "error": "KeyError: no such user"},
        {"index": 4, "error": "KeyError: no such user"},
    ]
    indexes = [p.metadata.annotations[COMPLETION_INDEX] for p in bgjobs.pods("budget-1")]
    assert sorted(indexes) == ["0", "1", "1", "2", "3", "4", "4", "5"]  # one retry per failure
    (job,) = bgjobs.jobs("budget")
    assert job.spec.max_failed_indexes == 2


def test_over_the_budget_the_batch_stops_and_fails(bgjobs: Jobs) -> None:
    pod = {FAIL_INDEXES: "0,1,2"}
    bgjobs.create(batch("over", 6, pod, retries=0, maxFailed=1, parallelism=1))
    st = bgjobs.wait_phase("over", "Failed", "Succeeded", timeout=120)
    assert st["phase"] == "Failed"
    failed = bgjobs.condition("over", "Failed")
    assert failed is not None and failed["reason"] == "MaxFailedIndexesExceeded"
    assert st["batch"]["failed"] == 2 and st["batch"]["succeeded"] == 0
    assert len(bgjobs.pods("over-1")) == 2  # the rest never ran


def test_without_a_budget_every_item_runs_and_one_failure_fails_the_batch(bgjobs: Jobs) -> None:
    bgjobs.create(batch("strict", 5, {FAIL_INDEXES: "2", MESSAGE: "ok"}, retries=0))
    st = bgjobs.wait_phase("strict", "Failed", "Succeeded", timeout=120)
    assert st["phase"] == "Failed"
    assert (st["batch"]["succeeded"], st["batch"]["failedIndexes"]) == (4, "2")
    assert bgjobs.condition("strict", "Failed")["reason"] == "FailedIndexes"  # type: ignore[index]


def test_invalid_batches_are_refused_naming_the_field(bgjobs: Jobs) -> None:
    assert "spec.items must hold at least one item" in refusal(bgjobs, manifest("empty", items=[]))
    assert "spec.items (a batch) cannot be combined with spec.schedule" in refusal(
        bgjobs, batch("cron", 2, schedule="@daily")
    )
    assert "spec.items (a batch) cannot be combined with spec.after" in refusal(
        bgjobs, batch("child", 2, after={"name": "x"})
    )
    assert "spec.parallelism is only allowed with spec.items" in refusal(
        bgjobs, manifest("plain", parallelism=3)
    )
    assert "spec.maxFailed cannot exceed the number of spec.items" in refusal(
        bgjobs, batch("toomany", 2, maxFailed=3)
    )
    bgjobs.create(batch("fixed", 1))
    with pytest.raises(ApiException) as err:
        bgjobs.patch("fixed", {"spec": {"items": None}})
    assert "a batch stays a batch" in json.loads(err.value.body)["message"]


def test_a_batch_with_args_is_invalid_spec(bgjobs: Jobs) -> None:
    bgjobs.create(batch("mixed", 2, args=["x"]))
    st = bgjobs.wait_phase("mixed", "Failed")
    assert "spec.items replaces spec.args" in st["message"]
    assert bgjobs.jobs("mixed") == [] and configmaps(bgjobs, "mixed") == []


def test_continuation_after_a_batch_gets_its_counts(bgjobs: Jobs) -> None:
    bgjobs.create(batch("send", 4, {FAIL_INDEXES: "3"}, retries=0, maxFailed=1))
    bgjobs.create(manifest("summary", after={"name": "send"}))
    bgjobs.create(batch("send-strict", 2, {FAIL_INDEXES: "0"}, retries=0))
    bgjobs.create(manifest("summary-strict", after={"name": "send-strict"}))
    st = bgjobs.wait_phase("summary", "Succeeded", timeout=120)
    assert st["runs"] == 1
    (job,) = bgjobs.jobs("summary")
    (handler,) = job.spec.template.spec.containers
    env = {e.name: e.value for e in handler.env}
    parent = json.loads(env[c.ENV_PARENT_RESULT])
    assert parent == {"total": 4, "succeeded": 3, "failed": 1, "failedIndexes": "3"}
    # over its budget (none): Failed, so a Succeeded-continuation keeps waiting
    bgjobs.wait_phase("send-strict", "Failed", timeout=120)
    wait_for(
        "summary-strict to wait on its failed parent",
        lambda: (
            (bgjobs.condition("summary-strict", "Waiting") or {}).get("reason") == "ParentFailed"
        ),
    )
    assert bgjobs.jobs("summary-strict") == []


def test_cancel_stops_every_item(bgjobs: Jobs) -> None:
    bgjobs.create(batch("long", 10, {RUN_FOR: "600s"}, parallelism=3))
    wait_for(
        "3 items to run",
        lambda: (bgjobs.status("long").get("batch") or {}).get("running") == 3,
        timeout=120,
    )
    bgjobs.annotate("long", c.ANNOTATION_CANCEL, "now")
    bgjobs.wait_phase("long", "Cancelled")
    wait_for("the batch's Job to be gone", lambda: bgjobs.jobs("long") == [])


def test_restart_mid_batch_makes_no_second_job_or_configmap(bgjobs: Jobs, operator) -> None:  # type: ignore[no-untyped-def]
    bgjobs.create(batch("steady", 4, {RUN_FOR: "3s"}, parallelism=2))
    bgjobs.wait_phase("steady", "Running")
    operator.kill()
    try:
        # down: a second batch arrives, and its ConfigMap "was created" by a run interrupted
        # before its Job (the operator must adopt it, not fail on AlreadyExists)
        made = bgjobs.create(batch("adopted", 3))
        items = "".join(json.dumps(i, separators=(",", ":")) + "\n" for i in made["spec"]["items"])
        owner = client.V1OwnerReference(
            api_version=c.API_VERSION, kind=c.KIND, name="adopted",
            uid=made["metadata"]["uid"], controller=True,
        )  # fmt: skip
        bgjobs.core.create_namespaced_config_map(
            bgjobs.ns,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name="adopted-1",
                    labels={c.LABEL_NAME: "adopted"},
                    owner_references=[owner],
                ),
                data={c.BATCH_ITEMS_KEY: items},
            ),
        )
        time.sleep(4)
    finally:
        operator.start()
    for name in ("steady", "adopted"):
        st = bgjobs.wait_phase(name, "Succeeded", timeout=120)
        assert st["runs"] == 1 and st["batch"]["succeeded"] == st["batch"]["total"], name
        assert [j.metadata.name for j in bgjobs.jobs(name)] == [f"{name}-1"]
        assert [m.metadata.name for m in configmaps(bgjobs, name)] == [f"{name}-1"]


def test_client_enqueue_batch_checks_every_item_first(jobs: Client, bgjobs: Jobs) -> None:
    users = [((f"user-{i}", "Our terms changed"), {}) for i in range(5)]
    with pytest.raises(InvalidArguments, match="item 3"):
        jobs.enqueue_batch(
            notifications.send_to_user, [*users[:3], ((), {"title": "no user"})], name="bad"
        )
    assert bgjobs.get("bad") is None
    name = jobs.enqueue_batch(
        notifications.send_to_user, users, title="News", parallelism=2, max_failed=1, name="ok"
    )
    spec = bgjobs.get(name)["spec"]  # type: ignore[index]
    assert spec["items"][4] == {
        "args": ["user-4", "Our terms changed"],
        "kwargs": {"title": "News"},
    }
    assert (spec["parallelism"], spec["maxFailed"]) == (2, 1)
    assert jobs.wait(name, timeout=120).phase == "Succeeded"


def test_cli_batch_from_a_jsonl_file_then_get_and_describe(
    kubeconfig: str,
    namespace: str,
    operator: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    items = tmp_path / "users.jsonl"
    items.write_text("".join(json.dumps({"args": [f"user-{i}"]}) + "\n" for i in range(4)) + "\n")

    def cli(*argv: str) -> str:
        capsys.readouterr()
        assert main(["-n", namespace, *argv]) == 0, capsys.readouterr().err
        return capsys.readouterr().out

    out = cli("batch", "test.echo", "--items", str(items), "--parallelism", "2",
              "-k", "sleep=0", "--name", "from-file", "--max-failed", "1")  # fmt: skip
    assert out.strip() == "backgroundjob.backgroundjobs.dev/from-file created"
    cli("wait", "from-file", "--timeout", "120s")
    wide = cli("get", "from-file", "-o", "wide")
    assert "Batch" in wide and "100%" in wide  # PROGRESS: the items finished, in percent
    described = cli("describe", "from-file")
    assert "Items:      4/4 done (4 succeeded, 0 failed, 0 running)" in described
    capsys.readouterr()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"args": ["u"]}\nnot json\n')
    assert main(["-n", namespace, "batch", "test.echo", "--items", str(bad)]) != 0
    assert "line 2: not valid JSON" in capsys.readouterr().err
