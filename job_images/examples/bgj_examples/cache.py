"""``cache.cleanup_expired``: drop expired entries of a file cache (scenario 3, hourly).

The cache is a directory of JSON files, one per key: ``{"key", "expiresAt", "value"}`` with
``expiresAt`` in Unix seconds. ``put`` and ``get`` are what an application uses to fill and
read it; the job removes what has expired, so the directory does not grow without bound.
Settings: ``BGJ_CACHE_DIR``, unless the job names a ``directory``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from backgroundjobs import handler
from backgroundjobs.runtime import cancelled
from bgj_examples._config import env_dir

log = logging.getLogger(__name__)


@handler("cache.cleanup_expired")
def cleanup_expired(directory: str | None = None) -> int:
    """Remove the expired (and the unreadable) entries of the cache; return how many."""
    root = env_dir("BGJ_CACHE_DIR", directory, create=False)
    now = time.time()
    expired = corrupt = kept = 0
    for path in sorted(root.glob("*.json")):
        if cancelled():
            break
        try:
            entry = json.loads(path.read_bytes())
            expires_at = float(entry["expiresAt"])
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("removing unreadable cache entry %s: %s", path.name, exc)
            corrupt += _remove(path)
            continue
        if expires_at <= now:
            expired += _remove(path)
        else:
            kept += 1
    log.info(
        "removed %d expired and %d unreadable cache entries, kept %d",
        expired,
        corrupt,
        kept,
        extra={"event": "cache_cleanup", "expired": expired, "corrupt": corrupt, "kept": kept},
    )
    return expired + corrupt


def put(directory: str | Path, key: str, value: Any, ttl_seconds: float) -> Path:
    """Store ``value`` under ``key`` for ``ttl_seconds``."""
    path = _entry_path(Path(directory), key)
    data = json.dumps({"key": key, "expiresAt": time.time() + ttl_seconds, "value": value})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def get(directory: str | Path, key: str) -> Any:
    """The value stored under ``key``, or None when it is absent or expired."""
    try:
        entry = json.loads(_entry_path(Path(directory), key).read_bytes())
    except (OSError, ValueError):
        return None
    if float(entry.get("expiresAt", 0)) <= time.time():
        return None
    return entry.get("value")


def _entry_path(directory: Path, key: str) -> Path:
    return directory / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
