"""Turning API server answers into the package's typed errors."""

from __future__ import annotations

import asyncio

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs._connection import status_message
from backgroundjobs.errors import BackgroundJobsError, Conflict, InvalidSpec, JobNotFound

# Worth retrying: throttling, the API server busy or restarting, a dropped connection.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def from_api_exception(
    exc: ApiException, *, name: str | None = None, namespace: str | None = None
) -> BackgroundJobsError:
    """The typed error for an API failure about BackgroundJob ``name`` (when there is one).

    404 -> ``JobNotFound``; 409 -> ``Conflict``; 400 and 422 -> ``InvalidSpec`` carrying the
    API server's message (which names the field and the CEL rule); others a
    ``BackgroundJobsError`` with the status.
    """
    message = status_message(exc)
    if exc.status == 404:
        if name is not None:
            return JobNotFound(f'backgroundjob "{name}" not found in namespace "{namespace}"')
        return BackgroundJobsError(
            f"{message} (is the BackgroundJob CRD installed, does namespace {namespace!r} exist?)"
        )
    if exc.status == 409:
        return Conflict(message)
    if exc.status in (400, 422):
        return InvalidSpec(message)
    if exc.status in (401, 403):
        return BackgroundJobsError(f"not allowed ({exc.status} {exc.reason}): {message}")
    return BackgroundJobsError(f"API server error {exc.status} {exc.reason}: {message}")


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry of the same request may cure."""
    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUSES
    return isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError)
