"""Reading the handlers' settings from env variables (``BGJ_*``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from backgroundjobs import PermanentError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_secret(name: str) -> str:
    """``$NAME``, else the content of the file named by ``$NAME_FILE`` (a mounted Secret)."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise PermanentError(f"cannot read {name}_FILE={path}: {exc}") from exc
    return ""


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise PermanentError(f"{name}={raw!r} is not a boolean (true/false)")


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise PermanentError(f"{name}={raw!r} is not a number") from exc


def env_dir(name: str, override: str | None = None, *, create: bool = True) -> Path:
    """The directory from ``override`` or ``$NAME``; a permanent error if neither is set."""
    raw = override or os.environ.get(name, "")
    if not raw:
        raise PermanentError(f"no directory configured: set {name} (a mounted volume)")
    path = Path(raw)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermanentError(f"cannot create {name}={raw}: {exc}") from exc
    elif not path.is_dir():
        raise PermanentError(f"{raw} is not a directory")
    return path


def safe_filename(text: str, limit: int = 64) -> str:
    """``text`` reduced to characters that are safe in a file name."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "x"
    return cleaned[:limit]
