"""The reconciler and its loop against a fake Kube: gather -> decide -> apply, without a
cluster. What the integration tests show on a real API server (adoption after a crash, queue
slots, the continuation hand-off, deferred statuses, refusals), shown here in milliseconds,
with the fake API's every call visible."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs.api import constants as c
from backgroundjobs.api.podpolicy import AdmissionPolicy, PodPolicy
from backgroundjobs.api.times import format_time
from backgroundjobs.controller.loop import ControlLoop
from backgroundjobs.controller.queueing import TURN_PATIENCE, want_of
from backgroundjobs.controller.settings import QueueConfig, Settings

pytestmark = pytest.mark.unit

Body = dict[str, Any]
Key = tuple[str, str]
T = TypeVar("T")
NS = "shop"


class FakeKube:
    """An in-memory API server for the operator's calls (``KubeApi``)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Body] = {}  # (kind, name) -> object
        self.calls: list[tuple[str, str]] = []  # (call, name)
        self.events: list[tuple[str, str, str]] = []
        self.termination: dict[str, str] = {}  # Job name -> its handler's termination message
        self.pods: dict[str, list[Body]] = {}  # Job name -> its pods
        self.job_events_by_uid: dict[str, list[Body]] = {}  # Job uid -> Events about it
        self.workload_lists: dict[str, list[Body] | None] = {}  # Job uid -> Kueue Workloads
        self.fail: dict[str, ApiException] = {}  # call -> the error its next use raises
        self.patch_gate: asyncio.Event | None = None  # when set: patch_status waits for it
        self._versions = itertools.count(100)

    def _check(self, call: str, name: str) -> None:
        self.calls.append((call, name))
        exc = self.fail.pop(call, None)
        if exc is not None:
            raise exc

    def _stamp(self, obj: Body) -> Body:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    def add(self, obj: Body) -> Body:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{obj['kind']}-{meta['name']}")
        meta.setdefault("creationTimestamp", format_time(datetime.now(UTC)))
        self.objects[(obj["kind"], meta["name"])] = obj
        return self._stamp(obj)

    async def create(self, obj: Body) -> Body:
        name = obj["metadata"]["name"]
        self._check("create", name)
        if (obj["kind"], name) in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        return self.add(obj)

    async def get(self, kind: str, namespace: str, name: str) -> Body | None:
        self._check("get", name)
        found = self.objects.get((kind, name))
        return copy.deepcopy(found) if found is not None else None

    async def list_queues(self, namespace: str | None) -> list[Body]:
        self._check("list_queues", namespace or "")
        return [copy.deepcopy(o) for (k, _), o in self.objects.items() if k == c.QUEUE_KIND]

    async def replace_cronjob(self, obj: Body, observed: Body) -> Body:
        self._check("replace_cronjob", obj["metadata"]["name"])
        return self.add(obj)

    async def delete_job(self, namespace: str, name: str) -> None:
        self._check("delete_job", name)
        self.objects.pop(("Job", name), None)

    async def unsuspend_job(self, namespace: str, name: str) -> tuple[Body | None, bool]:
        self._check("unsuspend_job", name)
        found = self.objects.get(("Job", name))
        if found is None:
            return None, False
        if not found["spec"].get("suspend"):
            return copy.deepcopy(found), False
        found["spec"]["suspend"] = False
        return self._stamp(found), True

    async def termination_message(
        self,
        namespace: str,
        job_name: str,
        job_uid: str,
        succeeded: bool,
        not_older_than: str | None = None,
    ) -> str | None:
        self._check("termination_message", job_name)
        return self.termination.get(job_name)

    async def admission_policy(self, name: str, binding: str) -> tuple[Body | None, Body | None]:
        self._check("admission_policy", name)
        found = self.objects.get(("ValidatingAdmissionPolicy", name))
        bound = self.objects.get(("ValidatingAdmissionPolicyBinding", binding))
        return copy.deepcopy(found), copy.deepcopy(bound)

    async def job_pods(self, namespace: str, job_name: str) -> list[Body]:
        self._check("job_pods", job_name)
        return copy.deepcopy(self.pods.get(job_name, []))

    async def workloads(self, namespace: str, job_uid: str) -> list[Body] | None:
        self._check("workloads", job_uid)
        return copy.deepcopy(self.workload_lists.get(job_uid, []))

    async def owned_job_pods(
        self, namespace: str, job_uid: str, not_older_than: str | None = None
    ) -> list[Body]:
        job = next(o for o in self.objects.values() if o["metadata"].get("uid") == job_uid)
        self._check("owned_job_pods", job["metadata"]["name"])
        return copy.deepcopy(self.pods.get(job["metadata"]["name"], []))

    async def job_events(self, namespace: str, job_uid: str, reason: str) -> list[Body]:
        self._check("job_events", job_uid)
        events = self.job_events_by_uid.get(job_uid, [])
        return [copy.deepcopy(e) for e in events if e.get("reason") == reason]

    async def patch_status(
        self, namespace: str, name: str, status_patch: Body, resource_version: str | None = None
    ) -> Body:
        if self.patch_gate is not None:
            await self.patch_gate.wait()
        self._check("patch_status", name)
        if (c.KIND, name) not in self.objects:
            raise ApiException(status=404, reason="NotFound")
        obj = self.objects[(c.KIND, name)]
        if resource_version and resource_version != obj["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        status = obj.setdefault("status", {})
        for field, value in status_patch.items():
            if value is None:
                status.pop(field, None)
            else:
                status[field] = copy.deepcopy(value)
        return self._stamp(obj)

    async def delete_bgj(self, namespace: str, name: str, uid: str) -> None:
        self._check("delete_bgj", name)
        self.objects.pop((c.KIND, name), None)

    async def post_event(self, obj: Body, etype: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))

    async def close(self) -> None:
        pass

    # what the Job controller would do
    def finish_job(self, name: str, *, succeeded: bool = True, message: str = "") -> Body:
        job = self.objects[("Job", name)]
        now = format_time(datetime.now(UTC))
        kind = "Complete" if succeeded else "Failed"
        job["status"] = {
            "startTime": now,
            "completionTime" if succeeded else "failedAt": now,
            "conditions": [
                {"type": kind, "status": "True", "reason": "Done", "lastTransitionTime": now}
            ],
        }
        self.termination[name] = message
        return self._stamp(job)

    def count(self, call: str) -> int:
        return sum(1 for made, _ in self.calls if made == call)


def bgj(name: str, **spec: Any) -> Body:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": {"handler": "mail.send", **spec},
    }


class Harness:
    """A control loop on a fake API server, driven step by step (no workers running)."""

    def __init__(self, **settings: Any) -> None:
        self.kube = FakeKube()
        self.loop = ControlLoop(Settings(**settings), self.kube)

    async def posted(self) -> list[tuple[str, str]]:
        """(object, reason) of the Events the plans applied so far posted."""
        self.loop.events.start()
        await self.loop.events.stop()  # once every one waiting is posted
        return [(name, reason) for name, reason, _ in self.kube.events]

    def apply(self, body: Body) -> Body:
        """``kubectl apply``: the API server stores it, the watch brings it."""
        stored = self.kube.add(body)
        self.loop.on_bgj_event({"type": "ADDED", "object": stored})
        return stored

    def watch_brings(self, kind: str, name: str) -> None:
        obj = copy.deepcopy(self.kube.objects[(kind, name)])
        event = {"type": "MODIFIED", "object": obj}
        if kind == c.KIND:
            self.loop.on_bgj_event(event)
        elif kind == "Job":
            self.loop.on_job_event(event)
        else:
            self.loop.on_cronjob_event(event)

    async def reconcile(
        self, name: str, *, finish: bool = True
    ) -> Callable[[], Awaitable[None]] | None:
        """One reconcile of ``name``; with ``finish``, its deferred status written too."""
        deferred = await self.loop.reconciler.reconcile((NS, name))
        if deferred is not None and finish:
            await deferred()
            return None
        return deferred

    def status(self, name: str) -> Body:
        return self.kube.objects[(c.KIND, name)].get("status") or {}

    def queued(self) -> set[Key]:
        """The keys waiting in the work queue (drained)."""
        keys = set()
        while (key := self.loop.work._next()) is not None:
            del self.loop.work._dirty[key]
            keys.add(key)
        return keys


def run(case: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(case())


# ------------------------------------------------------------------ deferred status


def test_a_job_is_created_first_and_its_status_written_after() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("welcome"))
        finish = await h.reconcile("welcome", finish=False)
        assert ("Job", "welcome-1") in h.kube.objects
        assert finish is not None, "the status write is handed to the status stage"
        assert h.kube.count("patch_status") == 0
        await finish()
        assert h.status("welcome")["phase"] == "Running"
        assert h.status("welcome")["jobName"] == "welcome-1"
        assert h.loop.cache.jobs((NS, "welcome")).keys() == {"welcome-1"}
        assert await h.posted() == [("welcome", "Started")]

    run(case)


def test_a_reconcile_after_the_status_is_written_does_nothing() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("welcome"))
        await h.reconcile("welcome")
        h.watch_brings(c.KIND, "welcome")
        calls = len(h.kube.calls)
        await h.reconcile("welcome")
        assert h.kube.calls[calls:] == []

    run(case)


def test_the_status_stage_writes_once_the_burst_has_its_jobs() -> None:
    async def case() -> None:
        h = Harness(status_hold=5)
        for i in range(3):
            h.apply(bgj(f"burst-{i}"))
        await h.loop.start()
        try:
            for _ in range(200):
                if all(h.status(f"burst-{i}").get("phase") == "Running" for i in range(3)):
                    break
                await asyncio.sleep(0.01)
            first_patch = next(
                i for i, (call, _) in enumerate(h.kube.calls) if call == "patch_status"
            )
            creates = [i for i, (call, _) in enumerate(h.kube.calls) if call == "create"]
            assert len(creates) == 3 and max(creates) < first_patch  # Jobs first
        finally:
            await h.loop.stop()

    run(case)


# ------------------------------------------------------------------ adoption


def existing_job(name: str, owner_uid: str) -> Body:
    """Run 1 of ``welcome``, already there, owned by the object of uid ``owner_uid``."""
    ref = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "name": "welcome",
        "uid": owner_uid,
        "controller": True,
    }
    meta = {"name": name, "namespace": NS, "ownerReferences": [ref]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta}


def test_a_job_left_by_a_crash_is_adopted_not_created_again() -> None:
    async def case() -> None:
        h = Harness()
        stored = h.apply(bgj("welcome"))
        # an earlier operator created the Job and died before writing the status
        h.kube.add(existing_job("welcome-1", stored["metadata"]["uid"]))
        await h.reconcile("welcome")
        assert h.kube.count("create") == 1  # the one that met AlreadyExists
        assert h.status("welcome")["phase"] == "Running"
        assert h.status("welcome")["runs"] == 1
        assert "welcome-1" in h.loop.cache.jobs((NS, "welcome"))

    run(case)


def test_a_job_of_an_older_object_of_the_same_name_is_left_alone() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("welcome"))
        h.kube.add(existing_job("welcome-1", "an-older-uid"))
        assert await h.reconcile("welcome") is None
        assert h.kube.count("patch_status") == 0  # waits for the old Job to be collected
        assert (NS, "welcome") in h.loop.work._timers

    run(case)


# ------------------------------------------------------------------ queue slots


def one_slot() -> Harness:
    """A queue ``bulk`` of one slot."""
    return Harness(queues={"bulk": QueueConfig(max_concurrency=1)})


async def first_runs_second_waits() -> Harness:
    h = one_slot()
    h.apply(bgj("first", queue="bulk"))
    await h.reconcile("first")
    h.apply(bgj("second", queue="bulk"))
    await h.reconcile("second")
    h.queued()
    return h


def test_a_full_queue_holds_a_job_until_the_running_one_finishes() -> None:
    async def case() -> None:
        h = await first_runs_second_waits()
        assert h.status("second")["phase"] == "Queued"
        assert ("Job", "second-1") not in h.kube.objects
        # the first one's Job finishes: the watch brings it, the slot frees, second wakes
        h.kube.finish_job("first-1")
        h.watch_brings("Job", "first-1")
        assert (NS, "second") in h.queued()
        await h.reconcile("second")
        assert h.status("second")["phase"] == "Running"
        assert ("Job", "second-1") in h.kube.objects

    run(case)


@pytest.mark.parametrize(
    ("status", "phase"),
    [(422, "Failed"), (503, None)],  # refused: InvalidSpec; an API error: retried later
)
def test_a_slot_taken_for_a_job_not_made_is_given_back(status: int, phase: str | None) -> None:
    async def case() -> None:
        h = one_slot()
        h.apply(bgj("unmade", queue="bulk"))
        h.kube.fail["create"] = ApiException(status=status, reason="Refused")
        try:
            await h.reconcile("unmade")
        except ApiException:
            assert phase is None  # the loop retries it with backoff
        assert h.status("unmade").get("phase") == phase
        assert not h.loop.cache.slots.holds((NS, "unmade"), "bulk")
        h.apply(bgj("next", queue="bulk"))
        await h.reconcile("next")
        assert h.status("next")["phase"] == "Running"

    run(case)


def test_a_namespace_being_deleted_is_no_invalid_spec_and_its_slot_goes_to_the_next() -> None:
    """The API server refuses every create in a namespace being deleted (403, cause
    NamespaceTerminating): the job is going with its namespace, so no InvalidSpec, no status
    and no failed-job count; its slot goes to the next run."""

    async def case() -> None:
        h = one_slot()
        h.apply(bgj("doomed", queue="bulk"))
        refusal = ApiException(status=403, reason="Forbidden")
        refusal.body = json.dumps({
            "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": f'jobs.batch "doomed-1" is forbidden: unable to create new content in'
                       f" namespace {NS} because it is being terminated",
            "details": {"name": "doomed-1", "kind": "jobs", "causes": [{
                "reason": "NamespaceTerminating",
                "message": f"namespace {NS} is being terminated", "field": "metadata.namespace"}]},
        })  # fmt: skip
        h.kube.fail["create"] = refusal
        assert await h.reconcile("doomed") is None
        assert h.status("doomed") == {}
        assert not h.loop.cache.slots.holds((NS, "doomed"), "bulk")
        h.apply(bgj("next", queue="bulk"))
        await h.reconcile("next")
        assert h.status("next")["phase"] == "Running"

    run(case)


def test_deleting_a_running_job_frees_its_slot_for_the_waiting_one() -> None:
    async def case() -> None:
        h = await first_runs_second_waits()
        h.loop.on_bgj_event({"type": "DELETED", "object": h.kube.objects[(c.KIND, "first")]})
        assert (NS, "second") in h.queued()
        await h.reconcile("second")
        assert h.status("second")["phase"] == "Running"

    run(case)


def test_a_job_not_due_yet_takes_no_slot() -> None:
    async def case() -> None:
        h = one_slot()
        h.apply(bgj("later", queue="bulk", delay="1h"))
        await h.reconcile("later")
        assert h.status("later")["phase"] == "Scheduled"
        assert not h.loop.cache.slots.holds((NS, "later"), "bulk")

    run(case)


# ------------------------------------------------------------------ early hand-off


async def child_waits_for_a_finished_parent() -> Harness:
    """A child Waiting for its parent, whose Job just finished (not reconciled yet)."""
    h = Harness()
    h.apply(bgj("parent"))
    h.apply(bgj("child", after={"name": "parent"}))
    await h.reconcile("parent")
    h.watch_brings(c.KIND, "parent")
    await h.reconcile("child")
    assert h.status("child")["phase"] == "Waiting"
    h.kube.finish_job("parent-1", message='{"report": "r.pdf"}')
    h.watch_brings("Job", "parent-1")
    h.queued()
    return h


def test_a_child_starts_while_its_parents_status_is_in_flight() -> None:
    async def case() -> None:
        h = await child_waits_for_a_finished_parent()
        h.kube.patch_gate = asyncio.Event()
        parent_done = asyncio.create_task(h.reconcile("parent"))
        await asyncio.sleep(0.05)
        assert not parent_done.done(), "the parent's status patch is held"
        assert (NS, "child") in h.queued(), "the child was woken before the patch returned"
        assert h.loop.cache.bgj((NS, "parent"))["status"]["phase"] == "Succeeded"
        h.kube.patch_gate.set()
        await parent_done
        await h.reconcile("child")
        assert h.status("child")["phase"] == "Running"
        env = h.kube.objects[("Job", "child-1")]["spec"]["template"]["spec"]["containers"][0]
        assert {"name": c.ENV_PARENT_RESULT, "value": '{"report":"r.pdf"}'} in env["env"]

    run(case)


def test_a_failed_parent_patch_takes_the_early_outcome_back() -> None:
    async def case() -> None:
        h = await child_waits_for_a_finished_parent()
        h.kube.fail["patch_status"] = ApiException(status=500, reason="Internal")
        with pytest.raises(ApiException):
            await h.reconcile("parent")
        assert h.loop.cache.bgj((NS, "parent"))["status"]["phase"] == "Running"

    run(case)


# ------------------------------------------------------------------ errors and the loop


def test_a_refused_job_fails_the_object_at_once_with_a_warning() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("bad"))
        h.kube.fail["create"] = ApiException(status=422, reason="Invalid")
        assert await h.reconcile("bad", finish=False) is None  # nothing to defer
        status = h.status("bad")
        assert status["phase"] == "Failed"
        failed = next(cond for cond in status["conditions"] if cond["type"] == "Failed")
        assert failed["reason"] == "InvalidSpec"
        assert "the API server refused Job bad-1" in failed["message"]
        assert ("bad", "InvalidSpec") in await h.posted()

    run(case)


def test_a_failing_step_is_retried_with_backoff_and_the_key_released() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("flaky"))
        key = await h.loop.work.get()
        h.kube.fail["create"] = ApiException(status=503, reason="Unavailable")
        await h.loop._run_step(key, lambda: h.loop.reconciler.reconcile(key))
        assert h.loop._failures[key] == 1
        assert key in h.loop.work._timers  # retried later, not at once
        assert key not in h.loop.work._processing

    run(case)


def test_a_standby_reconciles_nothing_until_it_leads() -> None:
    async def case() -> None:
        kube = FakeKube()
        loop = ControlLoop(Settings(), kube, leading=False)
        stored = kube.add(bgj("welcome"))
        loop.on_bgj_event({"type": "ADDED", "object": stored})
        key = await loop.work.get()
        await loop._run_step(key, lambda: loop.reconciler.reconcile(key))
        assert kube.calls == []
        assert len(loop.work) == 0
        loop.start_leading()
        assert len(loop.work) == 1  # everything cached is looked at again
        key = await loop.work.get()
        await loop._run_step(key, lambda: loop.reconciler.reconcile(key))
        assert ("Job", "welcome-1") in kube.objects

    run(case)


# ------------------------------------------------------------------ a pod that cannot start


def stuck_job(h: Harness, name: str, **status: Any) -> str:
    """The Job of ``name`` as the watch shows it a minute after it was made, no pod ready."""
    job = h.kube.objects[("Job", f"{name}-1")]
    job["metadata"]["creationTimestamp"] = format_time(datetime.now(UTC) - timedelta(minutes=1))
    job["status"] = status
    h.kube.add(job)  # a new resourceVersion
    h.watch_brings("Job", f"{name}-1")
    return str(job["metadata"]["uid"])


def test_a_pod_that_can_never_start_fails_the_job_and_its_job_is_deleted() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("typo"))
        await h.reconcile("typo")
        stuck_job(h, "typo", active=1, ready=0)
        waiting = {"reason": "InvalidImageName", "message": 'invalid reference "Nope::1"'}
        h.kube.pods["typo-1"] = [
            {
                "metadata": {"name": "typo-1-x2x4z"},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [{"name": "handler", "state": {"waiting": waiting}}],
                },
            }
        ]
        await h.reconcile("typo")
        status = h.status("typo")
        assert status["phase"] == "Failed"
        failed = next(cond for cond in status["conditions"] if cond["type"] == "Failed")
        assert failed["reason"] == "ImagePullFailed"
        assert 'invalid reference "Nope::1"' in failed["message"]
        assert ("Job", "typo-1") not in h.kube.objects
        assert (h.kube.count("job_pods"), h.kube.count("job_events")) == (1, 0)
        assert ("typo", "Failed") in await h.posted()

    run(case)


def test_a_job_without_pods_is_read_into_through_its_failed_creates() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("full"))
        await h.reconcile("full")
        uid = stuck_job(h, "full")  # active 0: no pod could be made
        quota = (
            'Error creating: pods "full-1-a" is forbidden: exceeded quota: none, requested: pods=1'
        )
        h.kube.job_events_by_uid[uid] = [
            {
                "reason": "FailedCreate",
                "message": quota,
                "lastTimestamp": format_time(datetime.now(UTC)),
            }
        ]
        await h.reconcile("full")
        status = h.status("full")
        assert status["phase"] == "Running"
        running = next(cond for cond in status["conditions"] if cond["type"] == "Running")
        assert running["reason"] == "QuotaExceeded"
        assert "exceeded quota" in running["message"]
        assert ("Job", "full-1") in h.kube.objects  # it waits: the Job controller retries
        assert (h.kube.count("job_pods"), h.kube.count("job_events")) == (1, 1)
        assert ("full", "QuotaExceeded") in await h.posted()

    run(case)


def test_a_stuck_job_reconciled_again_soon_is_not_read_again() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("picky"))
        await h.reconcile("picky")
        stuck_job(h, "picky", active=1, ready=0)
        unschedulable = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available",
        }
        h.kube.pods["picky-1"] = [
            {
                "metadata": {"name": "picky-1-a"},
                "status": {"phase": "Pending", "conditions": [unschedulable]},
            }
        ]
        await h.reconcile("picky")
        stuck_job(h, "picky", active=1, ready=0, terminating=0)  # the Job's status changed
        await h.reconcile("picky")
        assert h.kube.count("job_pods") == 1  # the first read served the second reconcile
        running = next(
            cond for cond in h.status("picky")["conditions"] if cond["type"] == "Running"
        )
        assert running["reason"] == "Unschedulable"
        assert [reason for _, reason in await h.posted()].count("Unschedulable") == 1

    run(case)


def test_a_role_without_list_events_only_misses_refused_creates() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("full"))
        await h.reconcile("full")
        stuck_job(h, "full")  # no pod could be made
        h.kube.fail["job_events"] = ApiException(status=403, reason="Forbidden")
        await h.reconcile("full")  # no error: it runs on, nothing to show
        assert h.kube.count("job_events") == 1
        assert h.status("full")["phase"] == "Running"

    run(case)


# ------------------------------------------------------------------ tenancy


def test_a_namespace_not_served_is_ignored() -> None:
    async def case() -> None:
        h = Harness(exclude_namespaces=(NS,))
        h.apply(bgj("welcome"))
        assert h.queued() == set()
        assert h.loop.cache.bgj((NS, "welcome")) is None

    run(case)


def vap_objects(h: Harness, created: datetime) -> None:
    stamp = format_time(created)
    h.kube.objects[("ValidatingAdmissionPolicy", "bgj")] = {
        "metadata": {"name": "bgj", "creationTimestamp": stamp},
        "spec": {"failurePolicy": "Fail"},
    }
    h.kube.objects[("ValidatingAdmissionPolicyBinding", "bgj")] = {
        "metadata": {"name": "bgj", "creationTimestamp": stamp},
        "spec": {"policyName": "bgj", "validationActions": ["Deny"]},
    }


POLICY = PodPolicy(admission=AdmissionPolicy("bgj", "bgj"))
AS_MAILER = {"spec": {"serviceAccountName": "mailer"}}


def test_a_job_the_admission_policy_checked_runs_and_one_it_did_not_is_denied() -> None:
    async def case() -> None:
        h = Harness(pod_policy=POLICY)
        vap_objects(h, datetime.now(UTC) - timedelta(minutes=1))
        h.apply(bgj("vouched", podTemplate=AS_MAILER))
        await h.reconcile("vouched")
        assert ("Job", "vouched-1") in h.kube.objects
        assert h.kube.count("admission_policy") == 1
        # The binding deleted (the policy suspended): the operator checks by itself.
        del h.kube.objects[("ValidatingAdmissionPolicyBinding", "bgj")]
        h.apply(bgj("alone", podTemplate=AS_MAILER))
        await h.reconcile("alone")
        assert ("Job", "alone-1") not in h.kube.objects
        failed = next(x for x in h.status("alone")["conditions"] if x["type"] == "Failed")
        assert failed["reason"] == "PolicyDenied"
        assert ("alone", "PolicyDenied") in await h.posted()

    run(case)


# ------------------------------------------------------------------ recurring runs held


def held_run(name: str, owner: str) -> Body:
    """A Job the CronJob made from its suspended template (controller.heldruns)."""
    ref = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": owner, "controller": True}
    labels = {c.LABEL_NAME: owner, c.LABEL_TYPE: c.JobType.RECURRING, c.LABEL_QUEUE: "bulk"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": labels,
            "ownerReferences": [{**ref, "uid": f"uid-{c.KIND}-{owner}"}],
        },
        "spec": {"suspend": True},
    }


def test_a_held_recurring_run_waits_queued_and_is_unsuspended_when_the_slot_frees() -> None:
    async def case() -> None:
        h = one_slot()
        h.apply(bgj("first", queue="bulk"))
        await h.reconcile("first")
        h.apply(bgj("tick", queue="bulk", schedule="* * * * *"))
        await h.reconcile("tick")
        cronjob = h.kube.objects[("CronJob", "tick")]
        assert cronjob["spec"]["jobTemplate"]["spec"]["suspend"] is True
        h.watch_brings("CronJob", "tick")
        h.kube.add(held_run("tick-1", "tick"))
        h.watch_brings("Job", "tick-1")
        await h.reconcile("tick")
        assert h.kube.objects[("Job", "tick-1")]["spec"]["suspend"] is True
        queued = next(cd for cd in h.status("tick")["conditions"] if cd["type"] == "Queued")
        assert (queued["status"], queued["reason"]) == ("True", "QueueFull")
        assert "tick-1" in queued["message"]

        h.kube.finish_job("first-1")
        h.watch_brings("Job", "first-1")
        assert (NS, "tick") in h.queued()  # the owner is woken for its run's slot
        await h.reconcile("tick")
        assert h.kube.objects[("Job", "tick-1")]["spec"]["suspend"] is False
        assert h.loop.cache.slots.running((NS, "bulk")) == 1
        queued = next(cd for cd in h.status("tick")["conditions"] if cd["type"] == "Queued")
        assert queued["status"] == "False"
        admitted = [(n, m) for n, r, m in h.kube.events if r == "Admitted"]
        assert len(admitted) == 1 and admitted[0][0] == "tick"
        assert admitted[0][1].startswith("run tick-1 admitted by queue bulk after waiting ")

    run(case)


def test_a_held_run_admitted_again_from_a_stale_list_posts_no_second_event() -> None:
    """The Admitted Event follows the one unsuspend that changed the Job: an operator that
    sees the Job suspended from a stale list (after a restart) does not repeat it."""

    async def case() -> None:
        h = one_slot()
        h.apply(bgj("tick", queue="bulk", schedule="* * * * *"))
        await h.reconcile("tick")
        h.watch_brings("CronJob", "tick")
        h.kube.add(held_run("tick-1", "tick"))
        stale = copy.deepcopy(h.kube.objects[("Job", "tick-1")])
        h.watch_brings("Job", "tick-1")
        await h.reconcile("tick")
        assert h.kube.objects[("Job", "tick-1")]["spec"]["suspend"] is False
        # a second operator (a restart, a leader handover) that lists the Job stale
        h2 = one_slot()
        h2.kube.objects = h.kube.objects
        h2.loop.on_bgj_event({"type": "ADDED", "object": h.kube.objects[(c.KIND, "tick")]})
        h2.watch_brings("CronJob", "tick")
        h2.loop.on_job_event({"type": "ADDED", "object": stale})
        await h2.reconcile("tick")
        assert h2.kube.count("unsuspend_job") == 1  # it tried: the Job was already running
        assert [r for _, r, _ in h2.kube.events].count("Admitted") == 0
        assert [r for _, r, _ in h.kube.events].count("Admitted") == 1

    run(case)


def granted_a_then_b() -> Harness:
    """Jobs "a" then "b" of a queue of two slots, both granted, neither Job made yet."""
    h = Harness(queues={"bulk": QueueConfig(max_concurrency=2)})
    for name in ("a", "b"):
        body = h.apply(bgj(name, queue="bulk"))
        h.loop.cache.slots.want((NS, name), want_of(body, "bulk"), time.monotonic(), time.time())
    return h


def test_a_job_being_deleted_gives_its_unused_grant_to_the_next_run() -> None:
    """Its Job will not be made: the next run must not wait for it (a finalizer may keep the
    object for long)."""

    async def case() -> None:
        h = granted_a_then_b()
        slots = h.loop.cache.slots
        assert slots.has_turn((NS, "b"), time.monotonic()) == TURN_PATIENCE
        deleting = copy.deepcopy(h.kube.objects[(c.KIND, "a")])
        deleting["metadata"].update(
            deletionTimestamp="2026-11-30T00:00:00Z", finalizers=["example.com/keep"]
        )
        h.loop.on_bgj_event({"type": "MODIFIED", "object": deleting})
        await h.reconcile("a")
        assert not slots.holds((NS, "a"))
        assert slots.has_turn((NS, "b"), time.monotonic()) is None
        assert ("Job", "a-1") not in h.kube.objects

    run(case)


def test_a_grant_whose_reconcile_fails_stops_blocking_the_next_after_patience() -> None:
    async def case() -> None:
        h = granted_a_then_b()
        slots = h.loop.cache.slots
        assert slots.has_turn((NS, "b"), time.monotonic() + 3600) == TURN_PATIENCE

        async def failing() -> None:  # "a"'s reconcile fails before making its Job
            raise ApiException(status=503, reason="Unavailable")

        await h.loop._run_step((NS, "a"), failing)
        assert h.loop._failures[(NS, "a")] == 1
        assert slots.has_turn((NS, "b"), time.monotonic()) is not None  # a retry may come
        assert slots.has_turn((NS, "b"), time.monotonic() + TURN_PATIENCE) is None

    run(case)
