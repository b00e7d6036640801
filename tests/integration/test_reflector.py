"""The control loop's own list and watch of BackgroundJobs (controller/reflector.py), against
the real API server: objects listed, then watched (a megabyte-sized one too, which aiohttp's
line reader refuses), deletions seen, and a watch from a version the API server no longer
keeps listed again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubernetes import client

from backgroundjobs.api import constants as c
from backgroundjobs.controller.kube import operator_api_client
from backgroundjobs.controller.reflector import Gone, Reflector

pytestmark = pytest.mark.integration


def bgj(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name},
        "spec": {"handler": "test.echo", **spec},
    }


async def until(check: Any, what: str, timeout: float = 60) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_objects_are_listed_then_watched_whatever_their_size(
    crd: dict[str, Any], custom_objects: client.CustomObjectsApi, namespace: str
) -> None:
    def create(body: dict[str, Any]) -> None:
        custom_objects.create_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, body
        )

    create(bgj("before"))
    # a batch of about 600 KB: one watch line far over aiohttp's 128 KiB line limit
    items = [{"args": [f"{i:05d}-" + "x" * 280]} for i in range(2000)]

    async def flow() -> list[tuple[str | None, str, int]]:
        events: list[tuple[str | None, str, int]] = []
        relisted: list[int] = []

        def on_event(event: dict[str, Any]) -> None:
            obj = event["object"]
            size = len((obj.get("spec") or {}).get("items") or [])
            events.append((event["type"], obj["metadata"]["name"], size))

        api = await operator_api_client()
        reflector = Reflector(api, namespace, on_event, lambda: relisted.append(1))
        task = asyncio.create_task(reflector.run())
        try:
            await until(lambda: (None, "before", 0) in events, "the listed object")
            await asyncio.to_thread(create, bgj("large", items=items))
            await until(lambda: ("ADDED", "large", 2000) in events, "the large object's ADDED")
            await asyncio.to_thread(
                custom_objects.delete_namespaced_custom_object,
                c.GROUP, c.VERSION, namespace, c.PLURAL, "before",
            )  # fmt: skip
            await until(lambda: ("DELETED", "before", 0) in events, "the deletion")
            assert not relisted  # one list only: the watch went on by itself
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await api.close()
        return events

    events = asyncio.run(flow())
    assert [e for e in events if e[1] == "large" and e[0] == "ADDED"] == [("ADDED", "large", 2000)]


def test_a_watch_from_a_version_no_longer_kept_lists_again(
    crd: dict[str, Any], custom_objects: client.CustomObjectsApi, namespace: str
) -> None:
    custom_objects.create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, bgj("kept")
    )

    async def flow() -> tuple[list[str], int]:
        names: list[str] = []
        relisted: list[int] = []
        api = await operator_api_client()
        reflector = Reflector(
            api,
            namespace,
            lambda e: names.append(e["object"]["metadata"]["name"]),
            lambda: relisted.append(1),
        )
        try:
            with pytest.raises(Gone):
                await reflector.watch("1")  # compacted long ago: 410
            version = await reflector.list()
            assert int(version) > 1
            await reflector.list()
        finally:
            await api.close()
        return names, len(relisted)

    names, relisted = asyncio.run(flow())
    assert names == ["kept", "kept"]
    assert relisted == 1  # the second list, not the first, tells the loop to resync
