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
from backgroundjobs.controller.kube import response_json

log = logging.getLogger("backgroundjobs.crd")
Body = dict[str, Any]


def crd_shortcomings(crd: Body) -> list[str]:
    """What the installed CRD lacks compared with this operator's (empty: nothing)."""
    versions = (crd.get("spec") or {}).get("versions") or []
    version = next((v for v in versions if v.get("name") == c.VERSION), None)
    if version is None or not version.get("served"):
        return [f"version {c.VERSION} is not served"]
    have = {field.get("jsonPath") for field in version.get("selectableFields") or []}
    missing = [f".{path}" for path in c.SELECTABLE_FIELDS.values() if f".{path}" not in have]
    if missing:
        return [f"selectableFields {', '.join(missing)} are missing"]
    return []


async def warn_if_outdated(api: client.ApiClient) -> list[str]:
    """Read the installed CRD and log a warning naming what it lacks; what it lacks."""
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
        return []
    items = found.get("items") or []
    if not items:
        return []  # kopf reports a missing CRD itself
    problems = crd_shortcomings(items[0])
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
