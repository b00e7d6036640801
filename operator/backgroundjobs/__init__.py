"""backgroundjobs: background jobs as Kubernetes resources.

The public API: the client (``Client``, ``AsyncClient``), the handler registry
(``handler``), cron helpers (``Cron``), the runtime helpers (``progress``, ``cancelled``)
and the typed errors. Everything else is internal.
"""

from typing import TYPE_CHECKING, Any

from backgroundjobs._registry import handler, registered_handlers
from backgroundjobs.errors import (
    BackgroundJobsError,
    Conflict,
    InvalidArguments,
    InvalidSpec,
    JobNotFound,
    PermanentError,
)
from backgroundjobs.runtime import cancelled, parent_result, progress

if TYPE_CHECKING:
    from backgroundjobs.client import AsyncClient, Client, JobInfo
    from backgroundjobs.cron import Cron

__version__ = "0.1.0"

# Imported on first use: the client loads kubernetes_asyncio (about a second), which the job
# runtime, importing this package in every pod, does not need.
_LAZY = {
    "AsyncClient": "backgroundjobs.client",
    "Client": "backgroundjobs.client",
    "JobInfo": "backgroundjobs.client",
    "Cron": "backgroundjobs.cron",
}


def __getattr__(name: str) -> Any:
    """``Client``, ``AsyncClient``, ``JobInfo`` and ``Cron``, imported when first used."""
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
    "Cron",
    "InvalidArguments",
    "InvalidSpec",
    "JobInfo",
    "JobNotFound",
    "PermanentError",
    "__version__",
    "cancelled",
    "handler",
    "parent_result",
    "progress",
    "registered_handlers",
]
