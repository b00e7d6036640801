"""Requeue with changes (issue 17 item 5): the new arguments, image, env or resources and the
requeue request go to the API server as ONE JSON patch, which also pins the object's
resourceVersion. The API server applies all of it or nothing (a refused field, a 403, a
409 when someone wrote the object since it was read), so no reconcile ever sees the new
spec without the request or the request without the new spec."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backgroundjobs._credentials import SecretKey
from backgroundjobs.api.constants import ANNOTATION_REQUEUE, FINISHED_PHASES, HANDLER_CONTAINER
from backgroundjobs.client._arguments import prepare_call
from backgroundjobs.errors import BackgroundJobsError, InvalidArguments


@dataclass(frozen=True)
class RequeueChanges:
    """What a requeue changes before the new run; None or empty: unchanged."""

    args: Sequence[Any] | None = None
    """The new positional arguments (they replace the old ones)."""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments set over the old ones (a key not given keeps its value)."""
    image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables of the handler container, set over the old ones."""
    resources: Mapping[str, Any] | None = None
    """The handler container's resources: each key given ("requests", "limits") replaces
    its old value."""

    def empty(self) -> bool:
        return (
            self.args is None
            and not self.kwargs
            and self.image is None
            and not self.env
            and self.resources is None
        )


def changed_spec(spec: Mapping[str, Any], changes: RequeueChanges) -> dict[str, Any]:
    """The spec fields the changes give new values (camelCase, as stored). The arguments are
    checked as ``enqueue`` checks them (``InvalidArguments``)."""
    out: dict[str, Any] = {}
    if changes.args is not None or changes.kwargs:
        if spec.get("items") is not None:
            raise InvalidArguments("a batch's arguments are its items: they cannot be changed")
        secrets = {
            ref["name"]: SecretKey(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            for ref in spec.get("kwargsFrom") or []
        }
        kwargs = {**(spec.get("kwargs") or {}), **secrets, **changes.kwargs}
        args = list(spec.get("args") or []) if changes.args is None else list(changes.args)
        call = prepare_call(str(spec.get("handler", "")), args, kwargs)
        out["args"] = call.args
        out["kwargs"] = call.kwargs
        if call.kwargs_from or "kwargsFrom" in spec:
            out["kwargsFrom"] = call.kwargs_from_spec()
    if changes.image is not None:
        out["image"] = changes.image
    if changes.env or changes.resources is not None:
        out["podTemplate"] = _with_handler_container(spec.get("podTemplate"), changes)
    return out


def _with_handler_container(template: Any, changes: RequeueChanges) -> dict[str, Any]:
    """``podTemplate`` with the env and resources set on its ``handler`` container."""
    out: dict[str, Any] = copy.deepcopy(template) if isinstance(template, dict) else {}
    containers = out.setdefault("spec", {}).setdefault("containers", [])
    handler = next((c for c in containers if c.get("name") == HANDLER_CONTAINER), None)
    if handler is None:
        handler = {"name": HANDLER_CONTAINER}
        containers.append(handler)
    if changes.env:
        kept = [v for v in handler.get("env") or [] if v.get("name") not in changes.env]
        handler["env"] = kept + [{"name": k, "value": v} for k, v in changes.env.items()]
    if changes.resources is not None:
        handler["resources"] = {**(handler.get("resources") or {}), **changes.resources}
    return out


def check_requeueable(obj: Mapping[str, Any]) -> None:
    """Refuse changes to a job the operator would not requeue (one not finished: it would
    take the new spec but ignore the request). The patch pins the resourceVersion this was
    read at, so the job is still finished when the changes land."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("schedule") is not None:
        return  # a Recurring job's requeue is an extra run now, whatever its last run does
    phase = status.get("phase")
    if phase not in FINISHED_PHASES:
        name = (obj.get("metadata") or {}).get("name")
        raise BackgroundJobsError(
            f"backgroundjob {name} is {phase or 'Pending'}: only a finished job can be requeued"
            " with changes (wait for it, or cancel it first); nothing was changed"
        )


def requeue_patch(obj: Mapping[str, Any], spec: Mapping[str, Any], request: str) -> list[Any]:
    """The JSON patch (RFC 6902) of a requeue with changes: the object's resourceVersion
    (the API server answers 409 when it moved on), the new spec fields, the annotation."""
    meta = obj.get("metadata") or {}
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}
    ]
    if not meta.get("annotations"):
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    key = ANNOTATION_REQUEUE.replace("~", "~0").replace("/", "~1")
    ops.append({"op": "add", "path": f"/metadata/annotations/{key}", "value": request})
    ops.extend({"op": "add", "path": f"/spec/{k}", "value": v} for k, v in spec.items())
    return ops
