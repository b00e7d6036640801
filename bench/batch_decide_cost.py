"""What one reconcile of a running batch costs the operator's event loop in decide() and the
pod-policy check (CPU only, no cluster): the start of a run (items checked, the ConfigMap
built) and a status change while it runs, for batches of N items.
``python -m bench.batch_decide_cost [items ...]``."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from backgroundjobs.controller.decisions import Observed, ObservedJob, decide, police
from backgroundjobs.controller.settings import Settings

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
SETTINGS = Settings(default_image="example.com/handlers:1", retention=timedelta(hours=168))


def batch(n: int, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": "news",
            "namespace": "shop",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": "2030-01-01T11:00:00Z",
        },
        "spec": {
            "handler": "mail.send",
            "items": [{"args": [f"user-{i}"], "kwargs": {"title": "News"}} for i in range(n)],
            "parallelism": 20,
        },
    }


def reconcile_ms(body: dict[str, Any], jobs: dict[str, ObservedJob], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        obs = Observed(bgj=body, now=NOW, jobs=jobs, admitted=True)
        police(obs, SETTINGS, decide(obs, SETTINGS))
    return (time.perf_counter() - started) / rounds * 1000


def main(sizes: list[int]) -> None:
    print(f"{'items':>8}{'start ms':>12}{'running ms':>13}")
    for n in sizes:
        body = batch(n, uid=f"bench-{n}")
        start = reconcile_ms(body, {}, 3)
        body["status"] = decide(Observed(bgj=body, now=NOW, admitted=True), SETTINGS).status
        job = ObservedJob(
            name="news-1",
            uid="uid-news-1",
            owner_uid=f"bench-{n}",
            created=NOW,
            start_time=NOW,
            active_pods=20,
            succeeded=n // 2,
            completed_indexes=f"0-{n // 2 - 1}",
        )
        running = reconcile_ms(body, {job.name: job}, 10)
        print(f"{n:>8}{start:>12.1f}{running:>13.1f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
