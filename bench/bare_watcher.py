"""M6's baseline: a bare Python process holding the same BackgroundJobs as the operator.

``python -m bench.bare_watcher KUBECONFIG NAMESPACE`` lists the namespace's BackgroundJobs
with kubernetes_asyncio (raw JSON, managedFields dropped, as the operator keeps them), holds
them in a dict keyed by (namespace, name) and prints: the count, its RSS in bytes before
listing, with the BackgroundJobs, then also holding the namespace's Jobs as dicts (for
reference; the operator keeps only a small view of each Job, so the baseline the suite uses
is the BackgroundJobs alone: the conservative one).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from typing import Any

from kubernetes_asyncio import client

from backgroundjobs.api import constants as c
from bench.k8s import api_client, body
from bench.procs import rss_bytes

Body = dict[str, Any]


def _slim(obj: Body) -> Body:
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


async def _list(call: Any, *args: Any) -> list[Body]:
    items: list[Body] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"limit": 500, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        page = await body(await call(*args, **kwargs))
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


async def main(kubeconfig: str, namespace: str) -> None:
    api = await api_client(kubeconfig, pool=4)
    custom = client.CustomObjectsApi(api)
    batch = client.BatchV1Api(api)
    held: dict[str, dict[tuple[str, str], Body]] = {"bgj": {}, "job": {}}
    gc.collect()
    empty = rss_bytes(os.getpid())
    for obj in await _list(
        custom.list_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.PLURAL
    ):
        held["bgj"][(namespace, obj["metadata"]["name"])] = _slim(obj)
    gc.collect()
    with_bgjs = rss_bytes(os.getpid())
    for obj in await _list(batch.list_namespaced_job, namespace):
        held["job"][(namespace, obj["metadata"]["name"])] = _slim(obj)
    gc.collect()
    with_jobs = rss_bytes(os.getpid())
    await api.close()
    print(len(held["bgj"]), empty, with_bgjs, with_jobs)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
