"""Typed errors shared by the client, the runtime and the operator."""

from __future__ import annotations


class BackgroundJobsError(Exception):
    """Base class of every error this package raises on purpose."""


class JobNotFound(BackgroundJobsError):
    """The named BackgroundJob does not exist in the namespace."""


class InvalidArguments(BackgroundJobsError):
    """The arguments do not fit the handler's signature (checked before anything is created)."""


class InvalidSpec(BackgroundJobsError):
    """The API server refused the BackgroundJob; the message is the API server's."""


class Conflict(BackgroundJobsError):
    """The object exists already, or was changed by someone else meanwhile."""


class PermanentError(BackgroundJobsError):
    """Raised by a handler for a failure that retrying cannot fix (runtime exit code 2)."""
