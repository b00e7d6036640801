"""Queue slots that cannot leak: every way a run ends or disappears frees its slot, and the
slot goes to the next waiting job.

One operator with an operator-wide cap (``BACKGROUNDJOBS_MAX_RUNNING``) serves two namespaces:
in the first, queue ``work`` (a ``BackgroundJobQueue`` with ``maxConcurrency``) and queue
``bulk`` (no object: the cap alone); in the second, ``bulk`` too. While their jobs run, runs
end every way there is: they succeed, fail, are deleted, cancelled, have their Job deleted by
hand, their whole namespace deleted (holding cap slots), and the operator is SIGKILLed and
restarted (the next one counts what runs from the Jobs).

Measured from watches of the Jobs and the BackgroundJobs (times as the watch saw them):

- active Jobs of ``work`` never above its limit, and of both namespaces never above the cap
  (a Job is active from its creation until it finished, was deleted, or its BackgroundJob was);
- the longest time a slot stayed free while a job that it could take waited, outside the
  operator's restarts (from the kill until its admission opened again, logged by the
  operator): the issue asks for at most 5 s. A job whose namespace is being deleted waits
  for nothing: the API server refuses its Job (and its own deletion follows);
- every job that was not deleted ends: Succeeded, Failed (its Job deleted by hand: JobDeleted;
  or a failing handler) or Cancelled.

``RELIABILITY_SCALE`` scales the job counts; ``RELIABILITY_SEED`` replays a run's plan (its
seed is printed).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from tests.integration.bgj import FAIL_EXIT, RUN_FOR, Jobs, manifest, wait_for
from tests.integration.queue_helpers import Queues
from tests.reliability.conftest import OperatorFactory, scaled
from tests.reliability.scenario import TERMINAL, list_bgjs

from backgroundjobs.api import constants as c

CAP = 6
WORK_LIMIT = 3
FREE_SLOT_LIMIT_S = 5.0
SEED = int(os.environ.get("RELIABILITY_SEED") or time.time())  # a failed run's seed replays it


@dataclass
class Run:
    queue: tuple[str, str]  # (namespace, queue name)
    created: float | None = None  # its BackgroundJob's ADDED (wall clock, as seen)
    started: float | None = None  # its first Job's ADDED
    ended: float | None = None  # Job finished or deleted, or the BackgroundJob deleted
    started_rv: int | None = None  # the same two, as the API server ordered them
    ended_rv: int | None = None


@dataclass
class Timeline:
    """What the watches saw. Durations use the wall clock at which events arrived (the
    operator's log uses the same clock); the peaks use resourceVersions, which this cluster's
    one etcd orders across kinds and namespaces, so two watches' arrival order cannot make a
    Job seem to start before the end that freed its slot."""

    runs: dict[tuple[str, str], Run] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changes: list[float] = field(default_factory=list)  # every instant something changed
    # namespace -> when the test asked for its deletion: from then on nothing can be made in
    # it (the API server refuses creates), so its runs no longer wait for a slot
    namespaces_deleted: dict[str, float] = field(default_factory=dict)

    def namespace_deleted(self, namespace: str) -> None:
        with self.lock:
            at = time.time()
            self.namespaces_deleted[namespace] = at
            self.changes.append(at)

    def run(self, namespace: str, name: str) -> Run:
        return self.runs.setdefault((namespace, name), Run(queue=(namespace, "?")))

    def bgj_event(self, kind: str, obj: dict[str, Any]) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        at, rv = time.time(), int(meta.get("resourceVersion") or 0)
        with self.lock:
            run = self.run(meta["namespace"], meta["name"])
            run.queue = (meta["namespace"], spec.get("queue") or "default")
            if run.created is None:
                run.created = at
            if (kind == "DELETED" or meta.get("deletionTimestamp")) and run.ended is None:
                run.ended, run.ended_rv = at, rv
            self.changes.append(at)

    def job_event(self, kind: str, job: Any) -> None:
        owner = (job.metadata.labels or {}).get(c.LABEL_NAME)
        if owner is None:
            return
        at, rv = time.time(), int(job.metadata.resource_version or 0)
        finished = any(
            cond.type in ("Complete", "Failed") and cond.status == "True"
            for cond in (job.status.conditions or [])
        )
        with self.lock:
            run = self.run(job.metadata.namespace, owner)
            if kind == "ADDED" and run.started is None:
                run.started, run.started_rv = at, rv
            ends = kind == "DELETED" or finished or job.metadata.deletion_timestamp
            if ends and run.ended is None:
                run.ended, run.ended_rv = at, rv
            self.changes.append(at)

    # ------------------------------------------------------------------ measures

    def peaks(self) -> tuple[int, int]:
        """The most active ``work`` runs and the most active runs overall, in the API
        server's order of the starts and ends."""
        steps: list[tuple[int, int, tuple[str, str]]] = []  # (rv, +1/-1, queue)
        for run in self.runs.values():
            if run.started_rv is None:
                continue
            steps.append((run.started_rv, 1, run.queue))
            if run.ended_rv is not None:
                steps.append((run.ended_rv, -1, run.queue))
        work = total = work_peak = total_peak = 0
        for _, step, queue in sorted(steps, key=lambda s: (s[0], s[1])):  # ends first
            total += step
            work += step if queue[1] == "work" else 0
            work_peak, total_peak = max(work_peak, work), max(total_peak, total)
        return work_peak, total_peak

    def active(self, at: float) -> dict[tuple[str, str], int]:
        """Active runs by queue at instant ``at``."""
        out: dict[tuple[str, str], int] = {}
        for run in self.runs.values():
            if (
                run.started is not None
                and run.started <= at
                and (run.ended is None or run.ended > at)
            ):
                out[run.queue] = out.get(run.queue, 0) + 1
        return out

    def describe(self, at: float) -> str:
        """Who ran and who waited at ``at`` (a failure's message)."""
        waiting = sorted(
            f"{ns}/{name} ({run.queue[1]})"
            for (ns, name), run in self.runs.items()
            if run in self.waiting(at)
        )
        return f"active by queue: {self.active(at)}; waiting: {waiting}"

    def waiting(self, at: float) -> list[Run]:
        return [
            r
            for r in self.runs.values()
            if r.created is not None
            and r.created <= at
            and (r.started is None or r.started > at)
            and (r.ended is None or r.ended > at)
            and self.namespaces_deleted.get(r.queue[0], at + 1) > at
        ]

    def longest_free_slot(self, outages: list[tuple[float, float]]) -> tuple[float, float]:
        """The longest stretch during which a job waited while a slot it could take was free
        (its queue below its limit and the cap not reached), outside ``outages``; and when."""
        longest, since, worst_at = 0.0, None, 0.0
        for at in sorted(set(self.changes)):
            active = self.active(at)
            total = sum(active.values())
            could = any(
                total < CAP and (r.queue[1] != "work" or active.get(r.queue, 0) < WORK_LIMIT)
                for r in self.waiting(at)
            )
            down = any(start <= at <= end for start, end in outages)
            if could and not down:
                since = at if since is None else since
            else:
                if since is not None and at - since > longest:
                    longest, worst_at = at - since, since
                since = None
        return longest, worst_at


@contextmanager
def watching(api: client.ApiClient) -> Iterator[Timeline]:
    """Cluster-wide watches of the BackgroundJobs and the managed Jobs feeding one timeline
    (one stream per kind: a stream delivers its events in the API server's order)."""
    timeline = Timeline()
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
    watches: list[watch.Watch] = []
    ready: list[threading.Event] = []
    managed = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"

    def follow(list_call: Any, args: tuple[Any, ...], on_event: Any, kw: dict[str, Any]) -> None:
        w = watch.Watch()
        watches.append(w)
        started = threading.Event()
        ready.append(started)

        def loop() -> None:
            while not w._stop:
                try:
                    listed = list_call(*args, **kw)
                    meta = listed["metadata"] if isinstance(listed, dict) else listed.metadata
                    version = (
                        meta["resourceVersion"] if isinstance(meta, dict) else meta.resource_version
                    )
                    started.set()
                    for event in w.stream(list_call, *args, resource_version=version, **kw):
                        on_event(event["type"], event["object"])
                except Exception:  # a dropped watch (or 410 Gone): list and watch again
                    time.sleep(0.2)

        threading.Thread(target=loop, daemon=True).start()

    follow(
        custom.list_cluster_custom_object, (c.GROUP, c.VERSION, c.PLURAL), timeline.bgj_event, {}
    )
    follow(batch.list_job_for_all_namespaces, (), timeline.job_event, {"label_selector": managed})
    for event in ready:
        event.wait(30)
    try:
        yield timeline
    finally:
        for w in watches:
            w.stop()


def make_namespace(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"backgroundjobs.dev/test": "true"}}}
    )

    def has_default_account() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
            return True
        except ApiException:
            return False

    wait_for(f"namespace {name}'s default ServiceAccount", has_default_account, timeout=120)


ADMISSION_OPEN = re.compile(r"^(\S+ \S+,\d+) INFO .*queues: admission open after")


def admission_openings(log_text: str) -> list[float]:
    """When the operator's queue admission opened, each start (its log's wall clock)."""
    out = []
    for line in log_text.splitlines():
        m = ADMISSION_OPEN.match(line)
        if m:
            out.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return out


def log_between(log_text: str, start: float, end: float) -> str:
    """The operator's log lines stamped from ``start`` to ``end`` (wall clock)."""
    out = []
    for line in log_text.splitlines():
        m = re.match(r"^(\S+ \S+,\d+) ", line)
        if m:
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if start <= at <= end:
                out.append(line[:300])
    return "\n".join(out[-150:])


@pytest.fixture
def other(api_client: client.ApiClient, namespace: str) -> Iterator[str]:
    """A second namespace; the test deletes it mid-way (here again if it failed before)."""
    core = client.CoreV1Api(api_client)
    name = f"{namespace[:50]}-b"
    make_namespace(core, name)
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def test_queue_slots_cannot_leak(
    operators: OperatorFactory, api_client: client.ApiClient, namespace: str, other: str
) -> None:
    rng = random.Random(SEED)
    core = client.CoreV1Api(api_client)
    op = operators(
        "slots",
        namespaces=[namespace, other],
        env={"BACKGROUNDJOBS_MAX_RUNNING": str(CAP), "BACKGROUNDJOBS_POD_POLICY_CHECK": "false"},
    )
    op.start()
    Queues(api_client, namespace).create("work", maxConcurrency=WORK_LIMIT)
    mine, theirs = Jobs(api_client, namespace), Jobs(api_client, other)

    def run_for() -> str:
        return f"{rng.uniform(1, 3):.1f}s"

    plan: list[tuple[Jobs, dict[str, Any]]] = []
    for i in range(scaled(60, 12)):
        failing = {FAIL_EXIT: "3"} if i % 10 == 9 else {}
        body = manifest(
            f"work-{i}", queue="work", retries=0, pod_annotations={RUN_FOR: run_for(), **failing}
        )
        plan.append((mine, body))
    for i in range(scaled(40, 8)):
        plan.append(
            (mine, manifest(f"bulk-{i}", queue="bulk", pod_annotations={RUN_FOR: run_for()}))
        )
    for i in range(scaled(30, 6)):  # long enough to hold cap slots when their namespace goes
        plan.append((theirs, manifest(f"b-{i}", queue="bulk", pod_annotations={RUN_FOR: "60s"})))
    # the ones the faults will hit: long runs, hit once they run
    faults = {f"{way}-{i}": way for way in ("delete", "cancel", "job") for i in range(scaled(5, 2))}
    for i, name in enumerate(faults):
        queue = "work" if i % 2 else "bulk"
        plan.append((mine, manifest(name, queue=queue, pod_annotations={RUN_FOR: "600s"})))
    rng.shuffle(plan)

    kill_at = sorted(rng.sample(range(len(plan) // 3, len(plan)), 2))
    kills: list[float] = []
    with watching(api_client) as timeline:
        for index, (jobs, body) in enumerate(plan):
            jobs.create(body)
            if kill_at and kill_at[0] == index:
                kill_at.pop(0)
                kills.append(time.time())
                op.kill()
                op.start()

        # every run ends some way: each fault applied once its job runs (a long run holds
        # its slot until hit), the other namespace deleted while its jobs hold cap slots
        other_deleted = False
        deadline = time.monotonic() + 900
        while faults or not other_deleted:
            assert time.monotonic() < deadline, ("faults not applied", faults)
            phases = {
                o["metadata"]["name"]: (o.get("status") or {}).get("phase")
                for o in list_bgjs(mine.custom, namespace)
            }
            for name, way in list(faults.items()):
                if phases.get(name) != "Running":
                    continue
                if way == "delete":
                    mine.delete(name)
                elif way == "cancel":
                    mine.annotate(name, c.ANNOTATION_CANCEL, "slots-1")
                else:
                    mine.batch.delete_namespaced_job(
                        f"{name}-1", namespace, propagation_policy="Background"
                    )
                del faults[name]
            if not other_deleted and any(
                (o.get("status") or {}).get("phase") == "Running"
                for o in list_bgjs(theirs.custom, other)
            ):
                timeline.namespace_deleted(other)
                core.delete_namespace(other)
                other_deleted = True
            time.sleep(0.5)

        expected = [
            body["metadata"]["name"]
            for jobs, body in plan
            if jobs is mine and not body["metadata"]["name"].startswith("delete-")
        ]

        def all_ended() -> bool:
            return all(mine.status(n).get("phase") in TERMINAL for n in expected)

        wait_for("every remaining job to end", all_ended, timeout=1200, interval=2)
        time.sleep(1)  # the last watch events

    # each restart is an outage from its kill until admission opened again (the operator's
    # log; a kill may come before the previous start opened it)
    openings = admission_openings(op.log_path.read_text())
    assert op.starts == len(kills) + 1 and openings and openings[-1] > kills[-1], (openings, kills)
    outages = [(kill, min(o for o in openings if o > kill)) for kill in kills]
    with timeline.lock:
        work_peak, total_peak = timeline.peaks()
        free, worst_at = timeline.longest_free_slot(outages)
        started = sum(1 for r in timeline.runs.values() if r.started is not None)
    print(
        f"\nqueue slots (seed {SEED}): {len(plan)} jobs, {started} started; peaks: work"
        f" {work_peak}/{WORK_LIMIT}, all {total_peak}/{CAP}; longest free slot with a job"
        f" waiting, outside {len(outages)} restarts: {free:.2f} s; restarts' admission"
        f" waits: {[round(o - k, 1) for k, o in outages]} s"
    )
    assert work_peak <= WORK_LIMIT and total_peak <= CAP, (work_peak, total_peak)
    if free > FREE_SLOT_LIMIT_S:
        with timeline.lock:
            described = timeline.describe(worst_at + 0.01)
        raise AssertionError(
            f"a slot stayed free {free:.2f} s from {worst_at:.3f} (outages {outages});"
            f" then {described}; the operator's log then:\n"
            + log_between(op.log_path.read_text(), worst_at - 2, worst_at + free + 1)
        )
    for name in expected:
        status = mine.status(name)
        if name.startswith("cancel-"):
            want = ("Cancelled", None)
        elif name.startswith("job-"):
            want = ("Failed", c.Reason.JOB_DELETED)
        elif name.startswith("work-") and int(name.split("-")[1]) % 10 == 9:
            want = ("Failed", None)
        else:
            want = ("Succeeded", None)
        assert status["phase"] == want[0], (name, status)
        if want[1] is not None:
            failed = [x for x in status["conditions"] if x["type"] == "Failed"]
            assert failed and failed[0]["reason"] == want[1], (name, status)
