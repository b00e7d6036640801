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


def _rotated_three_times(path: Path) -> list[Path]:
    """Requests a-d logged with a rotation between each two: the rotations, oldest first."""
    rotated = []
    for hour, name in enumerate("abc", start=1):
        _write(path, name)
        rotated.append(_rotate(path, f"2026-12-01T0{hour}-00-00.000"))
    _write(path, "d")
    return rotated


def test_since_reads_every_kept_rotation_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, "before")
    log = AuditLog(path)
    mark = log.mark()
    first = _rotated_three_times(path)[0]
    assert log.covers(mark)
    assert _names(log, mark) == ["a", "b", "c", "d"]
    assert [e["objectRef"]["name"] for e in log.kept()] == ["before", "a", "b", "c", "d"]
    # a mark taken after the first rotation skips it
    later = AuditLog(path)
    assert first.exists()
    assert _names(later, later.mark()) == []


def test_a_rotation_lost_is_reported_not_miscounted(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    path.touch()
    mark = log.mark()
    marked = _rotated_three_times(path)[0]
    marked.unlink()  # past --audit-log-maxbackup
    assert not log.covers(mark)
    assert _names(log, mark) == ["b", "c", "d"]  # what is left: the caller must check covers()
