"""``cleanup.temp_files``: delete old files under a directory (scenario 3, daily at 02:00)."""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from pathlib import Path

from backgroundjobs import PermanentError, handler
from backgroundjobs.runtime import cancelled

log = logging.getLogger(__name__)


@handler("cleanup.temp_files")
def temp_files(
    directory: str,
    older_than_hours: float = 24,
    pattern: str = "*",
    dry_run: bool = False,
) -> int:
    """Delete files under ``directory`` (recursively) last modified more than
    ``older_than_hours`` ago and whose name matches ``pattern``; return how many.

    Symbolic links are removed themselves, never followed; directories are kept. A file that
    vanishes meanwhile is skipped; one that cannot be deleted is logged and skipped.
    """
    root = Path(directory)
    if not root.is_dir():
        raise PermanentError(f"{directory} is not a directory")
    if root.resolve() == Path("/"):
        raise PermanentError("refusing to clean up the root directory")
    if older_than_hours < 0:
        raise PermanentError(f"older_than_hours must be >= 0, got {older_than_hours}")
    cutoff = time.time() - older_than_hours * 3600
    deleted = failed = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        if cancelled():
            log.warning("cancelled: %d files deleted so far", deleted)
            break
        # A symlink to a directory is listed with the directories, but is only a link.
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in [*filenames, *links]:
            if not fnmatch.fnmatch(name, pattern):
                continue
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_mtime >= cutoff:
                    continue
                if not dry_run:
                    os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                failed += 1
                log.warning("cannot delete %s: %s", path, exc)
                continue
            deleted += 1
            log.debug("deleted %s", path)
    log.info(
        "%s %d files older than %sh under %s (%d could not be deleted)",
        "would delete" if dry_run else "deleted",
        deleted,
        older_than_hours,
        directory,
        failed,
        extra={"event": "cleanup", "deleted": deleted, "failed": failed},
    )
    return deleted
