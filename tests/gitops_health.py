"""The Argo CD health check of docs/gitops.md, run as Argo CD runs it: the Lua chunk in Lua 5.1
(Argo CD's gopher-lua) with the object as the global ``obj``, returning ``{status, message}``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lupa import lua51

GITOPS_DOC = Path(__file__).resolve().parents[1] / "docs" / "gitops.md"
ARGO_HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def health_check_lua() -> str:
    """The one ```lua block of docs/gitops.md: what users paste into argocd-cm."""
    blocks = re.findall(r"^```lua\n(.*?)^```$", GITOPS_DOC.read_text(), re.S | re.M)
    assert len(blocks) == 1, f"{len(blocks)} lua blocks in {GITOPS_DOC}"
    return str(blocks[0])


def argo_health(obj: dict[str, Any], script: str | None = None) -> tuple[str, str]:
    """(status, message) of ``obj`` according to the health check."""
    runtime = lua51.LuaRuntime()
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(script or health_check_lua())
    status, message = result["status"], result["message"]
    assert status in ARGO_HEALTH_STATUSES, status
    return str(status), str(message or "")
