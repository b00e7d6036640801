"""A SIGKILL storm: 10 kills of the operator at random moments (every other one while Jobs
wait for their status write, inside the status hold) during 1,000 mixed jobs: immediate,
delayed, recurring, chains, 10 % failing, requeues and cancels.

Counted afterwards, from the objects and the API server's audit log: every job terminal,
exactly one Job per run (a Job name created twice would be a run done twice), no delayed Job
received by the API server before its due time, each child started exactly once.
``RELIABILITY_SCALE`` scales the job counts; the kill count stays 10.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta

from kubernetes import client
from tests.integration.bgj import FAIL_EXIT, RUN_FOR, Jobs, manifest, wait_for
from tests.reliability.accounts import user_of
from tests.reliability.audit import Audit, Request, created
from tests.reliability.conftest import OperatorFactory, scaled
from tests.reliability.scenario import TERMINAL, now, pending_statuses

from backgroundjobs.api import constants as c

KILLS = 10
SEED = int(time.time())


def test_sigkill_storm(
    operators: OperatorFactory, api_client: client.ApiClient, namespace: str, audit: Audit
) -> None:
    rng = random.Random(SEED)
    op = operators("storm", namespaces=[namespace])
    op.start()
    jobs = Jobs(api_client, namespace)
    start = now()

    expect: dict[str, str] = {}  # name -> final phase
    runs: dict[str, int] = {}  # name -> runs it must end with
    due: dict[str, object] = {}  # delayed name -> due instant
    children: list[str] = []
    requeue: list[str] = []
    cancel: list[str] = []
    recurring: list[str] = []
    plan: list[tuple[str, dict]] = []

    for i in range(scaled(400, 20)):
        plan.append((f"imm-{i}", manifest(f"imm-{i}", args=[i])))
        expect[f"imm-{i}"], runs[f"imm-{i}"] = "Succeeded", 1
    for i in range(scaled(100, 5)):
        name = f"fail-{i}"
        plan.append((name, manifest(name, retries=0, pod_annotations={FAIL_EXIT: "3"})))
        expect[name], runs[name] = "Failed", 1
    for i in range(scaled(200, 10)):
        name = f"delayed-{i}"
        at = start + timedelta(seconds=20 + rng.uniform(0, 100))
        due[name] = at
        plan.append((name, manifest(name, runAt=at.isoformat(timespec="microseconds"))))
        expect[name], runs[name] = "Succeeded", 1
    for i in range(scaled(50, 3)):
        parent, child = f"parent-{i}", f"child-{i}"
        plan.append((parent, manifest(parent)))
        plan.append((child, manifest(child, after={"name": parent})))
        children.append(child)
        expect[parent] = expect[child] = "Succeeded"
        runs[parent] = runs[child] = 1
    for i in range(scaled(10, 1)):
        chain = [f"chain-{i}-{k}" for k in range(5)]
        for k, name in enumerate(chain):
            spec = {"after": {"name": chain[k - 1]}} if k else {}
            plan.append((name, manifest(name, **spec)))
            expect[name], runs[name] = "Succeeded", 1
        children.extend(chain[1:])
    for i in range(scaled(50, 3)):
        name = f"requeue-{i}"
        plan.append((name, manifest(name)))
        requeue.append(name)
        expect[name], runs[name] = "Succeeded", 2
    for i in range(scaled(50, 3)):
        name = f"cancel-{i}"
        plan.append((name, manifest(name, pod_annotations={RUN_FOR: "600s"})))
        cancel.append(name)
        expect[name], runs[name] = "Cancelled", 1
    for i in range(scaled(10, 1)):
        name = f"cron-{i}"
        plan.append((name, manifest(name, schedule="* * * * *")))
        recurring.append(name)
    rng.shuffle(plan)

    # create everything while killing at random moments
    kill_at = sorted(rng.sample(range(len(plan)), KILLS))
    kills: list[str] = []
    for index, (_name, body) in enumerate(plan):
        jobs.create(body)
        while kill_at and kill_at[0] == index:
            kill_at.pop(0)
            in_hold = len(kills) % 2 == 0
            if in_hold:  # inside the status hold: Jobs created, statuses not yet written
                deadline = time.monotonic() + 10
                while pending_statuses(op.metrics()) == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
            pending = pending_statuses(op.metrics())
            op.kill()
            kills.append(f"after {index + 1} creates, {pending:.0f} statuses pending")
            op.start()

    # requeue finished jobs, cancel running ones, trigger the recurring ones
    for name in requeue:
        jobs.wait_phase(name, "Succeeded", timeout=600)
        jobs.annotate(name, c.ANNOTATION_REQUEUE, "storm-1")
    for name in cancel:
        jobs.wait_phase(name, "Running", timeout=600)
        jobs.annotate(name, c.ANNOTATION_CANCEL, "storm-1")
    for name in recurring:
        jobs.annotate(name, c.ANNOTATION_TRIGGER, "storm-1")

    # every job terminal, with the outcome and run count it must have
    def all_terminal() -> bool:
        return all(jobs.status(n).get("phase") in TERMINAL for n in expect)

    wait_for("every job to end", all_terminal, timeout=900, interval=2)
    for name in recurring:
        jobs.patch(name, {"spec": {"suspend": True}})
    for name, phase in expect.items():
        status = jobs.status(name)
        assert status["phase"] == phase, (name, status)
        assert status.get("runs", 0) == runs[name], (name, status)

    # exactly one Job per run: each run's Job created once, by the API server's count
    requests = audit.requests(user_of("storm"), namespace)
    creates = created(requests, "jobs")
    twice = {name: len(rs) for (_, name), rs in creates.items() if len(rs) > 1}
    assert twice == {}, f"Jobs created more than once: {twice}; kills: {kills}"
    # A create in flight when the operator is killed is logged 504 ("context canceled"):
    # stored or not. When no create of that name succeeded, it was stored (the Job exists:
    # checked below) and the next operator adopted it (409): it is that run's one create.
    stored: dict[tuple[str, str], list[Request]] = {k: list(v) for k, v in creates.items()}
    for r in requests:
        key = (r.namespace, r.name)
        if r.verb == "create" and r.resource == "jobs" and r.code == 504 and key not in creates:
            stored.setdefault(key, []).append(r)
    for name, count in runs.items():
        made = [f"{name}-{r}" for r in range(1, count + 1)]
        assert all((namespace, job) in stored for job in made), (name, made)
        owned = sorted(j.metadata.name for j in jobs.jobs(name))
        assert owned == ([] if name in cancel else made), (name, owned)  # a cancel deletes it

    # no delayed Job received before its due time (the API server's clock)
    early = {
        name: (min(r.received for r in stored[(namespace, f"{name}-1")]), at)
        for name, at in due.items()
        if min(r.received for r in stored[(namespace, f"{name}-1")]) < at
    }
    assert early == {}, early

    # each child started exactly once (one Job, run 1), after its parent succeeded
    for child in children:
        assert jobs.status(child)["runs"] == 1
        assert len(stored[(namespace, f"{child}-1")]) == 1

    # each recurring trigger made exactly one Job
    triggered = Counter(
        j.metadata.labels.get(c.LABEL_NAME)
        for j in jobs.jobs()
        if j.metadata.labels.get(c.LABEL_RUN) == "triggered"
    )
    assert all(triggered[name] == 1 for name in recurring), triggered
    assert op.starts == KILLS + 1
    print(f"\nSIGKILL storm (seed {SEED}): {len(plan)} jobs, kills: {kills}")
