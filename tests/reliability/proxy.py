"""A TLS-terminating HTTP proxy in front of the API server, for one client's network faults.

An operator whose kubeconfig points here talks to the real API server through it; the test
can then cut that one client off (``partition``: open connections reset, new requests never
answered) or black-hole only some of its requests (``blackhole(r"/leases/")``: those are held
unanswered, everything else goes through) while every other client of the cluster is
unaffected. A held request is never forwarded later: when the fault ends its connection is
closed, as a lost packet would leave it.

It serves with the cluster's own certificate (``pki/admin.crt``, signed by the cluster CA the
kubeconfig trusts, valid for 127.0.0.1) and forwards the client's own credentials (its bearer
token), so the API server and its audit log see the client as it is. A client certificate
ends at the proxy: clients behind it authenticate with tokens (tests/reliability/accounts.py).
Responses are streamed as they arrive (watches included) and passed on byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class ApiProxy:
    """Runs in a thread of its own; the control methods may be called from any thread."""

    def __init__(self, upstream: str, pki: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.pki = pki
        self.port = 0
        self.forwarded = 0  # requests passed on
        self.held = 0  # requests black-holed
        self._rules: list[re.Pattern[str]] = []
        self._all = False
        self._active: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="api-proxy", daemon=True)

    # ------------------------------------------------------------------ control

    def start(self) -> ApiProxy:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the API proxy did not start")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def blackhole(self, pattern: str) -> None:
        """Hold every request whose path matches ``pattern`` (a regular expression)."""
        self._call(lambda: self._rules.append(re.compile(pattern)))

    def partition(self) -> None:
        """Cut the client off: reset its open connections, hold every new request."""

        def cut() -> None:
            self._all = True
            for task in list(self._active):
                task.cancel()

        self._call(cut)

    def heal(self) -> None:
        """End every fault: held requests are closed unanswered, new ones go through."""

        def heal() -> None:
            self._all = False
            self._rules.clear()
            for task in list(self._active):
                if getattr(task, "held", False):
                    task.cancel()

        self._call(heal)

    @contextlib.contextmanager
    def partitioned(self) -> Iterator[None]:
        self.partition()
        try:
            yield
        finally:
            self.heal()

    def kubeconfig(self, source: Path, out: Path) -> Path:
        """``source`` (a kubeconfig) with its cluster's server pointed at this proxy."""
        config = yaml.safe_load(source.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        out.write_text(yaml.safe_dump(config))
        return out

    def _call(self, fn: Any) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    # ------------------------------------------------------------------ serving

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        serving.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        upstream_tls = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=upstream_tls, limit=0),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=serving)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        await self._stop.wait()
        for task in list(self._active):
            task.cancel()
        await runner.cleanup()
        await self._session.close()

    def _blocked(self, path: str) -> bool:
        return self._all or any(rule.search(path) for rule in self._rules)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        try:
            if self._blocked(request.path_qs):
                self.held += 1
                task.held = True  # type: ignore[attr-defined]
                await asyncio.Event().wait()  # until heal() or partition() cancels it
            self.forwarded += 1
            return await self._pass_on(request)
        except asyncio.CancelledError:
            # A reset, as a partition leaves it: the client sees its connection drop.
            if request.transport is not None:
                request.transport.abort()
            raise
        finally:
            self._active.discard(task)

    async def _pass_on(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read() if request.can_read_body else None
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                if self._blocked(request.path_qs):  # open streams fall silent too
                    task = asyncio.current_task()
                    task.held = True  # type: ignore[union-attr]
                    await asyncio.Event().wait()
                await response.write(chunk)
            await response.write_eof()
            return response
