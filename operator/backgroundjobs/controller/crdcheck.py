"""Does the installed BackgroundJob CRD have what this operator expects? An older one (the
chart's CRDs are not upgraded by ``helm upgrade``) still works, with less: a warning says
what is missing and how to update it."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs._version import __version__
from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import ConditionType
from backgroundjobs.controller.kube import event_body, response_json

log = logging.getLogger("backgroundjobs.crd")
Body = dict[str, Any]


KSTATUS_CONDITIONS = (ConditionType.RECONCILING, ConditionType.STALLED)


def crd_shortcomings(crd: Body) -> list[str]:
    """What the installed CRD lacks compared with this operator's (empty: nothing)."""
    versions = (crd.get("spec") or {}).get("versions") or []
    version = next((v for v in versions if v.get("name") == c.VERSION), None)
    if version is None or not version.get("served"):
        return [f"version {c.VERSION} is not served"]
    problems = []
    have = {field.get("jsonPath") for field in version.get("selectableFields") or []}
    missing = [f".{path}" for path in c.SELECTABLE_FIELDS.values() if f".{path}" not in have]
    if missing:
        problems.append(f"selectableFields {', '.join(missing)} are missing")
    if not accepts_kstatus_conditions(crd):
        problems.append(
            "condition types Reconciling and Stalled are refused (GitOps tools that use"
            " kstatus cannot tell a failed job from a current one)"
        )
    return problems


def accepts_kstatus_conditions(crd: Body) -> bool:
    """Whether the CRD's schema lets status.conditions hold Reconciling and Stalled (a CRD
    from before them lists the condition types in an enum without them)."""
    versions = (crd.get("spec") or {}).get("versions") or []
    version = next((v for v in versions if v.get("name") == c.VERSION), None)
    schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema") or {}
    path = ("properties", "status", "properties", "conditions", "items", "properties", "type")
    node: Any = schema
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    enum = node.get("enum") if isinstance(node, dict) else None
    return enum is None or all(ctype.value in enum for ctype in KSTATUS_CONDITIONS)


async def installed_crd(api: client.ApiClient) -> Body | None:
    """The installed BackgroundJob CRD as raw JSON; None when absent or not readable."""
    extensions: Any = client.ApiextensionsV1Api(api)
    try:
        # raw JSON: a client whose models predate a field would drop it and make us warn
        found = await response_json(
            await extensions.list_custom_resource_definition(
                field_selector=f"metadata.name={c.CRD_NAME}", _preload_content=False
            )
        )
    except ApiException as exc:  # e.g. namespaced RBAC without CRD access: nothing to say
        log.debug("cannot read the CRD %s to check it (%s)", c.CRD_NAME, exc.status)
        return None
    items = found.get("items") or []
    return items[0] if items else None  # kopf reports a missing CRD itself


def warn_if_outdated(crd: Body) -> list[str]:
    """Log a warning naming what the installed CRD lacks; what it lacks (see also
    ``post_outdated_event``)."""
    problems = crd_shortcomings(crd)
    if problems:
        log.warning(
            "the installed CRD %s is older than this operator (%s): %s. It still works, with"
            " less (the client filters lists itself). Update it: kubectl apply --server-side"
            " -f crds/ (or the chart's crds/ directory) of backgroundjobs %s",
            c.CRD_NAME,
            __version__,
            "; ".join(problems),
            __version__,
        )
    return problems


# Events about cluster-scoped objects live in the default namespace (as kubectl describe
# looks for them there).
EVENT_NAMESPACE = "default"
CRD_OUTDATED = "CRDOutdated"


def outdated_message(problems: list[str]) -> str:
    return (
        f"older than the operator (backgroundjobs {__version__}): {'; '.join(problems)}."
        " Update it: kubectl apply --server-side -f crds/ of that version"
    )


async def post_outdated_event(api: client.ApiClient, crd: Body, problems: list[str]) -> None:
    """A Warning Event on the CRD itself, so that ``kubectl describe crd`` and event-based
    alerting show it, not only the operator's log. Deterministic name: a restarted operator
    does not post it twice. Best effort: an operator without rights in the default
    namespace still logs the warning."""
    meta = crd.get("metadata") or {}
    involved = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    message = outdated_message(problems)
    event = event_body(meta, involved, EVENT_NAMESPACE, "Warning", CRD_OUTDATED, message)
    core: Any = client.CoreV1Api(api)
    try:
        resp = await core.create_namespaced_event(EVENT_NAMESPACE, event, _preload_content=False)
        resp.release()
    except ApiException as exc:
        if exc.status != 409:  # 409: posted before, by this operator or an earlier start
            log.debug("the %s Event was not posted (%s)", CRD_OUTDATED, exc.status)


async def warn_if_no_queue_crd(api: client.ApiClient) -> bool:
    """Log a warning when the BackgroundJobQueue CRD is not installed (``helm upgrade`` does
    not add new CRDs): jobs then use the operator's queue defaults. Whether it is there."""
    extensions: Any = client.ApiextensionsV1Api(api)
    try:
        found = await response_json(
            await extensions.list_custom_resource_definition(
                field_selector=f"metadata.name={c.QUEUE_CRD_NAME}", _preload_content=False
            )
        )
    except ApiException as exc:
        log.debug("cannot read the CRD %s to check it (%s)", c.QUEUE_CRD_NAME, exc.status)
        return True
    if found.get("items"):
        return True
    log.warning(
        "the CRD %s is not installed: every queue uses the operator's defaults"
        " (BACKGROUNDJOBS_QUEUES). Install it: kubectl apply --server-side -f crds/ of"
        " backgroundjobs %s",
        c.QUEUE_CRD_NAME,
        __version__,
    )
    return False
