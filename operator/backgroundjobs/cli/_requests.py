"""kubectl's per-request flags: ``--request-timeout`` and impersonation (``--as``,
``--as-group``), applied to every request an ``AsyncClient`` sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from multidict import CIMultiDict


def apply_request_flags(
    api_client: Any, timeout: float | None, user: str | None, groups: Sequence[str]
) -> None:
    """Make ``api_client`` (kubernetes_asyncio) send every request with ``timeout`` seconds
    (unless the call sets its own) and the impersonation headers (one ``Impersonate-Group``
    header per group, which a plain dict of default headers cannot hold)."""
    if not timeout and not user and not groups:
        return
    rest = api_client.rest_client
    send: Callable[..., Awaitable[Any]] = rest.request

    async def request(method: str, url: str, **kwargs: Any) -> Any:
        if timeout and not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = timeout
        if user or groups:
            headers: CIMultiDict[str] = CIMultiDict(kwargs.get("headers") or {})
            if user:
                headers["Impersonate-User"] = user
            for group in groups:
                headers.add("Impersonate-Group", group)
            kwargs["headers"] = headers
        return await send(method, url, **kwargs)

    rest.request = request
