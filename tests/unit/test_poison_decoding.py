"""The operator's process decodes objects of any depth on every path that reads one: kopf's
watch stream, kopf's lists (aiohttp's ``ClientResponse.json``) and its own API calls; the
cache keeps them and ``decide`` fails them as InvalidSpec, all without a RecursionError."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from backgroundjobs.api.constants import Phase
from backgroundjobs.controller import handlers
from backgroundjobs.controller.cache import Cache
from backgroundjobs.controller.decisions import Observed, decide
from backgroundjobs.controller.kube import response_json
from backgroundjobs.controller.settings import Settings

pytestmark = pytest.mark.unit

DEPTHS = (1200, 3000, 9990)


def deep_object(depth: int) -> str:
    nested = "[" * depth + "]" * depth
    return json.dumps(
        {
            "apiVersion": "backgroundjobs.dev/v1alpha1",
            "kind": "BackgroundJob",
            "metadata": {"name": "deep", "namespace": "shop", "uid": "u1", "generation": 1},
            "spec": {"handler": "mail.send", "kwargs": {"x": "NESTED"}},
        }
    ).replace('"NESTED"', nested)


def test_kopfs_watch_stream_decodes_any_depth() -> None:
    """kopf decodes each watch line with its module's ``json.loads``: the one handlers set."""
    handlers.decode_json_of_any_depth()
    for depth in DEPTHS:
        line = json.dumps({"type": "ADDED", "object": "OBJ"}).replace('"OBJ"', deep_object(depth))
        event = handlers.kopf_api.json.loads(line.encode().decode("utf-8"))
        assert event["object"]["metadata"]["name"] == "deep"
    with pytest.raises(RecursionError):
        json.loads(deep_object(3000))  # what kopf did before


def test_lists_and_the_operators_own_calls_decode_any_depth() -> None:
    """kopf's lists call ``response.json()`` with aiohttp's default decoder (set by handlers);
    the operator's KubeApi reads responses with ``response_json``."""
    handlers.decode_json_of_any_depth()

    async def obj(request: web.Request) -> web.Response:
        depth = int(request.match_info["depth"])
        return web.Response(text=deep_object(depth), content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/deep/{depth}", obj)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                for depth in DEPTHS:
                    url = f"http://127.0.0.1:{port}/deep/{depth}"
                    async with session.get(url) as resp:
                        assert (await resp.json())["spec"]["handler"] == "mail.send"
                    resp = await session.get(url)
                    assert (await response_json(resp))["metadata"]["uid"] == "u1"
        finally:
            await runner.cleanup()

    asyncio.run(main())


@pytest.mark.parametrize("depth", DEPTHS)
def test_cache_and_decide_take_any_depth(depth: int) -> None:
    body = handlers.kopf_api.json.loads(deep_object(depth))
    cache = Cache()
    cache.store_bgj(("shop", "deep"), body)
    cached = cache.bgj(("shop", "deep"))
    assert cached is not None
    settings = Settings(default_image="img", retention=timedelta(hours=1))
    plan = decide(Observed(bgj=cached, now=datetime.now(UTC)), settings)
    assert plan.status["phase"] == Phase.FAILED
    failed = plan.status["conditions"][0]
    assert failed["reason"] == "InvalidSpec"
    assert failed["message"] == "spec.kwargs is nested more than 64 levels deep"
    assert [e.reason for e in plan.events] == ["InvalidSpec"]
    assert not plan.create
