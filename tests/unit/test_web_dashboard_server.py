"""The dashboard's web server without a cluster: who gets in (token cookie, loopback Host,
proxy header), what an action needs (the CSRF header, same origin, not read-only), the jobs
API's paging over the cache, and the live stream. No request here reaches an API server:
the requests counter proves it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes_asyncio import client as k8s
from tests.unit.test_web_dashboard import NOW, bgj

from backgroundjobs.client import AsyncClient
from backgroundjobs.dashboard._kube import Kube
from backgroundjobs.dashboard._server import COOKIE, Dashboard, Settings

pytestmark = pytest.mark.unit

CSRF = {"X-Requested-With": "bgjobs-dashboard"}


@asynccontextmanager
async def served(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[TestClient, Dashboard]]:
    # A kubeconfig for a server nobody listens on: any request to it would fail the test.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    configuration = k8s.Configuration(host="http://127.0.0.1:9")
    kube = Kube(k8s.ApiClient(configuration=configuration))
    dashboard = Dashboard(settings, kube, AsyncClient(kubeconfig=kubeconfig))
    client = TestClient(TestServer(dashboard.app(), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, dashboard
    finally:
        await client.close()
        await dashboard.stop()
    assert kube.requests.counts == {}, "a request reached the API server"


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


def test_token_mode_lets_in_only_the_url_s_holder(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(namespace="shop", token="s3cret")
        async with served(settings, tmp_path) as (client, _):
            assert (await client.get("/api/info")).status == 401
            assert (await client.get("/?token=wrong", allow_redirects=False)).status == 401
            entry = await client.get("/jobs?token=s3cret&phase=Failed", allow_redirects=False)
            assert entry.status == 302
            assert entry.headers["Location"] == "/jobs?phase=Failed"
            cookie = entry.cookies[COOKIE]
            assert cookie.value == "s3cret"
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            info = await client.get("/api/info")  # the client keeps the cookie
            assert info.status == 200
            assert (await info.json())["namespace"] == "shop"
            # A page from another origin that resolves to 127.0.0.1 (DNS rebinding) is refused.
            rebound = await client.get("/api/info", headers={"Host": "evil.example:80"})
            assert rebound.status == 403
            assert (await client.get("/healthz")).status == 503  # open, not synced yet

    run(scenario)


def test_actions_need_the_csrf_header_a_same_origin_and_write_access(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(Settings(namespace="shop", token="t"), tmp_path) as (client, _):
            await client.get("/?token=t")
            no_header = await client.post("/api/jobs/shop/j/requeue")
            assert no_header.status == 403
            assert "X-Requested-With" in (await no_header.json())["message"]
            cross = await client.post(
                "/api/jobs/shop/j/requeue", headers={**CSRF, "Origin": "https://evil.example"}
            )
            assert cross.status == 403
            other_ns = await client.post("/api/jobs/kube-system/j/delete", headers=CSRF)
            assert other_ns.status == 400
            unknown = await client.post("/api/jobs/shop/j/explode", headers=CSRF)
            assert unknown.status == 400
        read_only = Settings(namespace="shop", token="t", read_only=True)
        async with served(read_only, tmp_path) as (client, _):
            await client.get("/?token=t")
            refused = await client.post("/api/jobs/shop/j/requeue", headers=CSRF)
            assert refused.status == 403
            assert (await refused.json())["error"] == "ReadOnly"

    run(scenario)


def test_proxy_mode_needs_the_proxy_s_user_header(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(namespace=None, auth="proxy", impersonate=True)
        async with served(settings, tmp_path) as (client, _):
            missing = await client.get("/api/info")
            assert missing.status == 401
            assert "X-Forwarded-User" in (await missing.json())["message"]
            info = await client.get("/api/info", headers={"X-Forwarded-User": "ann"})
            assert (await info.json())["user"] == "ann"

    run(scenario)


def test_jobs_api_pages_and_filters_the_cache(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(namespace=None, auth="none", read_only=True, address="0.0.0.0")
        async with served(settings, tmp_path) as (client, dashboard):
            objects = [bgj(f"ok-{i:03d}", "Succeeded", created=i) for i in range(120)]
            objects += [bgj("bad", "Failed", namespace="other", queue="critical")]
            dashboard.store.replace(None, objects, NOW)
            page = await (await client.get("/api/jobs?phase=Succeeded&limit=50&offset=100")).json()
            assert page["total"] == 120
            assert [i["name"] for i in page["items"]] == [f"ok-{i:03d}" for i in range(100, 120)]
            assert page["phases"]["Failed"] == 1
            assert page["namespaces"] == ["other", "shop"]
            failed = await (await client.get("/api/jobs?namespace=other")).json()
            assert [i["name"] for i in failed["items"]] == ["bad"]
            bad = await client.get("/api/jobs?labels=a%20in%20(b)")
            assert bad.status == 400
            assert (await client.get("/api/jobs?phase=Exploded")).status == 400
            overview = await (await client.get("/api/overview")).json()
            assert overview["counts"]["total"] == 121
            assert len(overview["live"]) == 60

    run(scenario)


def test_the_stream_pushes_counts_and_the_changed_jobs(tmp_path: Path) -> None:
    async def read_event(response: Any) -> tuple[str, dict[str, Any]]:
        name, data = "", ""
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and name:
                return name, json.loads(data)

    async def scenario() -> None:
        settings = Settings(namespace="shop", token="t")
        async with served(settings, tmp_path) as (client, dashboard):
            await client.get("/?token=t")
            response = await client.get("/api/stream")
            assert response.headers["Content-Type"] == "text/event-stream"
            assert (await read_event(response))[0] == "hello"
            dashboard.store.apply("ADDED", bgj("done", "Succeeded"), NOW)
            name, data = await asyncio.wait_for(read_event(response), 10)
            assert name == "change"
            assert data["changed"] == ["shop/done"]
            assert data["counts"]["phases"]["Succeeded"] == 1
            assert data["queues"] is False
            # A queue object's change reaches the page too, with no job changed.
            dashboard.queues.apply("ADDED", queue("mail", pending=4), NOW)
            name, data = await asyncio.wait_for(read_event(response), 10)
            assert (name, data["changed"], data["queues"]) == ("change", [], True)
            response.close()

    run(scenario)


def queue(name: str, namespace: str = "shop", rv: str = "1", **fields: Any) -> dict[str, Any]:
    """A BackgroundJobQueue object; ``fields`` are its spec's, and its status's ``pending``,
    ``running`` and ``oldestPendingSince``."""
    status_keys = ("pending", "running", "oldestPendingSince")
    return {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJobQueue",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "spec": {k: v for k, v in fields.items() if k not in status_keys},
        "status": {k: v for k, v in fields.items() if k in status_keys},
    }


def test_queues_api_joins_queue_objects_with_the_queues_jobs_use(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(namespace=None, auth="none", read_only=True, address="0.0.0.0")
        async with served(settings, tmp_path) as (client, dashboard):
            dashboard.store.replace(
                None,
                [
                    bgj("w2", "Queued", queue="mail", created=100),  # seconds ago
                    bgj("w1", "Queued", queue="mail", created=200),
                    bgj("r1", "Running", queue="mail"),
                    bgj("x", "Succeeded", queue="reports"),
                    bgj("y", "Queued", queue="mail", namespace="other"),
                ],
                NOW,
            )
            dashboard.queues.replace_rows(
                None,
                [
                    dashboard.queues.make_row(
                        queue(
                            "mail", maxConcurrency=1, priority=10, paused=True,
                            rateLimit={"perSecond": 0.5, "burst": 2},
                            pending=2, running=1, oldestPendingSince="2030-01-02T11:50:00Z",
                        )
                    ),
                    dashboard.queues.make_row(queue("idle", priority=-5)),
                ],
                NOW,
            )  # fmt: skip
            listed = await (await client.get("/api/queues?namespace=shop")).json()
            by_name = {q["name"]: q for q in listed["items"]}
            assert sorted(by_name) == ["idle", "mail", "reports"]
            mail = by_name["mail"]
            assert mail["object"] is True
            assert (mail["maxConcurrency"], mail["priority"], mail["paused"]) == (1, 10, True)
            assert mail["rateLimit"] == {"perSecond": 0.5, "burst": 2}
            assert (mail["pending"], mail["running"]) == (2, 1)
            assert mail["oldestPendingSince"] == "2030-01-02T11:50:00Z"
            assert mail["jobs"] == {"Queued": 2, "Running": 1}
            assert by_name["idle"]["jobs"] == {} and by_name["idle"]["object"] is True
            # A queue name with no object: the operator's defaults, said as such.
            assert by_name["reports"]["object"] is False
            assert by_name["reports"]["jobs"] == {"Succeeded": 1}
            everywhere = await (await client.get("/api/queues")).json()
            assert [(q["namespace"], q["name"]) for q in everywhere["items"]] == [
                ("other", "mail"), ("shop", "idle"), ("shop", "mail"), ("shop", "reports"),
            ]  # fmt: skip

            one = await (await client.get("/api/queues/shop/mail")).json()
            assert one["queue"]["paused"] is True
            assert [(j["name"], j["queuePosition"]) for j in one["waiting"]] == [
                ("w1", 1), ("w2", 2),
            ]  # fmt: skip
            assert one["waitingTotal"] == 2
            none = await (await client.get("/api/queues/shop/nothing")).json()
            assert none["queue"]["object"] is False and none["waiting"] == []

            # The queue objects go (their CRD removed): the names the jobs use stay.
            dashboard.queues.replace_rows(None, [], NOW)
            after = await (await client.get("/api/queues?namespace=shop")).json()
            assert [(q["name"], q["object"]) for q in after["items"]] == [
                ("mail", False), ("reports", False),
            ]  # fmt: skip

    run(scenario)


def test_batches_api_lists_each_batch_with_its_items_by_state(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(namespace="shop", auth="none", read_only=True, address="0.0.0.0")
        async with served(settings, tmp_path) as (client, dashboard):
            counts = {"total": 4, "succeeded": 1, "failed": 1, "running": 1, "progress": "2/4"}
            progress = {"done": 2, "total": 4, "percent": 50.0, "summary": "2/4 (50%)"}
            dashboard.store.replace(
                None,
                [
                    bgj(
                        "news", "Running", items=[{}, {}, {}, {}],
                        status={"type": "Batch", "batch": counts, "progress": progress},
                    ),
                    bgj("summary", "Waiting", after={"name": "news"}),
                    bgj("single", "Succeeded"),
                ],
                NOW,
            )  # fmt: skip
            data = await (await client.get("/api/batches")).json()
            (news,) = data["items"]
            assert news["name"] == "news"
            assert news["batch"] == {
                "total": 4, "succeeded": 1, "failed": 1, "running": 1, "pending": 1,
            }  # fmt: skip
            assert news["progress"]["percent"] == 50.0
            assert news["continuations"] == 1

    run(scenario)


def test_the_24_hours_come_from_a_configured_prometheus_and_fall_back_to_the_watch(
    tmp_path: Path,
) -> None:
    """``--prometheus URL``: the 24 h graph is a range query of the operator's
    ``backgroundjobs_jobs_finished_total`` (one point a minute) answered in the Prometheus HTTP
    API's JSON shape; when Prometheus fails the graph comes from the watch and says why. The
    fake below is an aiohttp server speaking that shape (no Prometheus binary here)."""
    asked: list[dict[str, str]] = []
    failing = False

    async def query_range(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        if failing:
            return web.json_response({"status": "error", "errorType": "bad_data",
                                      "error": "query timed out"}, status=422)  # fmt: skip
        end = int(request.query["end"])
        return web.json_response(
            {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [
                        {"metric": {"outcome": "succeeded"}, "values": [[end, "7"]]},
                        {"metric": {"outcome": "failed"}, "values": [[end - 60, "2.0"]]},
                    ],
                },
            }
        )

    async def scenario() -> None:
        nonlocal failing
        fake = web.Application()
        fake.router.add_get("/prom/api/v1/query_range", query_range)
        prometheus = TestServer(fake, host="127.0.0.1")
        await prometheus.start_server()
        try:
            settings = Settings(
                namespace=None, auth="none", read_only=True, address="0.0.0.0",
                prometheus_url=str(prometheus.make_url("/prom/")),
            )  # fmt: skip
            async with served(settings, tmp_path) as (client, dashboard):
                # The server's graph ends at the real now (not the tests' NOW).
                finished = datetime.fromtimestamp(time.time() - 90, UTC).isoformat()
                job = bgj("ok", "Succeeded", status={"finishedAt": finished})
                dashboard.store.replace(None, [job], time.time())
                day = await (await client.get("/api/series")).json()
                assert day["source"] == "prometheus" and day["error"] is None
                assert len(day["points"]) == 24 * 60
                assert day["points"][-1][1:] == [7, 0]
                assert day["points"][-2][1:] == [0, 2]
                (query,) = asked
                assert "backgroundjobs_jobs_finished_total" in query["query"]
                assert query["step"] == "60"
                assert int(query["end"]) - int(query["start"]) == (24 * 60 - 1) * 60
                # Answered again from the dashboard's copy for a minute: no second query.
                await client.get("/api/series")
                assert len(asked) == 1

                failing = True
                dashboard._prometheus = None  # the minute has passed
                day = await (await client.get("/api/series")).json()
                assert day["source"] == "watch"
                assert "query timed out" in day["error"]
                assert sum(p[1] for p in day["points"]) == 1  # the job the watch saw finish
        finally:
            await prometheus.close()

    run(scenario)
