"""The operator's cache in one process: heap per stored BackgroundJob (with its finished Job),
at several sizes (the slope, not a fixed cost spread over few objects), and what is left
after every object is deleted.

    python -m bench.cache_memory [N ...]        # default 2000 10000 50000

Objects are what the API server returns for a job made by the client: managedFields, a
finished status with four conditions, a small kwargs and a podTemplate with a handler
container. ``--unpacked`` keeps args/kwargs/podTemplate parsed (the cache before they were
kept as text), ``--parsed-finished`` keeps finished objects parsed (the cache before
``Finished``), for the comparisons. tracemalloc counts Python's heap only; the RSS of a real
operator adds the interpreter, libraries and the allocator's slack (bench M6).
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from typing import Any

from backgroundjobs.controller import cache as cache_module
from backgroundjobs.controller.cache import DELETED, Cache

Body = dict[str, Any]


def bgj(i: int) -> Body:
    name = f"report-{i:06d}"
    now = "2026-11-30T00:00:00Z"
    conditions = [
        {
            "type": t,
            "status": s,
            "reason": r,
            "message": f"Job {name}-1 {r.lower()}",
            "lastTransitionTime": now,
            "observedGeneration": 1,
        }
        for t, s, r in (
            ("Scheduled", "False", "Started"),
            ("Running", "False", "Completed"),
            ("Succeeded", "True", "Completed"),
            ("Queued", "False", "Started"),
        )
    ]
    return {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"8d7c3a52-0000-4000-8000-{i:012d}",
            "resourceVersion": str(100000 + i),
            "generation": 1,
            "creationTimestamp": now,
            "labels": {"app": "shop"},
            "managedFields": [
                {"manager": "bgjobs", "operation": "Apply", "fieldsV1": {"f:spec": {}}}
            ],
        },
        "spec": {
            "handler": "reports.build",
            "args": [i, "monthly"],
            "kwargs": {"customer": f"c-{i}", "format": "pdf", "pages": [1, 2, 3]},
            "queue": "default",
            "podTemplate": {
                "metadata": {"labels": {"team": "reports"}},
                "spec": {
                    "containers": [
                        {
                            "name": "handler",
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                            "env": [{"name": "REGION", "value": "eu-west-1"}],
                        }
                    ]
                },
            },
        },
        "status": {
            "phase": "Succeeded",
            "type": "Immediate",
            "runs": 1,
            "jobName": f"{name}-1",
            "startedAt": now,
            "finishedAt": now,
            "observedGeneration": 1,
            "message": "succeeded in 1.0s",
            "result": {"pages": 3},
            "conditions": conditions,
        },
    }


def job(i: int) -> Body:
    name = f"report-{i:06d}"
    return {
        "metadata": {
            "name": f"{name}-1",
            "namespace": "shop",
            "uid": f"job-{i}",
            "resourceVersion": str(200000 + i),
            "labels": {"backgroundjobs.dev/name": name, "backgroundjobs.dev/queue": "default"},
            "ownerReferences": [
                {
                    "apiVersion": "backgroundjobs.dev/v1alpha1",
                    "kind": "BackgroundJob",
                    "name": name,
                    "uid": f"8d7c3a52-0000-4000-8000-{i:012d}",
                    "controller": True,
                }
            ],
        },
        "status": {
            "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }


def measure(n: int) -> tuple[float, float, float]:
    """Heap bytes per object with ``n`` stored; left per object once they are all deleted
    (mostly dict tables sized for ``n``, which Python does not shrink); and what a second
    round of ``n`` stored and deleted adds to that, per object (a leak)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cache = Cache()
    stored = 0
    left = []
    for _ in range(2):
        for i in range(n):
            body = bgj(i)
            cache.store_bgj(("shop", body["metadata"]["name"]), body)
            cache.observe_job("ADDED", job(i))
        gc.collect()
        stored = stored or tracemalloc.get_traced_memory()[0] - base
        for i in range(n):
            cache.observe_job(DELETED, job(i))
            cache.forget_bgj(("shop", f"report-{i:06d}"))
        gc.collect()
        left.append(tracemalloc.get_traced_memory()[0] - base)
    tracemalloc.stop()
    return stored / n, left[0] / n, (left[1] - left[0]) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[2000, 10000, 50000])
    parser.add_argument("--unpacked", action="store_true", help="keep args/kwargs parsed")
    parser.add_argument(
        "--parsed-finished",
        action="store_true",
        help="keep finished objects parsed too (the cache before the Finished form)",
    )
    args = parser.parse_args()
    if args.unpacked:
        cache_module._pack = lambda spec: spec  # type: ignore[assignment]
    if args.parsed_finished:
        cache_module.Finished.of = classmethod(lambda cls, obj: None)
    points = []
    for n in args.sizes:
        per_object, left, leak = measure(n)
        points.append((n, per_object * n))
        print(
            f"N={n}: {per_object:,.0f} B per object stored; after deleting all:"
            f" {left:,.1f} B per object left, {leak:,.1f} B per object more after a second round"
        )
    if len(points) > 1:
        (n0, b0), (n1, b1) = points[0], points[-1]
        print(f"slope {n0}..{n1}: {(b1 - b0) / (n1 - n0):,.0f} B per object")


if __name__ == "__main__":
    main()
