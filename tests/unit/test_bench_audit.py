"""The bench's audit log reader across the API server's rotations (bench/audit.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.audit import AuditLog

pytestmark = pytest.mark.unit


def _write(path: Path, *names: str) -> None:
    with path.open("a") as f:
        for name in names:
            event = {
                "stage": "ResponseComplete",
                "verb": "create",
                "user": {"username": "op"},
                "objectRef": {"resource": "jobs", "namespace": "ns", "name": name},
            }
            f.write(json.dumps(event, separators=(",", ":")) + "\n")


def _rotate(log: Path, stamp: str) -> Path:
    """As lumberjack does: the current file renamed with its time, a new one begun."""
    rotated = log.with_name(f"audit-{stamp}.log")
    log.rename(rotated)
    log.touch()
    return rotated


def _names(log: AuditLog, mark: object) -> list[str]:
    return [e["objectRef"]["name"] for e in log.since(mark, "op", "ns")]  # type: ignore[arg-type]


def test_since_reads_every_kept_rotation_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, "before")
    log = AuditLog(path)
    mark = log.mark()
    _write(path, "a")
    first = _rotate(path, "2026-12-01T01-00-00.000")
    _write(path, "b")
    _rotate(path, "2026-12-01T02-00-00.000")
    _write(path, "c")
    _rotate(path, "2026-12-01T03-00-00.000")
    _write(path, "d")
    assert log.covers(mark)
    assert _names(log, mark) == ["a", "b", "c", "d"]
    # a mark taken after the first rotation skips it
    later = AuditLog(path)
    assert first.exists()
    assert _names(later, later.mark()) == []


def test_a_rotation_lost_is_reported_not_miscounted(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    path.touch()
    mark = log.mark()
    _write(path, "a")
    marked = _rotate(path, "2026-12-01T01-00-00.000")
    _write(path, "b")
    _rotate(path, "2026-12-01T02-00-00.000")
    _write(path, "c")
    marked.unlink()  # past --audit-log-maxbackup
    assert not log.covers(mark)
    assert _names(log, mark) == ["b", "c"]  # what is left: the caller must check covers()
