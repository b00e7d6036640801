"""backgroundjobs: background jobs as Kubernetes resources.

The public API: the client (``Client``, ``AsyncClient``), the handler registry
(``handler``), cron helpers (``Cron``), the runtime helpers (``progress``, ``cancelled``)
and the typed errors. Everything else is internal.
"""

from backgroundjobs._registry import handler, registered_handlers
from backgroundjobs.errors import (
    BackgroundJobsError,
    Conflict,
    InvalidArguments,
    InvalidSpec,
    JobNotFound,
    PermanentError,
)

__version__ = "0.1.0"

__all__ = [
    "BackgroundJobsError",
    "Conflict",
    "InvalidArguments",
    "InvalidSpec",
    "JobNotFound",
    "PermanentError",
    "__version__",
    "handler",
    "registered_handlers",
]
