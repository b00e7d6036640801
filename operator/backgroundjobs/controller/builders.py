"""Pure builders of the Jobs and CronJobs a BackgroundJob becomes.

Names are deterministic (a retried create meets AlreadyExists, never makes a second Job);
every child carries a controller ownerReference, so ``kubectl delete`` cascades.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from backgroundjobs.api import constants as c
from backgroundjobs.api.durations import parse_duration
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.controller import misfire
from backgroundjobs.controller.heldruns import holds_recurring_runs
from backgroundjobs.controller.settings import Settings

Body = dict[str, Any]

_JOB_NAME_MAX = 63


def _short_hash(text: str, size: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def _fit(base: str, suffix: str, limit: int) -> str:
    """``base + suffix`` cut to ``limit`` chars; a cut base gets a hash so names stay unique."""
    if len(base) + len(suffix) <= limit:
        return base + suffix
    keep = limit - len(suffix) - 7
    return f"{base[:keep].rstrip('-.')}-{_short_hash(base)}{suffix}"


def job_name(name: str, run: int) -> str:
    """The Job of run ``run`` (1, 2, ...) of an Immediate, Delayed or Continuation job."""
    return _fit(name, f"-{run}", _JOB_NAME_MAX)


def attempt_job_name(name: str, run: int, attempt: int) -> str:
    """The Job of attempt ``attempt`` (1, 2, ...) of run ``run`` under a retryPolicy: the
    first attempt is the run's Job, each further one ``-a<attempt>`` after it."""
    if attempt <= 1:
        return job_name(name, run)
    return _fit(name, f"-{run}-a{attempt}", _JOB_NAME_MAX)


def operator_retries(spec: BackgroundJobSpec) -> bool:
    """Whether the operator retries the job's runs itself (spec.retryPolicy, one Job per
    attempt) instead of the Job controller (backoffLimit). Only one-off runs: a Recurring
    job's runs and a batch's items keep the Job's own retries."""
    return spec.retry_policy is not None and spec.schedule is None and spec.items is None


def cronjob_name(name: str) -> str:
    """The CronJob of a Recurring job."""
    return _fit(name, "", c.MAX_NAME_LENGTH)


def triggered_job_name(name: str, trigger_value: str) -> str:
    """The Job of a manual trigger of a Recurring job, one per annotation value."""
    return _fit(cronjob_name(name), f"-t{_short_hash(trigger_value, 8)}", _JOB_NAME_MAX)


def owner_reference(bgj: Body) -> Body:
    meta = bgj["metadata"]
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_labels(bgj: Body, spec: BackgroundJobSpec) -> dict[str, str]:
    labels = {
        c.LABEL_NAME: _label_value(bgj["metadata"]["name"]),
        c.LABEL_TYPE: spec.job_type,
        c.LABEL_QUEUE: spec.queue,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }
    if spec.concurrency_key:  # the slot of its key, known from the Job alone after a restart
        labels[c.LABEL_CONCURRENCY_KEY] = spec.concurrency_key
    return labels


# Labels the project and the Job controller set: a podTemplate's are dropped, so that no pod
# claims another job's name, run or controller (results are found by these).
_RESERVED_LABEL_PREFIXES = (c.GROUP + "/", "batch.kubernetes.io/")
_RESERVED_LABELS = frozenset({c.LABEL_MANAGED_BY, "controller-uid", "job-name"})


def _user_labels(labels: Any) -> dict[str, str]:
    """The podTemplate's labels but the reserved ones."""
    return {
        k: v
        for k, v in (labels or {}).items()
        if k not in _RESERVED_LABELS and not k.startswith(_RESERVED_LABEL_PREFIXES)
    }


def _label_value(name: str) -> str:
    return name if len(name) <= 63 else f"{name[:55].rstrip('-.')}-{_short_hash(name)}"


def handler_env(
    bgj: Body,
    spec: BackgroundJobSpec,
    run: int | str,
    parent: tuple[str, Any] | None = None,
) -> list[Body]:
    meta = bgj["metadata"]
    env = [
        {"name": c.ENV_HANDLER, "value": spec.handler},
        {"name": c.ENV_ARGS, "value": json.dumps(spec.args, separators=(",", ":"))},
        {"name": c.ENV_KWARGS, "value": json.dumps(spec.handler_kwargs, separators=(",", ":"))},
        {"name": c.ENV_NAME, "value": meta["name"]},
        {"name": c.ENV_NAMESPACE, "value": meta.get("namespace", "")},
        {"name": c.ENV_RUN, "value": str(run)},
        {
            "name": c.ENV_JOB,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{c.LABEL_JOB_NAME}']"}},
        },
    ]
    if parent is not None:
        parent_name, parent_result = parent
        env.append({"name": c.ENV_PARENT, "value": parent_name})
        env.append(
            {"name": c.ENV_PARENT_RESULT, "value": json.dumps(parent_result, separators=(",", ":"))}
        )
    if spec.kwargs_from:
        # References only: the kubelet reads the Secret key, so no value is in the Job.
        env.append(
            {"name": c.ENV_SECRET_KWARGS, "value": ",".join(k.name for k in spec.kwargs_from)}
        )
        env.extend(
            {
                "name": c.ENV_SECRET_KWARG_PREFIX + k.name,
                "valueFrom": {
                    "secretKeyRef": {"name": k.secret_key_ref.name, "key": k.secret_key_ref.key}
                },
            }
            for k in spec.kwargs_from
        )
    return env


_HANDLER_MERGE_FIELDS = ("resources", "securityContext", "imagePullPolicy", "workingDir")


def restricted_security_context(pod_security_context: Body) -> Body:
    """The handler container's default securityContext: the `restricted` Pod Security Standard.

    A handler then runs in a namespace that enforces `restricted`. What the podTemplate's
    pod-level securityContext says (runAsNonRoot, seccompProfile) is left to it, and a
    securityContext on the podTemplate's handler container replaces this one whole.
    """
    out: Body = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if "runAsNonRoot" not in pod_security_context:
        out["runAsNonRoot"] = True
    if "seccompProfile" not in pod_security_context:
        out["seccompProfile"] = {"type": "RuntimeDefault"}
    return out


def pod_template(
    bgj: Body,
    spec: BackgroundJobSpec,
    settings: Settings,
    run: int | str,
    parent: tuple[str, Any] | None = None,
) -> Body:
    """The Job's pod template: the user's podTemplate merged with the handler container."""
    user: Body = copy.deepcopy(spec.pod_template or {})
    user_meta: Body = user.get("metadata") or {}
    user_spec: Body = user.get("spec") or {}

    labels = {**_user_labels(user_meta.get("labels")), **child_labels(bgj, spec)}
    labels[c.LABEL_RUN] = str(run)
    metadata: Body = {"labels": labels}
    if user_meta.get("annotations"):
        metadata["annotations"] = dict(user_meta["annotations"])

    containers = list(user_spec.get("containers") or [])
    user_handler = next((x for x in containers if x.get("name") == c.HANDLER_CONTAINER), None)
    others = [x for x in containers if x.get("name") != c.HANDLER_CONTAINER]

    ours = handler_env(bgj, spec, run, parent)
    ours_names = {e["name"] for e in ours}
    container: Body = {
        "name": c.HANDLER_CONTAINER,
        "image": spec.image or settings.default_image,
        "env": ours,
        "terminationMessagePolicy": "File",
        "securityContext": restricted_security_context(user_spec.get("securityContext") or {}),
    }
    if user_handler:
        extra_env = [e for e in user_handler.get("env") or [] if e.get("name") not in ours_names]
        container["env"] = ours + extra_env
        for key in ("envFrom", "volumeMounts", "ports"):
            if user_handler.get(key):
                container[key] = user_handler[key]
        for key in _HANDLER_MERGE_FIELDS:
            if key in user_handler:
                container[key] = user_handler[key]
        if user_handler.get("command"):
            container["command"] = user_handler["command"]
        if user_handler.get("args"):
            container["args"] = user_handler["args"]

    pod_spec: Body = {k: v for k, v in user_spec.items() if k != "containers"}
    pod_spec["containers"] = [container, *others]
    pod_spec["restartPolicy"] = "Never"
    # Least privilege unless asked: a token only for a job that names an account (or asks
    # for the token), no env variables for every Service of the namespace.
    if "automountServiceAccountToken" not in pod_spec and not (
        pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount")
    ):
        pod_spec["automountServiceAccountToken"] = False
    pod_spec.setdefault("enableServiceLinks", False)
    priority_class = settings.queue(spec.queue).priority_class_name
    if priority_class and "priorityClassName" not in pod_spec:
        pod_spec["priorityClassName"] = priority_class
    return {"metadata": metadata, "spec": pod_spec}


def job_spec(
    bgj: Body,
    spec: BackgroundJobSpec,
    settings: Settings,
    run: int | str,
    parent: tuple[str, Any] | None = None,
) -> Body:
    """The batch/v1 JobSpec: retries, non-retryable exit codes, timeout, pod template."""
    out: Body = {
        # under a retryPolicy every attempt is a Job of its own, made by the operator
        "backoffLimit": 0 if operator_retries(spec) else spec.retries,
        "template": pod_template(bgj, spec, settings, run, parent),
    }
    rules: list[Body] = [
        # A node drain or preemption is not the handler's fault: it does not use a retry.
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
    ]
    if spec.non_retryable_exit_codes:
        rules.insert(
            0,
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": c.HANDLER_CONTAINER,
                    "operator": "In",
                    "values": sorted(set(spec.non_retryable_exit_codes)),
                },
            },
        )
    out["podFailurePolicy"] = {"rules": rules}
    if spec.timeout:
        out["activeDeadlineSeconds"] = max(1, int(parse_duration(spec.timeout).total_seconds()))
    return out


def build_job(
    bgj: Body,
    spec: BackgroundJobSpec,
    settings: Settings,
    run: int,
    parent: tuple[str, Any] | None = None,
) -> Body:
    """The Job of run ``run`` of an Immediate, Delayed or Continuation job."""
    name = job_name(bgj["metadata"]["name"], run)
    labels = child_labels(bgj, spec)
    labels[c.LABEL_RUN] = str(run)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": bgj["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(bgj)],
        },
        "spec": job_spec(bgj, spec, settings, run, parent),
    }


SPEC_HASH_ANNOTATION = f"{c.GROUP}/spec-hash"


def build_cronjob(bgj: Body, spec: BackgroundJobSpec, settings: Settings) -> Body:
    """The CronJob of a Recurring job; its Jobs carry the BackgroundJob's labels."""
    history = spec.history
    cron_spec: Body = {
        "schedule": spec.schedule,
        "timeZone": spec.time_zone or "UTC",
        "concurrencyPolicy": spec.concurrency_policy or "Forbid",
        "suspend": spec.suspend,
        "successfulJobsHistoryLimit": history.succeeded if history else 3,
        "failedJobsHistoryLimit": history.failed if history else 1,
        "jobTemplate": {
            "metadata": {"labels": child_labels(bgj, spec)},
            "spec": job_spec(bgj, spec, settings, "scheduled"),
        },
    }
    if holds_recurring_runs(settings, spec.queue):  # admitted by the operator: heldruns
        cron_spec["jobTemplate"]["spec"]["suspend"] = True
    if spec.starting_deadline:
        cron_spec["startingDeadlineSeconds"] = max(
            1, int(parse_duration(spec.starting_deadline).total_seconds())
        )
    skip_deadline = misfire.skip_deadline_seconds(
        spec.misfire.policy if spec.misfire else None, spec.starting_deadline
    )
    if skip_deadline is not None:  # misfire policy Skip: a late run is a skipped one
        cron_spec["startingDeadlineSeconds"] = skip_deadline
    digest = _short_hash(json.dumps(cron_spec, sort_keys=True), 16)
    # Outside the hash: a spec change that leaves the CronJob as it is (retention, misfire)
    # does not rewrite it, so its runs keep the generation it was last written from.
    cron_spec["jobTemplate"]["metadata"]["annotations"] = {
        c.ANNOTATION_GENERATION: str(bgj["metadata"].get("generation"))
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(bgj["metadata"]["name"]),
            "namespace": bgj["metadata"]["namespace"],
            "labels": child_labels(bgj, spec),
            "annotations": {SPEC_HASH_ANNOTATION: digest},
            "ownerReferences": [owner_reference(bgj)],
        },
        "spec": cron_spec,
    }


def build_triggered_job(bgj: Body, spec: BackgroundJobSpec, settings: Settings, value: str) -> Body:
    """One extra run of a Recurring job (like ``kubectl create job --from=cronjob``)."""
    labels = child_labels(bgj, spec)
    labels[c.LABEL_RUN] = "triggered"
    job_spec_body = job_spec(bgj, spec, settings, "triggered")
    job_spec_body["ttlSecondsAfterFinished"] = int(settings.retention.total_seconds())
    if holds_recurring_runs(settings, spec.queue):
        job_spec_body["suspend"] = True
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": triggered_job_name(bgj["metadata"]["name"], value),
            "namespace": bgj["metadata"]["namespace"],
            "labels": labels,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [owner_reference(bgj)],
        },
        "spec": job_spec_body,
    }
