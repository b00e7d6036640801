"""The dashboard's web server (aiohttp): static pages, a JSON API read from the cache, live
updates as server-sent events, and the actions.

Who may do what:

- ``auth="token"`` (``bgjobs dashboard``): on 127.0.0.1 with the user's kubeconfig. The URL
  printed (and opened) carries a random token that becomes a same-site cookie; every other
  request without it is refused, and the Host header must be a loopback name (no DNS
  rebinding). Actions are the user's own requests, so their RBAC decides.
- ``auth="proxy"``: behind an authenticating proxy in the same pod, listening on 127.0.0.1
  only; the proxy names the user in a header. Actions are done as that user (impersonation)
  when ``impersonate``, else as the dashboard's ServiceAccount.
- ``auth="none"``: read-only, for an in-cluster dashboard with nothing in front of it.

Actions also need the ``X-Requested-With`` header the page sends (a cross-site form cannot
send it) and a same-origin ``Origin`` when the browser sends one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from backgroundjobs._version import __version__
from backgroundjobs.api.constants import FINISHED_PHASES, PHASES, QUEUE_KIND, QUEUE_PLURAL, JobType
from backgroundjobs.client import AsyncClient
from backgroundjobs.dashboard._cron_words import describe
from backgroundjobs.dashboard._details import attempts, log_record, recorded_attempts, timeline
from backgroundjobs.dashboard._flags import AUTH_MODES
from backgroundjobs.dashboard._kube import ACTIONS, Identity, Kube, KubeError
from backgroundjobs.dashboard._prometheus import PrometheusError, fetch_day
from backgroundjobs.dashboard._queues import QueueStore
from backgroundjobs.dashboard._rows import JobRow, row_from_object
from backgroundjobs.dashboard._series import WINDOW_MINUTES, Point
from backgroundjobs.dashboard._store import JobStore, Query, SelectorError
from backgroundjobs.dashboard._watcher import Watcher
from backgroundjobs.errors import BackgroundJobsError, JobNotFound

log = logging.getLogger("backgroundjobs.dashboard")

STATIC = Path(__file__).parent / "static"
COOKIE = "bgjobs_dashboard"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "bgjobs-dashboard"
LIVE_MINUTES = 60
PUSH_COALESCE_SECONDS = 0.2  # changes within this are pushed as one message
HEARTBEAT_SECONDS = 15
PROMETHEUS_CACHE_SECONDS = 60
DETAIL_RUNS = 3  # runs whose Job and pod Events the job page reads
PAGE_ROUTES = (
    "/",
    "/jobs",
    "/jobs/{namespace}/{name}",
    "/recurring",
    "/queues",
    "/queues/{namespace}/{name}",
    "/batches",
)
QUEUED_SHOWN = 200  # waiting jobs a queue's page lists (the jobs page pages through all)


@dataclass(frozen=True)
class Settings:
    """How the dashboard runs; ``check()`` refuses unsafe combinations."""

    namespace: str | None  # None: every namespace
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    address: str = "127.0.0.1"
    port: int = 0
    auth: str = "token"
    read_only: bool = False
    impersonate: bool = False
    user_header: str = "X-Forwarded-User"
    groups_header: str = "X-Forwarded-Groups"
    prometheus_url: str | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    def check(self) -> None:
        """``ValueError`` naming the flag when the settings would open a hole."""
        if self.auth not in AUTH_MODES:
            raise ValueError(f"--auth must be one of {', '.join(AUTH_MODES)}")
        if self.auth == "none" and not self.read_only:
            raise ValueError(
                "--auth none serves anyone who reaches the port: it needs --read-only"
                " (put an authenticating proxy in front for actions: --auth proxy)"
            )
        if self.auth in ("token", "proxy") and not is_loopback(self.address):
            raise ValueError(
                f"--auth {self.auth} listens on a loopback address only (got {self.address}):"
                " with a proxy, the proxy in the same pod is the only way in"
            )
        if self.impersonate and self.auth != "proxy":
            raise ValueError("--impersonate needs --auth proxy (the proxy names the user)")


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def available_actions(row: JobRow) -> list[str]:
    """The actions that make sense for the job in its current state (API.md §1)."""
    out = []
    recurring = row.type == JobType.RECURRING
    finished = row.phase in FINISHED_PHASES
    if recurring or (row.type == "Delayed" and row.phase == "Scheduled"):
        out.append("trigger")
    if finished and not recurring:
        out.append("requeue")
        if row.batch and row.batch["succeeded"] < row.batch["total"]:
            out.append("requeue-failed")  # a batch with items that did not succeed
    if recurring or not finished:
        out.append("cancel")
    if row.suspend:
        out.append("resume")
    elif recurring or row.phase in ("Pending", "Scheduled", "Waiting", "Queued"):
        out.append("suspend")
    out.append("delete")
    return out


def _points(points: list[Point]) -> list[list[int]]:
    return [[p.minute, p.succeeded, p.failed] for p in points]


def _plain_object(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without its managedFields (noise on a page)."""
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": metadata}


class Dashboard:
    """The cache, its watch, and the web application over them."""

    def __init__(self, settings: Settings, kube: Kube, client: AsyncClient) -> None:
        settings.check()
        self.settings = settings
        self.kube = kube
        self.client = client
        self.store = JobStore()
        self.watcher = Watcher(kube, self.store, settings.namespace)
        self.queues = QueueStore()
        self.queue_watcher = Watcher(
            kube, self.queues, settings.namespace, plural=QUEUE_PLURAL, kind=QUEUE_KIND
        )
        self._changed = asyncio.Event()
        self.store.listen(self._on_change)
        self.queues.listen(self._on_change)
        self._watch_tasks: list[asyncio.Task[None]] = []
        self._prometheus: tuple[float, list[Point]] | None = None
        self._http: aiohttp.ClientSession | None = None

    def _on_change(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def start(self) -> None:
        """Start the watches: the BackgroundJobs, and the BackgroundJobQueues."""
        self._watch_tasks = [
            asyncio.create_task(self.watcher.run(), name="dashboard-watch"),
            asyncio.create_task(self.queue_watcher.run(), name="dashboard-watch-queues"),
        ]

    async def stop(self) -> None:
        """Stop the watches and close the connections."""
        for task in self._watch_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()
        await self.client.close()
        await self.kube.close()

    # ------------------------------------------------------------ the application

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._errors, self._guard])
        for route in PAGE_ROUTES:
            app.router.add_get(route, self._page)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/api/info", self._info)
        app.router.add_get("/api/overview", self._overview)
        app.router.add_get("/api/series", self._series)
        app.router.add_get("/api/jobs", self._jobs)
        app.router.add_get("/api/jobs/{namespace}/{name}", self._job)
        app.router.add_get("/api/jobs/{namespace}/{name}/logs", self._logs)
        app.router.add_post("/api/jobs/{namespace}/{name}/{action}", self._act)
        app.router.add_get("/api/recurring", self._recurring)
        app.router.add_get("/api/queues", self._queues)
        app.router.add_get("/api/queues/{namespace}/{name}", self._queue)
        app.router.add_get("/api/batches", self._batches)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_static("/static", STATIC, append_version=False)
        return app

    def health_app(self) -> web.Application:
        """``/healthz`` (200 once the cache is synced) and ``/livez``, for probes on an
        address of their own."""
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/livez", self._alive)
        return app

    # ------------------------------------------------------------ middlewares

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except KubeError as exc:
            return _error(exc.status, exc.reason or "KubernetesError", exc.message)
        except JobNotFound as exc:
            return _error(404, "NotFound", str(exc))
        except (SelectorError, ValueError) as exc:
            return _error(400, "BadRequest", str(exc))
        except BackgroundJobsError as exc:
            message = str(exc)
            status = 403 if message.startswith("not allowed (403") else 502
            return _error(status, "Forbidden" if status == 403 else "KubernetesError", message)

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/healthz" or request.path.startswith("/static/"):
            return await handler(request)
        mode = self.settings.auth
        if mode == "token":
            if not self._loopback_host(request):
                return _error(403, "Forbidden", "this dashboard answers to 127.0.0.1 only")
            given = request.query.get("token")
            if given is not None and secrets.compare_digest(given, self.settings.token):
                target = request.rel_url.with_query(
                    {k: v for k, v in request.query.items() if k != "token"}
                )
                response = web.HTTPFound(str(target))
                response.set_cookie(
                    COOKIE, self.settings.token, httponly=True, samesite="Strict", path="/"
                )
                raise response
            cookie = request.cookies.get(COOKIE, "")
            if not secrets.compare_digest(cookie, self.settings.token):
                return _error(
                    401,
                    "Unauthorized",
                    "open the dashboard with the URL that `bgjobs dashboard` printed (it carries"
                    " the session's token)",
                )
        elif mode == "proxy" and not request.headers.get(self.settings.user_header):
            return _error(
                401,
                "Unauthorized",
                f"no {self.settings.user_header} header: the dashboard expects an authenticating"
                " proxy in front of it",
            )
        if request.method == "POST":
            if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
                return _error(403, "Forbidden", f"actions need the {CSRF_HEADER} header")
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                forwarded = request.headers.get("X-Forwarded-Host")
                if forwarded is None or origin.split("://", 1)[-1] != forwarded:
                    return _error(403, "Forbidden", "cross-origin request refused")
        return await handler(request)

    def _loopback_host(self, request: web.Request) -> bool:
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        return is_loopback(host.strip("[]"))

    def _identity(self, request: web.Request) -> Identity | None:
        if not self.settings.impersonate:
            return None
        user = request.headers.get(self.settings.user_header, "")
        groups = request.headers.get(self.settings.groups_header, "")
        return Identity(user, tuple(g.strip() for g in groups.split(",") if g.strip()))

    def _scope(self, request: web.Request) -> str | None:
        """The namespace a request is about: the dashboard's, or ``?namespace=`` with -A."""
        asked = request.query.get("namespace") or None
        if self.settings.namespace is not None:
            if asked not in (None, self.settings.namespace):
                raise ValueError(f"this dashboard shows namespace {self.settings.namespace} only")
            return self.settings.namespace
        return asked

    def _check_namespace(self, namespace: str) -> None:
        if self.settings.namespace not in (None, namespace):
            raise ValueError(f"this dashboard shows namespace {self.settings.namespace} only")

    # ------------------------------------------------------------ pages and state

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _health(self, request: web.Request) -> web.Response:
        state = self.watcher.state
        status = 200 if state.synced else 503
        return web.json_response({"synced": state.synced, "error": state.error}, status=status)

    async def _alive(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    def _watch_json(self) -> dict[str, Any]:
        state = self.watcher.state
        return {
            "synced": state.synced,
            "error": state.error,
            "events": state.events,
            "requests": dict(self.kube.requests.counts),
        }

    async def _info(self, request: web.Request) -> web.Response:
        identity = None
        if self.settings.auth == "proxy":
            identity = request.headers.get(self.settings.user_header)
        return web.json_response(
            {
                "version": __version__,
                "namespace": self.settings.namespace,
                "namespaces": self.store.namespaces(),
                "readOnly": self.settings.read_only,
                "auth": self.settings.auth,
                "impersonate": self.settings.impersonate,
                "user": identity,
                "prometheus": bool(self.settings.prometheus_url),
                "phases": PHASES,
                "types": [job_type.value for job_type in JobType],
                "watch": self._watch_json(),
            }
        )

    async def _overview(self, request: web.Request) -> web.Response:
        namespace = self._scope(request)
        return web.json_response(
            {
                "counts": self.store.counts(namespace),
                "live": _points(self.store.series(namespace, time.time(), LIVE_MINUTES)),
                "version": self.store.version,
                "watch": self._watch_json(),
            }
        )

    async def _series(self, request: web.Request) -> web.Response:
        """The last 24 h per minute: from Prometheus when configured (all the operator's
        namespaces), else from the watch (jobs still present, and runs seen finishing)."""
        namespace = self._scope(request)
        now = time.time()
        if self.settings.prometheus_url:
            try:
                points = await self._prometheus_day(now)
                return web.json_response(
                    {"source": "prometheus", "points": _points(points), "error": None}
                )
            except PrometheusError as exc:
                error = str(exc)
        else:
            error = None
        points = self.store.series(namespace, now, WINDOW_MINUTES)
        return web.json_response({"source": "watch", "points": _points(points), "error": error})

    async def _prometheus_day(self, now: float) -> list[Point]:
        if self._prometheus is not None and now - self._prometheus[0] < PROMETHEUS_CACHE_SECONDS:
            return self._prometheus[1]
        if self._http is None:
            self._http = aiohttp.ClientSession()
        assert self.settings.prometheus_url is not None
        points = await fetch_day(self._http, self.settings.prometheus_url, now)
        self._prometheus = (now, points)
        return points

    # ------------------------------------------------------------ lists

    async def _jobs(self, request: web.Request) -> web.Response:
        namespace = self._scope(request)
        params = request.query
        phase = params.get("phase") or None
        if phase is not None and phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}")
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", "50"))
        except ValueError:
            raise ValueError("offset and limit are whole numbers") from None
        query = Query(
            namespace=namespace,
            phase=phase,
            type=params.get("type") or None,
            handler=params.get("handler") or None,
            queue=params.get("queue") or None,
            labels=params.get("labels", ""),
            text=params.get("q", ""),
            sort=params.get("sort") or "-created",
            offset=offset,
            limit=limit,
        )
        page = self.store.query(query)
        counts = self.store.counts(namespace)
        return web.json_response(
            {
                "total": page.total,
                "offset": page.offset,
                "limit": query.limit,
                "items": page.items,
                "version": page.version,
                "phases": counts["phases"],
                "all": counts["total"],
                "handlers": sorted(counts["handlers"]),
                "queues": sorted(counts["queues"]),
                "namespaces": self.store.namespaces(),
            }
        )

    async def _recurring(self, request: web.Request) -> web.Response:
        namespace = self._scope(request)
        items = []
        for row in self.store.recurring(namespace):
            item = row.to_json()
            item["words"] = describe(row.schedule or "")
            item["actions"] = available_actions(row)
            items.append(item)
        return web.json_response({"items": items, "version": self.store.version})

    def _queue_watch_json(self) -> dict[str, Any]:
        state = self.queue_watcher.state
        return {"synced": state.synced, "error": state.error, "missing": state.missing}

    def _queue_items(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every queue of the scope: the BackgroundJobQueue objects, and the queue names jobs
        use without one (the operator's defaults apply to those), each with its jobs by
        phase."""
        phases = self.store.queue_phases(namespace)
        keys = set(phases) | {k for k in self.queues.rows if namespace is None or k[0] == namespace}
        items = []
        for ns, name in sorted(keys):
            row = self.queues.get(ns, name)
            jobs = phases.get((ns, name), {})
            items.append(
                {
                    "namespace": ns,
                    "name": name,
                    "object": row is not None,
                    **(row.to_json() if row is not None else {}),
                    "jobs": {p: jobs[p] for p in PHASES if jobs.get(p)},
                    "queued": jobs.get("Queued", 0),
                }
            )
        return items

    async def _queues(self, request: web.Request) -> web.Response:
        namespace = self._scope(request)
        return web.json_response(
            {
                "items": self._queue_items(namespace),
                "watch": self._queue_watch_json(),
                "version": self.store.version,
            }
        )

    async def _queue(self, request: web.Request) -> web.Response:
        """One queue: its object (when there is one), its jobs by phase, and its waiting
        jobs in the order it admits them (the first ``QUEUED_SHOWN``)."""
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        self._check_namespace(namespace)
        item = next(
            (q for q in self._queue_items(namespace) if q["name"] == name),
            {"namespace": namespace, "name": name, "object": False, "jobs": {}, "queued": 0},
        )
        waiting = self.store.queued(namespace, name)
        return web.json_response(
            {
                "queue": item,
                "waiting": [
                    r.to_json(position) for position, r in enumerate(waiting[:QUEUED_SHOWN], 1)
                ],
                "waitingTotal": len(waiting),
                "watch": self._queue_watch_json(),
            }
        )

    async def _batches(self, request: web.Request) -> web.Response:
        namespace = self._scope(request)
        items = []
        for row in self.store.batches(namespace):
            item = row.to_json()
            item["continuations"] = len(self.store.children(row.namespace, row.name))
            items.append(item)
        return web.json_response({"items": items, "version": self.store.version})

    # ------------------------------------------------------------ one job

    async def _job(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        self._check_namespace(namespace)
        job = await self.client.get(name, namespace=namespace)
        obj = job.raw
        runs, pods = await asyncio.gather(
            self.client.runs(name, namespace=namespace),
            self.client.pods(name, namespace=namespace),
        )
        recent = runs[-DETAIL_RUNS:]
        recent_names = {r["metadata"]["name"] for r in recent}
        recent_pods = [
            p
            for p in pods
            if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name")
            in recent_names
        ]
        lookups = [self.client.events(name, namespace=namespace)]
        lookups += [
            self.client.events(r["metadata"]["name"], kind="Job", namespace=namespace)
            for r in recent
        ]
        lookups += [
            self.client.events(p["metadata"]["name"], kind="Pod", namespace=namespace)
            for p in recent_pods
        ]
        events = [e for found in await asyncio.gather(*lookups) for e in found]
        row = row_from_object(obj)
        spec = obj.get("spec") or {}
        return web.json_response(
            {
                "job": _plain_object(obj),
                "row": row.to_json(self.store.queue_positions([row]).get(row.key)),
                "schedule": {
                    "cron": spec.get("schedule"),
                    "words": describe(spec["schedule"]),
                    "timeZone": spec.get("timeZone") or "UTC",
                }
                if spec.get("schedule")
                else None,
                "timeline": timeline(obj, events),
                "attempts": recorded_attempts(obj.get("status") or {}),
                "runs": attempts(runs, pods),
                "parents": self.store.ancestors(namespace, name),
                "children": [c.to_json() for c in self.store.children(namespace, name)],
                "actions": available_actions(row),
                "readOnly": self.settings.read_only,
            },
            dumps=_dumps,
        )

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        """The handler's log of the current run (``?run=N``: of run N), followed until the
        run ends, as server-sent events ``line`` (and ``end`` or ``failure``)."""
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        self._check_namespace(namespace)
        run_text = request.query.get("run")
        run = int(run_text) if run_text and run_text.isdigit() else None
        response = await _sse(request)
        try:
            async for line in self.client.logs(name, run=run, follow=True, namespace=namespace):
                record = log_record(line.text, (namespace, name))
                await _send(response, "line", {"pod": line.pod, **record})
            await _send(response, "end", {})
        except BackgroundJobsError as exc:
            with contextlib.suppress(ConnectionResetError):
                await _send(response, "failure", {"message": str(exc)})
        except ConnectionResetError:
            pass  # the page went away
        return response

    async def _act(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        action = request.match_info["action"]
        self._check_namespace(namespace)
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        if self.settings.read_only:
            return _error(403, "ReadOnly", "this dashboard is read-only: actions are turned off")
        identity = self._identity(request)
        try:
            await self.kube.act(action, namespace, name, identity)
        except KubeError as exc:
            if exc.status == 403:
                who = f"user {identity.user!r}" if identity else "your Kubernetes credentials"
                return _error(
                    403,
                    "Forbidden",
                    f"RBAC: {who} may not {action} {name}: {exc.message}",
                    rbac=True,
                )
            raise
        log.info("%s %s/%s%s", action, namespace, name, f" as {identity.user}" if identity else "")
        return web.json_response({"ok": True, "action": action, "name": name})

    # ------------------------------------------------------------ live updates

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``change`` after each batch of changes (counts, the live
        graph's points and which jobs changed), ``ping`` when nothing happens."""
        namespace = self._scope(request)
        response = await _sse(request)
        with contextlib.suppress(ConnectionResetError):  # the page went away
            await self._push(response, namespace)
        return response

    async def _push(self, response: web.StreamResponse, namespace: str | None) -> None:
        version = self.store.version
        queues_version = self.queues.version
        await _send(response, "hello", {"version": version, "watch": self._watch_json()})
        while True:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), HEARTBEAT_SECONDS)
            if self.store.version == version and self.queues.version == queues_version:
                await _send(response, "ping", {"watch": self._watch_json()})
                continue
            await asyncio.sleep(PUSH_COALESCE_SECONDS)
            keys = self.store.changes_since(version)
            version = self.store.version
            queues_changed = self.queues.version != queues_version
            queues_version = self.queues.version
            changed_names = None
            if keys is not None:
                changed_names = [f"{ns}/{n}" for ns, n in keys if namespace in (None, ns)]
                if not changed_names and not queues_changed:
                    continue
            await _send(
                response,
                "change",
                {
                    "version": version,
                    "changed": changed_names,
                    "queues": queues_changed,
                    "counts": self.store.counts(namespace),
                    "live": _points(self.store.series(namespace, time.time(), LIVE_MINUTES)),
                    "watch": self._watch_json(),
                },
            )


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _error(status: int, error: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status)


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies: do not buffer the stream
        }
    )
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, event: str, data: Any) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode())
