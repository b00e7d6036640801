"""``--dry-run=client``: the create commands build their BackgroundJob exactly as they would
(the same argument and schema checks) and print it instead of sending it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backgroundjobs.client import AsyncClient


class ManifestCollector(AsyncClient):
    """An ``AsyncClient`` whose creates and applies keep the object instead of sending it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manifests: list[dict[str, Any]] = []

    async def _create(
        self, manifest: dict[str, Any], ns: str, regenerate: Callable[[], str] | None
    ) -> str:
        self.manifests.append(manifest)
        name: str = manifest["metadata"]["name"]
        return name

    async def _apply(self, manifest: dict[str, Any], ns: str) -> None:
        self.manifests.append(manifest)
