"""Reading the job from the handler container's env (set by the operator)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from backgroundjobs.api.constants import (
    ENV_ARGS,
    ENV_HANDLER,
    ENV_HANDLER_MODULES,
    ENV_JOB,
    ENV_KWARGS,
    ENV_NAME,
    ENV_NAMESPACE,
    ENV_PARENT,
    ENV_PARENT_RESULT,
    ENV_RUN,
    ENV_TERMINATION_LOG,
)
from backgroundjobs.runtime._context import CurrentJob
from backgroundjobs.runtime._items import InvalidBatchItem, batch_item
from backgroundjobs.runtime._secrets import InvalidSecretKwargs, secret_kwargs_from_env

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
ENV_CANCEL_GRACE = "BACKGROUNDJOBS_CANCEL_GRACE_SECONDS"
ENV_LOG_LEVEL = "BACKGROUNDJOBS_LOG_LEVEL"
DEFAULT_CANCEL_GRACE = 20.0
# BACKGROUNDJOBS_RUN of a Recurring job's runs, scheduled by its CronJob or triggered: their
# pod template cannot know a run number, and each run is a Job of its own.
RECURRING_RUNS = ("scheduled", "triggered")
# The batch Job a scheduled run belongs to (ENV_JOB, set by the operator from the pod's
# label); else read off the pod's name (HOSTNAME), which the Job controller makes of the
# Job's name and a 5-character suffix.
_POD_OF_JOB = re.compile(r"(?P<job>.+)-[a-z0-9]{5}")


class InvalidJobEnv(ValueError):
    """The env does not describe a job: a missing handler or a value that is not valid JSON."""


def termination_log_path(environ: Mapping[str, str]) -> str:
    return environ.get(ENV_TERMINATION_LOG) or DEFAULT_TERMINATION_LOG


def handler_modules(environ: Mapping[str, str]) -> list[str]:
    raw = environ.get(ENV_HANDLER_MODULES, "")
    return [m.strip() for m in raw.split(",") if m.strip()]


def cancel_grace(environ: Mapping[str, str]) -> float:
    raw = environ.get(ENV_CANCEL_GRACE, "")
    try:
        value = float(raw) if raw else DEFAULT_CANCEL_GRACE
    except ValueError as exc:
        raise InvalidJobEnv(f"{ENV_CANCEL_GRACE}={raw!r} is not a number of seconds") from exc
    return max(value, 0.0)


def job_from_env(environ: Mapping[str, str]) -> CurrentJob:
    """The job described by ``environ``; raises InvalidJobEnv naming the variable at fault."""
    handler = environ.get(ENV_HANDLER, "").strip()
    if not handler:
        raise InvalidJobEnv(f"{ENV_HANDLER} is not set: name the handler to run")
    args = _json(environ, ENV_ARGS, [])
    if not isinstance(args, list):
        raise InvalidJobEnv(f"{ENV_ARGS} must be a JSON array, got {type(args).__name__}")
    kwargs = _json(environ, ENV_KWARGS, {})
    if not isinstance(kwargs, dict):
        raise InvalidJobEnv(f"{ENV_KWARGS} must be a JSON object, got {type(kwargs).__name__}")
    try:
        item = batch_item(environ)
    except InvalidBatchItem as exc:
        raise InvalidJobEnv(str(exc)) from None
    item_index = None
    if item is not None:  # a batch: this pod's item replaces args and kwargs
        item_index, args, kwargs = item
    try:
        secret_kwargs = secret_kwargs_from_env(environ, kwargs)
    except InvalidSecretKwargs as exc:
        raise InvalidJobEnv(str(exc)) from None
    run_raw = environ.get(ENV_RUN, "").strip()
    run: int | None = None
    job: str | None = None
    if run_raw in RECURRING_RUNS:
        job = environ.get(ENV_JOB) or _job_of_pod(environ.get("HOSTNAME", ""))
    elif run_raw:
        try:
            run = int(run_raw)
        except ValueError as exc:
            raise InvalidJobEnv(
                f"{ENV_RUN}={run_raw!r} is neither an integer nor one of {RECURRING_RUNS}"
            ) from exc
    return CurrentJob(
        handler=handler,
        name=environ.get(ENV_NAME) or None,
        namespace=environ.get(ENV_NAMESPACE) or None,
        run=run,
        job=job,
        parent=environ.get(ENV_PARENT) or None,
        parent_result=_json(environ, ENV_PARENT_RESULT, None),
        args=args,
        kwargs=kwargs,
        secret_kwargs=secret_kwargs,
        item=item_index,
    )


def _json(environ: Mapping[str, str], name: str, default: Any) -> Any:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidJobEnv(f"{name} is not valid JSON: {exc}") from exc


def _job_of_pod(pod_name: str) -> str | None:
    match = _POD_OF_JOB.fullmatch(pod_name)
    return match.group("job") if match else None
