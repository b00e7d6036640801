"""The optional parts of the distribution and the error that names the extra to install."""

from __future__ import annotations

import importlib

# What Client, AsyncClient, the CLI and the dashboard import beyond the core.
CLIENT_MODULES = ("kubernetes_asyncio", "aiohttp", "yaml")


class MissingExtra(ImportError):
    """A part of backgroundjobs was used without the extra that installs what it needs."""


def require_client_extra(what: str) -> None:
    """Raise ``MissingExtra`` naming the [client] extra when one of its modules is missing."""
    missing = []
    for module in CLIENT_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtra(
            f"{what} needs the [client] extra, which is not installed"
            f" (missing: {', '.join(missing)}): pip install 'backgroundjobs[client]'"
        )
