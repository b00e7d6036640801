"""The BackgroundJob resource as pydantic models: the single source of truth for the CRD.

Field descriptions become the OpenAPI descriptions (``kubectl explain``); the validation
rules in ``json_schema_extra`` become CEL ``x-kubernetes-validations`` that the API server
enforces, so a bad manifest is refused at ``kubectl apply`` with a message naming the field.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from backgroundjobs.api.constants import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    HANDLER_MAX_LENGTH,
    HANDLER_PATTERN,
    MAX_BATCH_ITEMS,
    MAX_BATCH_PARALLELISM,
    ConditionType,
    JobType,
    Phase,
)
from backgroundjobs.api.durations import DURATION_PATTERN, parse_duration
from backgroundjobs.api.misfire import Misfire, MisfireStatus

CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+)$"
)
TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_KWARGS_FROM = 32

WhenState = Literal["Succeeded", "Failed", "Finished"]
ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]


def _cel_re(pattern: str) -> str:
    """A regular expression as a single-quoted CEL string literal (backslashes escaped)."""
    return "'" + pattern.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cel(rule: str, message: str, field_path: str | None = None) -> Any:
    """One CEL ``x-kubernetes-validations`` rule (typed Any: pydantic's JsonDict is invariant)."""
    out = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


MAX_DURATION = "876000h"  # 100 years: due times stay far inside what datetimes can hold


def _duration_rule(field: str, minimum: str = "0s", inclusive: bool = False) -> dict[str, Any]:
    cmp = ">=" if inclusive else ">"
    if minimum == "0s":
        what = "zero or longer" if inclusive else "positive"
    else:
        what = f"{minimum} or longer" if inclusive else f"longer than {minimum}"
    return {
        "x-kubernetes-validations": [
            _cel(
                f"self.matches({_cel_re(DURATION_PATTERN)})"
                f" && duration(self) {cmp} duration('{minimum}')"
                f" && duration(self) <= duration('{MAX_DURATION}')",
                f"{field} must be a {what} duration such as 90s, 15m or 1h30m,"
                f" at most {MAX_DURATION} (100 years)",
            )
        ],
        "maxLength": 64,
    }


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=False,
    )


class History(_Model):
    """Finished Jobs a Recurring job keeps."""

    succeeded: int = Field(
        3, ge=0, le=100, description="Succeeded Jobs kept (CronJob successfulJobsHistoryLimit)."
    )
    failed: int = Field(
        1, ge=0, le=100, description="Failed Jobs kept (CronJob failedJobsHistoryLimit)."
    )


MAX_GROUP_COUNT = 100_000
MAX_GROUP_LABELS = 16
_LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


class GroupSelector(_Model):
    """The members of a group of separate BackgroundJobs, by their labels."""

    match_labels: dict[str, str] = Field(
        ...,
        description=(
            "Labels every member carries (all of them), e.g."
            " {backgroundjobs.dev/batch: <prefix>} for the jobs of one enqueue_many."
        ),
        json_schema_extra={
            "maxProperties": MAX_GROUP_LABELS,
            "additionalProperties": {"type": "string", "maxLength": 63},
            "x-kubernetes-validations": [
                _cel(
                    "self.size() >= 1 && self.all(k, k.size() <= 317"
                    f" && self[k].matches({_cel_re(_LABEL_VALUE_PATTERN)}))",
                    "after.selector.matchLabels needs one or more labels, whose values are"
                    " label values (at most 63 letters, digits, - _ .)",
                )
            ],
        },
    )


AFTER_RULES: list[Any] = [
    _cel(
        "has(self.name) != has(self.selector)",
        "spec.after needs exactly one of after.name (one parent) and after.selector (a group)",
    ),
    _cel(
        "has(self.selector) == has(self.count)",
        "spec.after.count (the number of members the group will have) is required with"
        " after.selector, and only allowed with it",
        ".count",
    ),
]


class After(_Model):
    """The parent of a Continuation job: one BackgroundJob (name) or a group (selector)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": AFTER_RULES})

    name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        description="Name of the parent BackgroundJob, in the same namespace.",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(DNS_SUBDOMAIN_PATTERN)})",
                    "after.name must be the name of a BackgroundJob (a DNS subdomain)",
                )
            ]
        },
    )
    when: WhenState = Field(
        "Succeeded",
        description=(
            "When the child starts: Succeeded (default: only if the parent succeeds; it keeps"
            " waiting if the parent failed, since a requeue may still succeed), Failed, or"
            " Finished (either). For a group: Succeeded when every member succeeded, Failed"
            " when every member finished and one or more failed, Finished when every member"
            " finished."
        ),
    )
    selector: GroupSelector | None = Field(
        None,
        description=(
            "Continuation after a group: the BackgroundJobs (same namespace) whose labels"
            " match. Not with name; needs count."
        ),
    )
    count: int | None = Field(
        None,
        ge=1,
        le=MAX_GROUP_COUNT,
        description=(
            "With selector: how many members the group has. The child never starts while"
            " fewer than this many match (a group still being created); then when= is judged"
            " over every member that matches."
        ),
    )


MAX_ARGUMENTS = 256  # top-level items of args, keys of kwargs
MAX_MAP_ENTRIES = 256  # labels or annotations of a podTemplate


def _string_map(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": what,
        "additionalProperties": {"type": "string"},
        "maxProperties": MAX_MAP_ENTRIES,
    }


def _open_object(what: str, **properties: Any) -> dict[str, Any]:
    """An object whose listed properties are checked and whose other fields are kept as is."""
    out: dict[str, Any] = {
        "type": "object",
        "description": what,
        "x-kubernetes-preserve-unknown-fields": True,
    }
    if properties:
        out["properties"] = properties
    return out


# The shape a podTemplate must have where the operator merges it into the Job (metadata's
# labels and annotations, the containers and their env); the rest is the API server's to
# check when the Job is created.
POD_TEMPLATE_SHAPE: Any = {
    "properties": {
        "metadata": _open_object(
            "The pod's metadata: labels and annotations are added to the Job's pods.",
            labels=_string_map("Labels of the pods."),
            annotations=_string_map("Annotations of the pods."),
        ),
        "spec": _open_object(
            "A PodSpec, merged into the Job's pod spec.",
            containers={
                "type": "array",
                "description": "Containers: the one named 'handler' is merged into the handler.",
                "maxItems": 64,
                "items": _open_object(
                    "A container.",
                    name={"type": "string", "maxLength": 253, "description": "Its name."},
                    env={
                        "type": "array",
                        "description": "Its environment variables.",
                        "maxItems": 1024,
                        "items": _open_object("An EnvVar."),
                    },
                ),
            },
        ),
    },
}


class SecretKeySelector(_Model):
    """One key of a Secret in the job's namespace."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=253,
        description="Name of the Secret, in the job's namespace.",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(DNS_SUBDOMAIN_PATTERN)})",
                    "secretKeyRef.name must be the name of a Secret (a DNS subdomain)",
                )
            ]
        },
    )
    key: str = Field(
        ...,
        min_length=1,
        max_length=253,
        description="The key in the Secret's data.",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(SECRET_KEY_PATTERN)})",
                    "secretKeyRef.key must be a Secret key (letters, digits, '-', '_', '.')",
                )
            ]
        },
    )


class KwargFrom(_Model):
    """A keyword argument whose value is a Secret's key, read by the runtime in the pod."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=128,
        description="The keyword argument's name (a Python identifier).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(IDENTIFIER_PATTERN)})",
                    "kwargsFrom[].name must be a Python identifier like password",
                )
            ]
        },
    )
    secret_key_ref: SecretKeySelector = Field(
        ...,
        description=(
            "The Secret key whose value (a string) the handler receives. The value is never"
            " copied into the BackgroundJob, its Jobs or its pods: the pod's env refers to the"
            " Secret (valueFrom.secretKeyRef) and the runtime reads it."
        ),
    )


class BatchItem(_Model):
    """One call of a batch's handler: its positional and keyword arguments."""

    args: list[Any] = Field(
        default_factory=list, max_length=MAX_ARGUMENTS, description="Positional arguments."
    )
    item_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_ARGUMENTS,
        alias="kwargs",
        description="Keyword arguments (a JSON object).",
    )


_BATCH_EXCLUDES = ("schedule", "after", "delay", "runAt")
_BATCH_ONLY = ("parallelism", "maxFailed")

BATCH_RULES: list[Any] = [
    _cel(
        "!has(self.items) || size(self.items) > 0",
        "spec.items must hold at least one item (one {args, kwargs} per handler call)",
        ".items",
    ),
    *(
        _cel(
            f"!has(self.items) || !has(self.{f})",
            f"spec.items (a batch) cannot be combined with spec.{f}: a batch starts at once",
            ".items",
        )
        for f in _BATCH_EXCLUDES
    ),
    # (spec.args and spec.kwargs with items: free-form values CEL cannot see; the operator
    # refuses them as InvalidSpec, the client before sending.)
    *(
        _cel(
            f"!has(self.{f}) || has(self.items)",
            f"spec.{f} is only allowed with spec.items (a batch)",
            f".{f}",
        )
        for f in _BATCH_ONLY
    ),
    _cel(
        "!has(self.maxFailed) || !has(self.items) || self.maxFailed <= size(self.items)",
        "spec.maxFailed cannot exceed the number of spec.items",
        ".maxFailed",
    ),
    _cel(
        "has(self.items) == has(oldSelf.items)",
        "a batch stays a batch: spec.items cannot be added or removed on update; create a new"
        " BackgroundJob instead",
        ".items",
    ),
]


class RetryBackoff(_Model):
    """The delay before each next attempt: ``initial`` after the first failure, times
    ``factor`` after each further one, at most ``max``, less up to ``jitter`` of it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.initial) || !has(self.max)"
                    " || duration(self.max) >= duration(self.initial)",
                    "retryPolicy.backoff.max must be at least retryPolicy.backoff.initial",
                    ".max",
                )
            ]
        }
    )

    initial: str = Field(
        "10s",
        description="The delay after the first failed attempt (1s or longer): 10s, 1m.",
        json_schema_extra=_duration_rule(
            "retryPolicy.backoff.initial", minimum="1s", inclusive=True
        ),
    )
    factor: float = Field(
        2.0, ge=1, le=100, description="Each next delay is the previous one times this (1-100)."
    )
    max: str = Field(
        "6m",
        description="The longest delay (at least initial): 10m, 1h.",
        json_schema_extra=_duration_rule("retryPolicy.backoff.max", minimum="1s", inclusive=True),
    )
    jitter: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Up to this fraction (0-1) is taken off each delay, fixed per job and attempt, so"
            " jobs that failed together do not all retry at one instant."
        ),
    )


class RetryPolicy(_Model):
    """How the operator retries a failed run: one Job per attempt, at the backoff's times."""

    backoff: RetryBackoff = Field(
        default_factory=RetryBackoff,
        description="Delays between attempts. Default: initial 10s, factor 2, max 6m, jitter 0.",
    )


_WHEN_FIELDS = "[has(self.delay), has(self.runAt), has(self.schedule), has(self.after)]"
_SCHEDULE_ONLY = ("timeZone", "concurrencyPolicy", "startingDeadline", "history", "misfire")

SPEC_RULES: list[Any] = [
    _cel(
        f"{_WHEN_FIELDS}.filter(x, x).size() <= 1",
        "at most one of spec.delay, spec.runAt, spec.schedule and spec.after may be set"
        " (the one that is set chooses the job type)",
    ),
    *(
        _cel(
            f"!has(self.{f}) || has(self.schedule)",
            f"spec.{f} is only allowed with spec.schedule",
            f".{f}",
        )
        for f in _SCHEDULE_ONLY
    ),
    _cel(
        "has(self.schedule) == has(oldSelf.schedule) && has(self.after) == has(oldSelf.after)"
        " && (has(self.delay) || has(self.runAt)) == (has(oldSelf.delay) || has(oldSelf.runAt))",
        "the job type cannot change on update (spec.delay/runAt, spec.schedule and spec.after"
        " must stay set or unset); create a new BackgroundJob instead",
    ),
    *BATCH_RULES,
    _cel(
        "!has(self.suspendUntil) || (has(self.suspend) && self.suspend)",
        "spec.suspendUntil is only allowed with spec.suspend: true (it says when to resume)",
        ".suspendUntil",
    ),
    _cel(
        "!has(self.retryPolicy) || !has(self.schedule)",
        "spec.retryPolicy is not allowed with spec.schedule: a Recurring job's runs are"
        " retried by their Job (spec.retries)",
        ".retryPolicy",
    ),
    _cel(
        "!has(self.retryPolicy) || !has(self.items)",
        "spec.retryPolicy is not allowed with spec.items: a batch's items are retried by"
        " their Job (spec.retries, per item)",
        ".retryPolicy",
    ),
]

ROOT_RULES: list[Any] = [
    _cel(
        "!has(self.spec.after) || !has(self.spec.after.name)"
        " || self.spec.after.name != self.metadata.name",
        "spec.after.name cannot name the job itself",
        ".spec.after.name",
    ),
]


class BackgroundJobSpec(_Model):
    """What to run, and when. The type follows from which of delay/runAt, schedule, after is set."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": SPEC_RULES})

    handler: str = Field(
        ...,
        min_length=1,
        max_length=HANDLER_MAX_LENGTH,
        description=(
            "Name of a registered handler (mail.send) or module:function, run by the image's"
            " runtime."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(HANDLER_PATTERN)})",
                    "handler must be a registered name like mail.send or module:function"
                    " (letters, digits, _ . : -; starting with a letter or _)",
                )
            ]
        },
    )
    args: list[Any] = Field(
        default_factory=list,
        max_length=MAX_ARGUMENTS,
        description=(
            "Positional arguments (JSON values). args and kwargs together: at most 64 KiB"
            " serialized, nested at most 32 levels deep."
        ),
    )
    handler_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_ARGUMENTS,
        alias="kwargs",
        description="Keyword arguments (a JSON object).",
    )
    kwargs_from: list[KwargFrom] = Field(
        default_factory=list,
        max_length=MAX_KWARGS_FROM,
        description=(
            "Keyword arguments whose values come from Secret keys (passwords, tokens, reset"
            " links): the handler receives them like kwargs, but they never appear in the"
            " spec, the Jobs or the pods, only a reference to the Secret does."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    image: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="Image whose runtime has the handler. Default: the operator's defaultImage.",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("!self.matches(" + _cel_re(r"\s") + ")", "image must not contain whitespace")
            ]
        },
    )
    queue: str = Field(
        "default",
        max_length=63,
        description=(
            "Queue name: the operator's config maps it to a PriorityClass and a concurrency limit."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(DNS_LABEL_PATTERN)})",
                    "queue must be a DNS label like critical",
                )
            ]
        },
    )
    delay: str | None = Field(
        None,
        description="Delayed job: due this long after the object's creation (90s, 1h30m).",
        json_schema_extra=_duration_rule("delay"),
    )
    run_at: datetime | None = Field(
        None,
        description="Delayed job: due at this RFC 3339 instant (2030-01-02T03:04:05Z).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self >= timestamp('1900-01-01T00:00:00Z')"
                    " && self < timestamp('9000-01-01T00:00:00Z')",
                    "runAt must be an instant between the years 1900 and 9000",
                )
            ]
        },
    )
    schedule: str | None = Field(
        None,
        max_length=128,
        description=(
            "Recurring job: a 5-field cron expression (0 2 * * *) or @hourly, @daily, @weekly,"
            " @monthly, @yearly. Reconciled into a CronJob."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(CRON_PATTERN)})",
                    "schedule must be a 5-field cron expression like '0 2 * * *' or a macro"
                    " like @daily",
                )
            ]
        },
    )
    time_zone: str | None = Field(
        None,
        max_length=64,
        description="IANA time zone of schedule (Europe/Berlin). Default UTC. Only with schedule.",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches({_cel_re(TIME_ZONE_PATTERN)})",
                    "timeZone must be an IANA zone name like Europe/Berlin",
                )
            ]
        },
    )
    concurrency_policy: ConcurrencyPolicy | None = Field(
        None,
        description=(
            "What a Recurring run does while the previous one still runs: Allow, Forbid"
            " (default: skip it) or Replace. Only with schedule."
        ),
    )
    starting_deadline: str | None = Field(
        None,
        description="How late a missed Recurring run may still start (5m). Only with schedule.",
        json_schema_extra=_duration_rule("startingDeadline", minimum="1s", inclusive=True),
    )
    history: History | None = Field(
        None,
        description="Finished Jobs a Recurring job keeps. Default succeeded 3, failed 1.",
    )
    after: After | None = Field(
        None, description="Continuation: start when the named parent reaches after.when."
    )
    retries: int = Field(
        3, ge=0, le=100, description="Pod failures retried before the job fails (backoffLimit)."
    )
    non_retryable_exit_codes: list[int] = Field(
        default_factory=lambda: [2],
        max_length=255,
        description=(
            "Exit codes that fail the job at once, without retries (podFailurePolicy FailJob)."
            " Default [2]: the runtime's code for PermanentError and invalid arguments."
        ),
        json_schema_extra={
            "items": {"type": "integer", "minimum": 1, "maximum": 255},
            "x-kubernetes-list-type": "set",
        },
    )
    timeout: str | None = Field(
        None,
        description="Time limit of one run (activeDeadlineSeconds), at least 1s: 30m, 2h.",
        json_schema_extra=_duration_rule("timeout", minimum="1s", inclusive=True),
    )
    ttl_after_finished: str | None = Field(
        None,
        description=(
            "A finished Immediate, Delayed or Continuation job and its Jobs are deleted this"
            " long after finishing. Default: the operator's retention (168h)."
        ),
        json_schema_extra=_duration_rule("ttlAfterFinished", inclusive=True),
    )
    ttl_after_succeeded: str | None = Field(
        None,
        description=(
            "Like ttlAfterFinished, for a job that succeeded (wins over it): 24h; 0 deletes it"
            " at once."
        ),
        json_schema_extra=_duration_rule("ttlAfterSucceeded", inclusive=True),
    )
    ttl_after_failed: str | None = Field(
        None,
        description=(
            "Like ttlAfterFinished, for a job that failed or was cancelled (wins over it):"
            " 720h to keep failures longer; 0 deletes it at once."
        ),
        json_schema_extra=_duration_rule("ttlAfterFailed", inclusive=True),
    )
    suspend: bool = Field(
        False,
        description="Recurring: no new runs. Other types: not started while true.",
    )
    suspend_until: datetime | None = Field(
        None,
        description=(
            "With suspend: true, an RFC 3339 instant at which the operator resumes the job (as"
            " if suspend were false from then on; never earlier). Unset: suspended until"
            " suspend is set to false."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self >= timestamp('1900-01-01T00:00:00Z')"
                    " && self < timestamp('9000-01-01T00:00:00Z')",
                    "suspendUntil must be an instant between the years 1900 and 9000",
                )
            ]
        },
    )
    pod_template: dict[str, Any] | None = Field(
        None,
        description=(
            "A PodTemplateSpec merged into the Job's pod: labels, annotations,"
            " serviceAccountName, volumes, nodeSelector, tolerations, ... A container named"
            " 'handler' is merged into the handler container (env, resources, volumeMounts,"
            " securityContext); other containers are added. Validated when the Job is created."
        ),
        json_schema_extra=POD_TEMPLATE_SHAPE,
    )
    items: list[BatchItem] | None = Field(
        None,
        max_length=MAX_BATCH_ITEMS,
        description=(
            "Batch: one handler call per item ({args, kwargs}), all run by one Indexed Job."
            f" At most {MAX_BATCH_ITEMS} items taking at most 1,000,000 bytes as JSON lines"
            " (a ConfigMap holds 1 MiB, an object in etcd 1.5 MiB): split more into several"
            " batches, or pass references (ids) instead of data. Not with args, kwargs,"
            " schedule, after, delay or runAt. retries then counts per item"
            " (backoffLimitPerIndex)."
        ),
    )
    parallelism: int | None = Field(
        None,
        ge=1,
        le=MAX_BATCH_PARALLELISM,
        description="Batch: how many items run at once (the Job's parallelism). Default 20.",
    )
    max_failed: int | None = Field(
        None,
        ge=0,
        le=MAX_BATCH_ITEMS,
        description=(
            "Batch: the failure budget. When more items than this failed, the batch stops and"
            " fails (maxFailedIndexes); with at most this many failed, it succeeds. Default 0:"
            " every item must succeed (the others still run)."
        ),
    )
    concurrency_key: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description=(
            "Jobs of one namespace with the same key (user-42) do not run at once: a job whose"
            " key is busy waits Queued (ConcurrencyKeyBusy); the operator's"
            " BACKGROUNDJOBS_CONCURRENCY_KEY_LIMIT (default 1) runs per key."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')",
                    "concurrencyKey must be a label value: letters, digits and - _ . (user-42)",
                )
            ]
        },
    )
    retry_policy: RetryPolicy | None = Field(
        None,
        description=(
            "Retry timing of your own: each attempt (at most retries + 1) is a Job of its own"
            " that the operator creates when the backoff says, never earlier. Unset: the Job"
            " controller retries the pod (10s doubling, at most 6m)."
        ),
    )
    misfire: Misfire | None = Field(
        None,
        description=(
            "Recurring: what happens to scheduled times missed while the controller-manager"
            " or the cluster was down (Latest, Skip, All). Only with schedule."
        ),
    )

    @property
    def job_type(self) -> JobType:
        """Immediate, Delayed, Recurring, Continuation or Batch, from the fields that are set."""
        if self.items is not None:
            return JobType.BATCH
        if self.schedule is not None:
            return JobType.RECURRING
        if self.after is not None:
            return JobType.CONTINUATION
        if self.delay is not None or self.run_at is not None:
            return JobType.DELAYED
        return JobType.IMMEDIATE

    def metric_labels(self) -> dict[str, str]:
        """The labels of this job's run metrics: type, queue and handler."""
        return {"type": self.job_type.value, "queue": self.queue, "handler": self.handler}

    def delay_timedelta(self) -> timedelta | None:
        return parse_duration(self.delay) if self.delay else None


class Condition(_Model):
    """A metav1.Condition-shaped observation of the job."""

    type: ConditionType = Field(
        ...,
        description=(
            "Scheduled, Waiting, Queued, Running, Succeeded, Failed or Suspended; and kstatus'"
            " Reconciling and Stalled, derived from the phase."
        ),
    )
    status: Literal["True", "False", "Unknown"] = Field(..., description="True, False, Unknown.")
    reason: str = Field(
        ..., max_length=1024, description="CamelCase reason, e.g. BackoffLimitExceeded."
    )
    message: str = Field("", max_length=32768, description="Human-readable details.")
    last_transition_time: str = Field(
        ...,
        description="When status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(None, description="spec generation observed.")


class HandledActions(_Model):
    """Values of the action annotations already acted on (so a restart never repeats one)."""

    requeue: str | None = Field(None, description="Last backgroundjobs.dev/requeue handled.")
    trigger: str | None = Field(None, description="Last backgroundjobs.dev/trigger handled.")
    cancel: str | None = Field(None, description="Last backgroundjobs.dev/cancel handled.")


MAX_ITEM_ERRORS = 50
MAX_ITEM_ERROR_BYTES = 300


class ItemError(_Model):
    """The last error of one failed item of a batch."""

    index: int = Field(..., ge=0, description="The item's index (0-based).")
    error: str = Field(
        "",
        max_length=MAX_ITEM_ERROR_BYTES,
        description="The error its last pod reported (type: message), cut short.",
    )


MAX_RERUN_INDEXES_TEXT = 65536


class BatchRerun(_Model):
    """A run that reran only the failed items of the run before it (a ``failed-only``
    requeue)."""

    from_run: int = Field(..., ge=1, description="The run whose failed items this run reruns.")
    items: int = Field(..., ge=1, description="How many items this run runs.")
    indexes: str = Field(
        ...,
        max_length=MAX_RERUN_INDEXES_TEXT,
        description="The indexes (0-based, in spec.items) of the items this run runs (1,3-5).",
    )


class BatchStatus(_Model):
    """A batch's items, counted from its Indexed Job's status; after a ``failed-only`` rerun,
    over the whole batch: the items that succeeded in an earlier run count as succeeded."""

    total: int = Field(..., description="Items in the batch.")
    succeeded: int = Field(0, description="Items that succeeded.")
    failed: int = Field(0, description="Items that failed (their retries used up).")
    running: int = Field(0, description="Items whose pod is running now.")
    progress: str = Field(
        "", description="Items finished (succeeded or failed) of the total: 9870/10000."
    )
    failed_indexes: str | None = Field(
        None,
        max_length=1024,
        description="Indexes (0-based) of the failed items, as intervals (1,3-5); cut at 1 KiB.",
    )
    last_error: str | None = Field(
        None, max_length=4096, description="The error of one failed item, once the batch ended."
    )
    item_errors: list[ItemError] | None = Field(
        None,
        max_length=MAX_ITEM_ERRORS,
        description=(
            f"The last error of each failed item (its first {MAX_ITEM_ERROR_BYTES} bytes),"
            f" for at most {MAX_ITEM_ERRORS} failed items (the lowest indexes), once the"
            " batch ended; read from the failed pods' termination messages."
        ),
    )
    rerun: BatchRerun | None = Field(
        None, description="Set when this run reran only the failed items of an earlier run."
    )


class Progress(_Model):
    """The latest ``progress(done, total, message)`` a handler reported, as the operator read
    it from the handler's log (every ``BACKGROUNDJOBS_PROGRESS_INTERVAL``)."""

    done: float = Field(..., description="Units done.")
    total: float = Field(..., description="Units in all (0: unknown).")
    percent: float | None = Field(None, description="100 * done / total, when total is not 0.")
    summary: str = Field(
        "", max_length=64, description="done/total and percent, for the PROGRESS column."
    )
    message: str = Field("", max_length=1024, description="The handler's progress message.")
    pod: str | None = Field(None, max_length=253, description="The pod it was read from.")
    updated_at: str | None = Field(
        None,
        description="When the operator read it (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )

    @classmethod
    def of(cls, done: float, total: float, message: str = "") -> Progress:
        """``done`` of ``total`` (0: unknown) with its percent and PROGRESS summary."""
        percent = round(100.0 * done / total, 1) if total else None
        return cls(
            done=done,
            total=total,
            percent=percent,
            summary=progress_summary(done, total, percent)[:64],
            message=message[:1024],
        )


def progress_summary(done: float, total: float, percent: float | None) -> str:
    """``42/100 (42%)``; ``42`` when the total is unknown."""
    text = f"{done:g}/{total:g}" if total else f"{done:g}"
    return f"{text} ({percent:g}%)" if percent is not None else text


# How many attempts status.attempts keeps (the newest), and how much of each error.
MAX_ATTEMPTS_KEPT = 10
MAX_ATTEMPT_MESSAGE_BYTES = 300


class Attempt(_Model):
    """One finished attempt (pod) of a run, as the operator read it off the pod."""

    attempt: int = Field(..., ge=1, description="Attempt number within the run, from 1.")
    run: int = Field(..., ge=0, description="The run it belongs to (status.runs at the time).")
    job: str = Field(..., max_length=253, description="The batch/v1 Job of the attempt.")
    pod: str | None = Field(
        None, max_length=253, description="The pod (absent: deleted before it was read)."
    )
    node: str | None = Field(None, max_length=253, description="The node the pod ran on.")
    started_at: str | None = Field(
        None,
        description="When the handler container started (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    finished_at: str | None = Field(
        None,
        description="When it ended (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    exit_code: int | None = Field(None, description="The handler container's exit code.")
    reason: str = Field(
        ...,
        max_length=128,
        description=(
            "Completed, Error, OOMKilled, Evicted, DeadlineExceeded, ... (the pod's reason,"
            " else its handler container's)."
        ),
    )
    message: str = Field(
        "",
        max_length=MAX_ATTEMPT_MESSAGE_BYTES,
        description=(
            "A failed attempt's error: the handler's termination message (type: error), else"
            " the pod's status message; its first 300 bytes."
        ),
    )


# How many runs status.runHistory keeps (the newest), and how much of a requester's name.
MAX_RUNS_KEPT = 10
MAX_REQUESTER_LENGTH = 512


class RunRecord(_Model):
    """One run the operator started: which spec it ran and who asked for it."""

    run: int | None = Field(
        None, ge=1, description="The run number (absent: an extra run of a Recurring job)."
    )
    job: str = Field(..., max_length=253, description="The batch/v1 Job of the run.")
    generation: int | None = Field(
        None, description="metadata.generation of the spec the run's Job was built from."
    )
    reason: str = Field(
        ...,
        max_length=64,
        description=(
            "Why the run started: Created, Requeued or Triggered; for a Recurring job also"
            " Scheduled (its CronJob ran it) or MisfireCatchUp (a missed time run late)."
        ),
    )
    started_at: str = Field(
        ...,
        description="When the operator created the run's Job (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    requested_by: str | None = Field(
        None,
        max_length=MAX_REQUESTER_LENGTH,
        description="Who asked for a requeue: the user named in the requeue annotation.",
    )
    requester_source: str | None = Field(
        None,
        max_length=32,
        description=(
            "Where requestedBy came from: AdmissionPolicy (the API server checked it against"
            " the requester's identity) or Client (as the client wrote it, unchecked)."
        ),
    )


class BackgroundJobStatus(_Model):
    """What the operator observed and did."""

    observed_generation: int | None = Field(None, description="Generation last acted on.")
    type: JobType | None = Field(None, description="Immediate, Delayed, Recurring or Continuation.")
    phase: Phase | None = Field(
        None,
        description=(
            "Pending, Scheduled, Waiting, Queued, Running, Succeeded, Failed, Cancelled or"
            " Suspended."
        ),
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Conditions keyed by type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    due_at: str | None = Field(
        None,
        description="Delayed: when it starts. Recurring: the next run (croniter, in timeZone).",
        json_schema_extra={"format": "date-time"},
    )
    started_at: str | None = Field(
        None,
        description="Start of the current or last run.",
        json_schema_extra={"format": "date-time"},
    )
    finished_at: str | None = Field(
        None,
        description="End of the current or last run.",
        json_schema_extra={"format": "date-time"},
    )
    last_run_at: str | None = Field(
        None,
        description="Recurring: start of the last run.",
        json_schema_extra={"format": "date-time"},
    )
    last_success_at: str | None = Field(
        None,
        description="Recurring: end of the last successful run.",
        json_schema_extra={"format": "date-time"},
    )
    job_name: str | None = Field(None, description="The current or last batch/v1 Job.")
    runs: int = Field(0, description="Jobs created so far (requeues, recurring runs, triggers).")
    failed_attempts: int = Field(0, description="Pod failures in the current run.")
    result: Any = Field(
        None,
        description="The handler's JSON return value, from the pod's termination message.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    message: str | None = Field(
        None, max_length=32768, description="The latest human-readable summary."
    )
    handled_actions: HandledActions | None = Field(
        None, description="Action annotation values already acted on."
    )
    parent_uid: str | None = Field(
        None, description="Continuation: uid of the parent once seen (its loss fails the child)."
    )
    batch: BatchStatus | None = Field(None, description="Batch: its items' progress.")
    progress: Progress | None = Field(
        None,
        description=(
            "The handler's latest progress(done, total, message) while it ran; kept after the"
            " run ends."
        ),
    )
    attempt: int | None = Field(
        None,
        description="With spec.retryPolicy: the current or last attempt of the run (1 = first).",
    )
    next_attempt_at: str | None = Field(
        None,
        description="With spec.retryPolicy: when the next attempt is due, while it waits.",
        json_schema_extra={"format": "date-time"},
    )
    attempts: list[Attempt] = Field(
        default_factory=list,
        max_length=MAX_ATTEMPTS_KEPT,
        description=(
            "The finished attempts (pods) of the current or last run, oldest first: the last"
            " 10 of attemptsTotal. Kept after the pods are gone."
        ),
    )
    attempts_total: int = Field(
        0, ge=0, description="Finished attempts of the current or last run (attempts holds 10)."
    )
    misfire: MisfireStatus | None = Field(
        None, description="Recurring: the scheduled times it missed, skipped and caught up."
    )
    run_history: list[RunRecord] = Field(
        default_factory=list,
        max_length=MAX_RUNS_KEPT,
        description=(
            "The last 10 runs the operator started, oldest first: the spec generation each ran"
            " with, and who asked for a requeue."
        ),
    )


class BackgroundJob(_Model):
    """A background job: fire-and-forget, delayed, recurring or continuation."""

    api_version: str = Field("backgroundjobs.dev/v1alpha1", alias="apiVersion")
    kind: str = "BackgroundJob"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: BackgroundJobSpec
    status: BackgroundJobStatus | None = None
