"""The printer columns of ``kubectl get bgj``: one list, rendered into the CRD by ``crd`` and
into ``bgjobs get`` by the CLI, so the two tables cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrinterColumn:
    """One column; ``priority`` 1 is shown only with ``-o wide``."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0

    def crd(self) -> dict[str, Any]:
        """The CRD's ``additionalPrinterColumns`` entry."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.priority:
            out["priority"] = self.priority
        return out


# The NAME column comes first in both tables without being listed (kubectl adds it).
PRINTER_COLUMNS = (
    PrinterColumn("Type", ".status.type"),
    PrinterColumn("Handler", ".spec.handler"),
    PrinterColumn("Phase", ".status.phase"),
    PrinterColumn("Due", ".status.dueAt"),
    PrinterColumn("Progress", ".status.progress.summary"),
    PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    PrinterColumn("Queue", ".spec.queue", priority=1),
    PrinterColumn("Job", ".status.jobName", priority=1),
    PrinterColumn("Runs", ".status.runs", "integer", priority=1),
    PrinterColumn("Message", ".status.message", priority=1),
)
