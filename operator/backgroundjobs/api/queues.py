"""The ``BackgroundJobQueue`` resource: a queue's worker count, priority, rate limit and pause.

Pydantic models are the source of truth, as for ``BackgroundJob``: ``python -m
backgroundjobs.api.queues`` prints the CRD committed under ``crds/`` (a unit test fails on
drift). A job's ``spec.queue`` names the queue object of its namespace; a name with no object
uses the operator's defaults (``BACKGROUNDJOBS_QUEUES``).
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from pydantic import Field

from backgroundjobs.api import constants as c
from backgroundjobs.api.columns import PrinterColumn
from backgroundjobs.api.crd import _schema_of
from backgroundjobs.api.models import _cel, _cel_re, _Model

MAX_PRIORITY = 1_000_000


class RateLimit(_Model):
    """A token bucket: ``perSecond`` runs start per second on average, ``burst`` at once."""

    per_second: float = Field(
        ...,
        gt=0,
        le=10_000,
        description="Runs started per second on average (0.5 = one every two seconds).",
    )
    burst: int = Field(
        1, ge=1, le=10_000, description="Runs that may start at once after a quiet spell."
    )


class KueueHandOff(_Model):
    """Admission left to Kueue: the queue's Jobs are made suspended in this LocalQueue."""

    local_queue: str = Field(
        ...,
        min_length=1,
        max_length=63,
        description="The Kueue LocalQueue (in the job's namespace) whose ClusterQueue admits"
        " this queue's runs: the label kueue.x-k8s.io/queue-name of their Jobs.",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(c.DNS_LABEL_PATTERN)})",
                    "kueue.localQueue must be a LocalQueue name (a DNS label like team-a)",
                )
            ]
        },
    )


class BackgroundJobQueueSpec(_Model):
    """How a queue admits its jobs' runs."""

    max_concurrency: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Runs of this queue running at once (Hangfire's WorkerCount). Unset: no"
        " limit of its own (the operator-wide BACKGROUNDJOBS_MAX_RUNNING still applies).",
    )
    priority: int = Field(
        0,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description="Dequeue order between queues competing for the operator-wide cap: higher"
        " first. A queue's waiting head gains one level per BACKGROUNDJOBS_QUEUE_AGING waited"
        " (no starvation).",
    )
    priority_class_name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        description="PriorityClass of this queue's pods (the scheduler's priority).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(c.DNS_SUBDOMAIN_PATTERN)})",
                    "priorityClassName must be a DNS subdomain like high-priority",
                )
            ]
        },
    )
    rate_limit: RateLimit | None = Field(
        None, description="At most this many runs started per second (a token bucket)."
    )
    paused: bool = Field(
        False,
        description="True: running jobs finish, no new run starts; waiting jobs show QueuePaused.",
    )
    kueue: KueueHandOff | None = Field(
        None,
        description="Leave admission to Kueue: Jobs are created suspended with the LocalQueue's"
        " label, and Kueue's ClusterQueue decides when they run (maxConcurrency, priority,"
        " rateLimit and the operator-wide cap do not apply to them; paused does).",
    )


class BackgroundJobQueueStatus(_Model):
    """The queue's health, written by the operator every few seconds."""

    pending: int = Field(0, description="Jobs waiting for admission.")
    running: int = Field(0, description="Runs holding a slot of this queue.")
    oldest_pending_since: str | None = Field(
        None,
        description="When the job waiting longest became ready (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        None, description="The spec generation the operator last applied."
    )


QUEUE_PRINTER_COLUMNS = (
    PrinterColumn("Max", ".spec.maxConcurrency", "integer"),
    PrinterColumn("Priority", ".spec.priority", "integer"),
    PrinterColumn("Paused", ".spec.paused", "boolean"),
    PrinterColumn("Pending", ".status.pending", "integer"),
    PrinterColumn("Running", ".status.running", "integer"),
    PrinterColumn("Oldest", ".status.oldestPendingSince", "date"),
    PrinterColumn("Rate", ".spec.rateLimit.perSecond", "number", priority=1),
    PrinterColumn("Class", ".spec.priorityClassName", priority=1),
    PrinterColumn("Kueue", ".spec.kueue.localQueue", priority=1),
)


def openapi_schema() -> dict[str, Any]:
    """The structural OpenAPI v3 schema of the queue resource."""
    return {
        "type": "object",
        "description": "A queue of BackgroundJobs: how many of its runs may run at once, its"
        " priority against other queues, a rate limit and a pause switch.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _schema_of(BackgroundJobQueueSpec, with_defaults=True),
            "status": _schema_of(BackgroundJobQueueStatus, with_defaults=False),
        },
        "x-kubernetes-validations": [
            _cel(
                f"self.metadata.name.size() <= 63"
                f" && self.metadata.name.matches({_cel_re(c.DNS_LABEL_PATTERN)})",
                "a queue's name must be a DNS label like critical (what spec.queue names)",
            )
        ],
    }


def build_crd() -> dict[str, Any]:
    """The BackgroundJobQueue CustomResourceDefinition."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": c.QUEUE_CRD_NAME,
            "labels": {
                "app.kubernetes.io/name": "backgroundjobs",
                "app.kubernetes.io/part-of": "backgroundjobs",
            },
        },
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": c.QUEUE_KIND,
                "listKind": f"{c.QUEUE_KIND}List",
                "plural": c.QUEUE_PLURAL,
                "singular": c.QUEUE_SINGULAR,
                "shortNames": list(c.QUEUE_SHORT_NAMES),
                "categories": list(c.CATEGORIES),
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [col.crd() for col in QUEUE_PRINTER_COLUMNS],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML document committed under crds/."""
    header = (
        "# Generated by `python -m backgroundjobs.api.queues` (make crd)"
        " from backgroundjobs.api.queues. Do not edit.\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=1000)


if __name__ == "__main__":
    sys.stdout.write(render())
