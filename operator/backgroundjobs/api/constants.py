"""Names of the BackgroundJob API: group, version, labels, annotations, env variables."""

from __future__ import annotations

GROUP = "backgroundjobs.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "BackgroundJob"
PLURAL = "backgroundjobs"
SINGULAR = "backgroundjob"
SHORT_NAMES = ["bgj", "bgjob"]
CATEGORIES = ["backgroundjobs"]
CRD_NAME = f"{PLURAL}.{GROUP}"

# Labels the operator puts on every Job / CronJob (and pod template) it creates.
LABEL_NAME = f"{GROUP}/name"
LABEL_TYPE = f"{GROUP}/type"
LABEL_QUEUE = f"{GROUP}/queue"
LABEL_RUN = f"{GROUP}/run"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "backgroundjobs"

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
ENV_PARENT = "BACKGROUNDJOBS_PARENT"
ENV_PARENT_RESULT = "BACKGROUNDJOBS_PARENT_RESULT"
ENV_HANDLER_MODULES = "BACKGROUNDJOBS_HANDLER_MODULES"
ENV_TERMINATION_LOG = "BACKGROUNDJOBS_TERMINATION_LOG"
# spec.kwargsFrom: the names, comma-separated, and one variable per name (from the Secret key).
ENV_SECRET_KWARGS = "BACKGROUNDJOBS_SECRET_KWARGS"
ENV_SECRET_KWARG_PREFIX = "BACKGROUNDJOBS_SECRET_KWARG_"

HANDLER_CONTAINER = "handler"
MAX_RESULT_BYTES = 4096
MAX_ARGS_BYTES = 64 * 1024

# Job types and phases.
TYPE_IMMEDIATE = "Immediate"
TYPE_DELAYED = "Delayed"
TYPE_RECURRING = "Recurring"
TYPE_CONTINUATION = "Continuation"
JOB_TYPES = [TYPE_IMMEDIATE, TYPE_DELAYED, TYPE_RECURRING, TYPE_CONTINUATION]

PHASES = [
    "Pending",
    "Scheduled",
    "Waiting",
    "Queued",
    "Running",
    "Succeeded",
    "Failed",
    "Cancelled",
    "Suspended",
]
FINISHED_PHASES = {"Succeeded", "Failed", "Cancelled"}
