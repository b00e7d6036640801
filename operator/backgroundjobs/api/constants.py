"""Names and limits of the BackgroundJob API: group, version, labels, annotations, env
variables, name and handler patterns, and the enums of its vocabulary (job types, phases,
condition types, reasons). The one home of each: the models, the operator, the client, the
CLI and the runtime import them from here."""

from __future__ import annotations

from enum import StrEnum

GROUP = "backgroundjobs.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "BackgroundJob"
PLURAL = "backgroundjobs"
SINGULAR = "backgroundjob"
SHORT_NAMES = ["bgj", "bgjob"]
CATEGORIES = ["backgroundjobs"]
CRD_NAME = f"{PLURAL}.{GROUP}"
QUEUE_KIND = "BackgroundJobQueue"
QUEUE_PLURAL = "backgroundjobqueues"
QUEUE_SINGULAR = "backgroundjobqueue"
QUEUE_SHORT_NAMES = ["bgjq"]
QUEUE_CRD_NAME = f"{QUEUE_PLURAL}.{GROUP}"
# The CRD's selectableFields (KEP-4358, GA in Kubernetes 1.32): the field selectors a list
# of BackgroundJobs accepts, by the client's filter name. The operator checks that the
# installed CRD has them all (an older CRD: a warning; the client then filters itself).
SELECTABLE_FIELDS = {
    "handler": "spec.handler",
    "queue": "spec.queue",
    "phase": "status.phase",
    "type": "status.type",
}

# Labels the operator puts on every Job / CronJob (and pod template) it creates.
LABEL_NAME = f"{GROUP}/name"
LABEL_TYPE = f"{GROUP}/type"
LABEL_QUEUE = f"{GROUP}/queue"
# Kueue's: the LocalQueue of a Job it admits; and the label of a Workload naming its Job.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
LABEL_CONCURRENCY_KEY = f"{GROUP}/concurrency-key"
LABEL_RUN = f"{GROUP}/run"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "backgroundjobs"
# Put by the client on every job of one enqueue_many call.
LABEL_BATCH = f"{GROUP}/batch"
# Kubernetes' own: the Job controller labels a Job's pods with the Job's name; the CronJob
# controller stamps each Job with the time it was scheduled for.
LABEL_JOB_NAME = "batch.kubernetes.io/job-name"
# Set by the Job controller on the pods of a Job, with the Job's uid.
LABEL_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
ANNOTATION_CRONJOB_SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# On the Jobs of a Recurring job (its CronJob's template, its catch-up runs): the spec
# generation they were built from, for status.runHistory.
ANNOTATION_GENERATION = f"{GROUP}/generation"

# Action annotations (the Flux requestedAt pattern): a new value asks for the action once.
ANNOTATION_REQUEUE = f"{GROUP}/requeue"
ANNOTATION_TRIGGER = f"{GROUP}/trigger"
ANNOTATION_CANCEL = f"{GROUP}/cancel"
ACTION_ANNOTATIONS = {
    "requeue": ANNOTATION_REQUEUE,
    "trigger": ANNOTATION_TRIGGER,
    "cancel": ANNOTATION_CANCEL,
}

# Env variables of the handler container.
ENV_HANDLER = "BACKGROUNDJOBS_HANDLER"
ENV_ARGS = "BACKGROUNDJOBS_ARGS"
ENV_KWARGS = "BACKGROUNDJOBS_KWARGS"
ENV_NAME = "BACKGROUNDJOBS_NAME"
ENV_NAMESPACE = "BACKGROUNDJOBS_NAMESPACE"
ENV_RUN = "BACKGROUNDJOBS_RUN"
# The run's batch Job, from the pod's job-name label (the downward API): a Recurring job's
# runs are Jobs the CronJob names, which the operator cannot write into their template.
ENV_JOB = "BACKGROUNDJOBS_JOB"
ENV_PARENT = "BACKGROUNDJOBS_PARENT"
ENV_PARENT_RESULT = "BACKGROUNDJOBS_PARENT_RESULT"
ENV_HANDLER_MODULES = "BACKGROUNDJOBS_HANDLER_MODULES"
ENV_TERMINATION_LOG = "BACKGROUNDJOBS_TERMINATION_LOG"
# spec.kwargsFrom: the names, comma-separated, and one variable per name (from the Secret key).
ENV_SECRET_KWARGS = "BACKGROUNDJOBS_SECRET_KWARGS"
ENV_SECRET_KWARG_PREFIX = "BACKGROUNDJOBS_SECRET_KWARG_"

# A BackgroundJob's name becomes part of its Jobs' names (``<name>-<run>``) and, for a
# Recurring job, the CronJob's, whose Jobs are ``<name>-<minutes since epoch>`` (11 more
# characters). Job names go into the 63-character job-name pod label, so CronJob names are
# limited to 52 characters by Kubernetes; the same limit holds for every type.
MAX_NAME_LENGTH = 52
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A registered handler name (mail.send) or module:function.
HANDLER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"
HANDLER_MAX_LENGTH = 253

HANDLER_CONTAINER = "handler"
MAX_RESULT_BYTES = 4096
MAX_ARGS_BYTES = 64 * 1024
# How deep args, kwargs and podTemplate may nest, and a result the status keeps: the API
# server stores JSON nested up to 10,000 levels, which most code (Python's json, ==, repr)
# cannot handle; the operator refuses such a spec (InvalidSpec) and keeps such a result as
# its text.
MAX_VALUE_DEPTH = 64

# Batches (spec.items): one Indexed Job whose items the pods read from a ConfigMap. A
# ConfigMap holds at most 1 MiB and the BackgroundJob, which holds the items too, must stay
# under etcd's 1.5 MiB object limit: so the items take at most MAX_BATCH_BYTES as JSON lines.
MAX_BATCH_ITEMS = 10_000
MAX_BATCH_BYTES = 1_000_000
MAX_BATCH_PARALLELISM = 1_000
DEFAULT_BATCH_PARALLELISM = 20
BATCH_ITEMS_KEY = "items.jsonl"
BATCH_ITEMS_DIR = "/var/run/backgroundjobs/items"
BATCH_ITEMS_VOLUME = "backgroundjobs-items"
# The Job controller sets it in every pod of an Indexed Job.
ENV_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"
ENV_ITEMS_FILE = "BACKGROUNDJOBS_ITEMS_FILE"
# status.batch.failedIndexes is the Job's interval list ("1,3-5"), cut to this length.
MAX_FAILED_INDEXES_TEXT = 1024


class JobType(StrEnum):
    """What kind of job a BackgroundJob is; it follows from which "when" field is set."""

    IMMEDIATE = "Immediate"
    DELAYED = "Delayed"
    RECURRING = "Recurring"
    CONTINUATION = "Continuation"
    BATCH = "Batch"


class Phase(StrEnum):
    """``status.phase``: one word for the printer column."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    WAITING = "Waiting"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SUSPENDED = "Suspended"


PHASES = [phase.value for phase in Phase]
FINISHED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
# Phases in which a run is on its way: kstatus reads them as InProgress (Reconciling True).
RECONCILING_PHASES = frozenset({Phase.PENDING, Phase.QUEUED, Phase.RUNNING})


class ConditionType(StrEnum):
    """The ``type`` of a condition in ``status.conditions`` (one of each at most)."""

    SCHEDULED = "Scheduled"  # has a due time
    WAITING = "Waiting"  # for its parent
    QUEUED = "Queued"  # held by its queue's limit
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    # kstatus' two (Flux, kpt, Config Sync wait on them), derived from the phase.
    RECONCILING = "Reconciling"  # a run is being started or runs
    STALLED = "Stalled"  # the job has failed: nothing more happens until someone acts
    ADMITTED = "Admitted"  # Kueue admitted the run's Workload (a queue with spec.kueue)


class Reason(StrEnum):
    """The ``reason`` of a condition, as the operator writes it. A Job's own failure reasons
    (BackoffLimitExceeded, DeadlineExceeded, ...) are passed on as the Job states them."""

    CREATED = "Created"
    REQUEUED = "Requeued"
    TRIGGERED = "Triggered"
    STARTED = "Started"
    DUE_IN_FUTURE = "DueInFuture"
    SCHEDULED = "Scheduled"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    QUEUE_FULL = "QueueFull"
    QUEUE_PAUSED = "QueuePaused"
    RATE_LIMITED = "RateLimited"
    CONCURRENCY_KEY_BUSY = "ConcurrencyKeyBusy"
    OPERATOR_STARTING = "OperatorStarting"
    # A queue with spec.kueue: the run's Workload, as Kueue's conditions say.
    WAITING_FOR_QUOTA = "WaitingForQuota"
    QUOTA_RESERVED = "QuotaReserved"
    ADMITTED = "Admitted"
    EVICTED = "Evicted"
    PREEMPTED = "Preempted"
    KUEUE_NOT_INSTALLED = "KueueNotInstalled"
    PARENT_NOT_FOUND = "ParentNotFound"
    PARENT_PENDING = "ParentPending"
    PARENT_RUNNING = "ParentRunning"
    PARENT_SUCCEEDED = "ParentSucceeded"
    PARENT_FAILED = "ParentFailed"
    PARENT_DELETED = "ParentDeleted"
    # A continuation after a group (spec.after.selector): fewer than count members exist
    # yet, or they have not all reached after.when.
    GROUP_INCOMPLETE = "GroupIncomplete"
    GROUP_RUNNING = "GroupRunning"
    GROUP_SUCCEEDED = "GroupSucceeded"
    GROUP_FAILED = "GroupFailed"
    POD_FAILED = "PodFailed"
    COMPLETED = "Completed"
    NON_RETRYABLE_EXIT_CODE = "NonRetryableExitCode"
    JOB_DELETED = "JobDeleted"
    CANCELLED = "Cancelled"
    INVALID_SPEC = "InvalidSpec"
    POLICY_DENIED = "PolicyDenied"
    SPEC_FIXED = "SpecFixed"
    RUN_ACTIVE = "RunActive"
    NO_RUN_ACTIVE = "NoRunActive"
    # The run's pod cannot start (decisions/pods.py): while it waits, the reason of the
    # Running condition; when it gives up, of Failed.
    UNSCHEDULABLE = "Unschedulable"
    QUOTA_EXCEEDED = "QuotaExceeded"
    POD_CREATE_FAILED = "PodCreateFailed"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    POD_STARTING = "PodStarting"
    POD_CREATE_REFUSED = "PodCreateRefused"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CONFIG_ERROR = "ConfigError"
    # spec.retryPolicy: the Running condition while the next attempt waits for its time.
    RETRYING = "Retrying"


class EventType(StrEnum):
    """The ``type`` of a Kubernetes Event."""

    NORMAL = "Normal"
    WARNING = "Warning"


class EventReason(StrEnum):
    """The ``reason`` of an Event the operator posts on a BackgroundJob."""

    CREATED = "Created"
    UPDATED = "Updated"
    SCHEDULED = "Scheduled"
    RESCHEDULED = "Rescheduled"
    WAITING = "Waiting"
    QUEUED = "Queued"
    SUSPENDED = "Suspended"
    STARTED = "Started"
    REQUEUED = "Requeued"
    TRIGGERED = "Triggered"
    RETRYING = "Retrying"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    INVALID_SPEC = "InvalidSpec"
    POLICY_DENIED = "PolicyDenied"
    REQUEUE_IGNORED = "RequeueIgnored"
    TRIGGER_IGNORED = "TriggerIgnored"
    CANCEL_IGNORED = "CancelIgnored"
    RESULT_AS_TEXT = "ResultAsText"
    MISFIRE_SKIPPED = "MisfireSkipped"
    MISFIRE_CATCH_UP = "MisfireCatchUp"
    ADMITTED = "Admitted"  # a recurring run held by its queue was let start
    # Warnings: the run's pod cannot start (it waits, or the job fails with Failed).
    UNSCHEDULABLE = "Unschedulable"
    QUOTA_EXCEEDED = "QuotaExceeded"
    POD_CREATE_FAILED = "PodCreateFailed"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    # Normal: it was blocked and no longer is.
    POD_STARTING = "PodStarting"
