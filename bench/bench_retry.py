"""Attempt-scheduling lateness of ``spec.retryPolicy``, measured from outside the operator.

    KUBECONFIG=... python -m bench.bench_retry [--jobs 30] [--retries 2] [--initial 5s]

Starts its own operator against $KUBECONFIG in a fresh namespace (both removed at the end)
and creates ``--jobs`` BackgroundJobs at once whose pods all fail (exit code 1, kwok), each
with ``retries`` and a backoff of ``initial``, factor 2, jitter 0.5. For every attempt after
the first: lateness = its Job seen ADDED by a separate watch (this process's clock) minus its
due time (the previous attempt Job's Failed condition time plus the policy's delay, as the
operator computes it); early = seen before due, or a creationTimestamp before the due second.
That lateness is split by the API server's audit log: due -> the create received (the
operator's part), received -> answered (the API server's), answered -> seen (the watch's),
next to the operator's own view (its attempt-lateness histogram: decision time - due). The
watch reads plain JSON and the wait for the last attempts reads the watch, not lists: a
V1Job deserialized per event and a list of every Job every 0.2 s held this process's GIL
and made the watch, not the operator, hundreds of milliseconds late (p99 0.71 s -> 0.13 s
at 60 jobs, same operator).
The operator's cost per attempt over the same window: its CPU seconds (from /proc) and its
API requests in the namespace (the audit log next to $KUBECONFIG, told by the operator's
User-Agent) divided by the attempt Jobs made. Then ``--delayed`` Delayed jobs due over a few
seconds (runAt): their lateness is the floor the same operator and machine give a
timer-driven start. ``--profile STEM`` runs the operator under pyinstrument.

Run no other operator against the cluster meanwhile: two would both act.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tests.integration.bgj import FAIL_EXIT, manifest, wait_for
from tests.integration.harness import apply_crd

from backgroundjobs.api import constants as c
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions.retry import Backoff
from backgroundjobs.controller.kube import USER_AGENT
from bench import audit, procs
from bench.bench_handoff import JobWatch, describe
from bench.operator_process import Operator
from bench.scratch import delete_namespace_quietly


def failed_at(job: Any) -> float | None:
    for cond in (job.status and job.status.conditions) or []:
        if cond.type == "Failed" and cond.status == "True":
            return float(cond.last_transition_time.timestamp())
    return None


def delayed_floor(custom: client.CustomObjectsApi, jw: JobWatch, ns: str, count: int) -> None:
    """``count`` Delayed jobs due 4-8 s from now (runAt with microseconds): Job ADDED - runAt."""
    due = {f"d{i}": time.time() + 4 + 4 * i / max(1, count) for i in range(count)}
    for name, at in due.items():
        run_at = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
        body = manifest(name, runAt=run_at)
        custom.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL, body)
    jobs = [builders.job_name(name, 1) for name in due]
    wait_for(f"{count} delayed Jobs", lambda: all(j in jw.added for j in jobs), 120)
    lateness = [jw.added[builders.job_name(name, 1)] - at for name, at in due.items()]
    print(f"delayed-job lateness after them (Job ADDED - runAt), {count} jobs:")
    print(f"  {describe(lateness)}")


def reconciles(operator: Operator) -> float:
    """The operator's reconciles so far (its reconcile-duration histogram's count)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in operator.metrics().splitlines()
        if line.startswith("backgroundjobs_reconcile_duration_seconds_count")
    )


def decision_lateness(operator: Operator) -> str:
    """The operator's attempt-lateness histogram (decision time - due) as cumulative counts."""
    buckets = []
    for line in operator.metrics().splitlines():
        if line.startswith("backgroundjobs_attempt_lateness_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append(f"<={le}s {float(line.rsplit(' ', 1)[1]):.0f}")
    return ", ".join(buckets) or "not exported"


def measure(
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    jw: JobWatch,
    ns: str,
    count: int,
    retries: int,
    initial: str,
    operator: Operator,
    log: audit.AuditLog,
) -> None:
    operator_pid = operator.pid
    backoff = Backoff.parse(initial, 2, "1h", 0.5)
    mark = log.mark() if log.exists() else None
    cpu_before = procs.cpu_seconds(operator_pid)
    reconciles_before = reconciles(operator)
    policy = {"backoff": {"initial": initial, "factor": 2, "max": "1h", "jitter": 0.5}}
    uids = {}
    for i in range(count):
        body = manifest(
            f"r{i}", retries=retries, retryPolicy=policy, pod_annotations={FAIL_EXIT: "1"}
        )
        created = custom.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL, body)
        uids[f"r{i}"] = created["metadata"]["uid"]
    last = [builders.attempt_job_name(f"r{i}", 1, retries + 1) for i in range(count)]

    expected = backoff.base_delay(1).total_seconds() * (2**retries)
    # Waited on through the watch: a list of every Job each poll would hold this process's
    # GIL for the watch's time, and delay the arrivals it measures.
    wait_for(
        f"{count} jobs through {retries + 1} attempts",
        lambda: all(name in jw.failed for name in last),
        120 + expected * 2,
    )
    jobs = {j.metadata.name: j for j in batch.list_namespaced_job(ns).items}
    attempts = count * (retries + 1)
    cpu = procs.cpu_seconds(operator_pid) - cpu_before
    print(f"operator cost per attempt, {attempts} attempt Jobs ({count} jobs x {retries + 1}):")
    line = f"  CPU {cpu * 1000 / attempts:.1f} ms"
    line += f", reconciles {(reconciles(operator) - reconciles_before) / attempts:.2f}"
    if mark is not None:
        sent = Counter(
            audit.resource_of(e) + " " + e.get("verb", "")
            for e in log.since(mark, None, ns)
            if audit.component(e).startswith(USER_AGENT)
        )
        line += f", API requests {sum(sent.values()) / attempts:.2f}"
        line += " (" + ", ".join(f"{k} {n / attempts:.2f}" for k, n in sent.most_common(6)) + ")"
    print(line)
    creates: dict[str, tuple[float, float]] = {}  # attempt Job -> API server received, answered
    if mark is not None:
        for e in log.since(mark, None, ns):
            ref = e.get("objectRef") or {}
            if e.get("verb") == "create" and ref.get("resource") == "jobs":
                received = audit.stamp(e["requestReceivedTimestamp"])
                creates[ref.get("name", "")] = (received, audit.stamp(e["stageTimestamp"]))
    parts: dict[str, list[float]] = {"sent": [], "served": [], "watched": []}
    lateness: list[float] = []
    early = 0
    for name, uid in uids.items():
        for attempt in range(1, retries + 1):
            before = jobs[builders.attempt_job_name(name, 1, attempt)]
            after = jobs[builders.attempt_job_name(name, 1, attempt + 1)]
            failed = failed_at(before)
            assert failed is not None
            due = failed + backoff.delay(attempt, uid).total_seconds()
            seen = jw.added[after.metadata.name]
            lateness.append(seen - due)
            if after.metadata.name in creates:
                received, answered = creates[after.metadata.name]
                parts["sent"].append(received - due)
                parts["served"].append(answered - received)
                parts["watched"].append(seen - answered)
            created = after.metadata.creation_timestamp.timestamp()
            if seen < due or created < math.floor(due):
                early += 1
    print(f"retry attempt lateness (attempt Job ADDED - due), {len(lateness)} attempts:")
    print(f"  {describe(lateness)}")
    ordered = sorted(lateness)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    print(f"  p99={p99:.3f}s early={early}")
    if parts["sent"]:
        print("  its parts (audit log times): due -> the API server received the create:")
        print(f"    {describe(parts['sent'])}")
        print(f"  received -> answered: {describe(parts['served'])}")
        print(f"  answered -> seen by a watch: {describe(parts['watched'])}")
    print(f"  the operator's own view (its decision - due): {decision_lateness(operator)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--initial", default="5s")
    parser.add_argument("--delayed", type=int, default=30)
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the operator under pyinstrument; its profile to this file stem",
    )
    args = parser.parse_args()
    if not os.environ.get("KUBECONFIG"):
        print("set KUBECONFIG to the cluster to measure", file=sys.stderr)
        return 2

    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    apply_crd(api)
    ns = f"bench-retry-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    operator = Operator(os.environ["KUBECONFIG"], log_dir / "operator.log", profile_to=args.profile)
    jw = JobWatch(api, ns)
    try:
        wait_for(
            "the default ServiceAccount", lambda: core.list_namespaced_service_account(ns).items
        )
        operator.start()
        jw.start()
        jw.ready.wait(30)
        print(f"namespace {ns}; operator log {operator.log_path}")
        log = audit.AuditLog(audit.audit_path(os.environ["KUBECONFIG"]))
        measure(
            custom,
            client.BatchV1Api(api),
            jw,
            ns,
            args.jobs,
            args.retries,
            args.initial,
            operator,
            log,
        )
        if args.delayed:
            delayed_floor(custom, jw, ns, args.delayed)
    finally:
        jw.stop()
        operator.stop()
        for path in operator.render_profile():
            print(f"profile: {path}")
        delete_namespace_quietly(core, ns)
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
