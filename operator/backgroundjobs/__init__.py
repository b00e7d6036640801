"""backgroundjobs: background jobs as Kubernetes resources.

The public API: the client (``Client``, ``AsyncClient``), the handler registry
(``handler``), cron helpers (``Cron``), the runtime helpers (``progress``, ``cancelled``)
and the typed errors. Everything else is internal.
"""

from typing import TYPE_CHECKING, Any

from backgroundjobs._credentials import CredentialWarning, SecretKey
from backgroundjobs._registry import handler, registered_handlers
from backgroundjobs._version import __version__
from backgroundjobs.errors import (
    BackgroundJobsError,
    Conflict,
    InvalidArguments,
    InvalidSpec,
    JobNotFound,
    PermanentError,
)

if TYPE_CHECKING:
    from backgroundjobs.client import AsyncClient, Client, JobInfo, RetryPolicy
    from backgroundjobs.cron import Cron
    from backgroundjobs.runtime import cancelled, parent_result, progress

# Imported on first use, so that importing one part loads no other: the client loads
# kubernetes_asyncio (about a second), which the job runtime, importing this package in every
# pod, does not need; the operator and the client do not need the runtime.
_LAZY = {
    "AsyncClient": "backgroundjobs.client",
    "Client": "backgroundjobs.client",
    "JobInfo": "backgroundjobs.client",
    "RetryPolicy": "backgroundjobs.client",
    "Cron": "backgroundjobs.cron",
    "cancelled": "backgroundjobs.runtime",
    "parent_result": "backgroundjobs.runtime",
    "progress": "backgroundjobs.runtime",
}


def __getattr__(name: str) -> Any:
    """The names of ``_LAZY``, imported from their module when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'backgroundjobs' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AsyncClient",
    "BackgroundJobsError",
    "Client",
    "Conflict",
    "CredentialWarning",
    "Cron",
    "InvalidArguments",
    "InvalidSpec",
    "JobInfo",
    "JobNotFound",
    "PermanentError",
    "RetryPolicy",
    "SecretKey",
    "__version__",
    "cancelled",
    "handler",
    "parent_result",
    "progress",
    "registered_handlers",
]
