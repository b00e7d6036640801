"""What the API server's audit log says was done (hack/kwok/audit-policy.yaml: one Metadata
line per request): the counts the reliability tests assert on, by the API server's clock."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.audit import WRITE_VERBS, AuditLog, Mark


@dataclass(frozen=True)
class Request:
    """One completed request."""

    user: str
    verb: str
    resource: str  # "jobs", "backgroundjobs/status", ...
    namespace: str
    name: str
    code: int
    received: datetime  # requestReceivedTimestamp: when the API server got it

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Audit:
    """The audit log of one cluster from a mark on."""

    def __init__(self, path: Path) -> None:
        self.log = AuditLog(path)
        self.start: Mark = self.log.mark()

    def mark(self) -> None:
        self.start = self.log.mark()

    def requests(self, user: str | None = None, namespace: str | None = None) -> list[Request]:
        # a count of the tail only would pass or fail for the wrong reason
        assert self.log.covers(self.start), (
            f"{self.log.path} rotated past the start of this test and its oldest requests are"
            " gone: keep more rotations (BGJ_AUDIT_LOG_BACKUPS, hack/cluster.sh)"
        )
        out = []
        for event in self.log.since(self.start, user, namespace):
            ref = event.get("objectRef") or {}
            resource = str(ref.get("resource") or "")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            out.append(
                Request(
                    user=str((event.get("user") or {}).get("username") or ""),
                    verb=str(event.get("verb") or ""),
                    resource=resource,
                    namespace=str(ref.get("namespace") or ""),
                    name=str(ref.get("name") or ""),
                    code=int((event.get("responseStatus") or {}).get("code") or 0),
                    received=_time(event["requestReceivedTimestamp"]),
                )
            )
        return out


def created(requests: Iterable[Request], resource: str) -> dict[tuple[str, str], list[Request]]:
    """Successful creates (201) of ``resource`` by (namespace, name): more than one for a name
    means the object was deleted and made again."""
    out: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for r in requests:
        if r.verb == "create" and r.resource == resource and r.code == 201:
            out[(r.namespace, r.name)].append(r)
    return dict(out)


def writes_after(requests: Iterable[Request], user: str, moment: datetime) -> list[Request]:
    """Writes by ``user`` that the API server received after ``moment``."""
    return [r for r in requests if r.user == user and r.is_write and r.received > moment]
