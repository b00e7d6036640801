"""The operator's check of the installed CRD, against the API server: an older CRD (no
selectableFields) is named in a warning; the current one passes."""

from __future__ import annotations

import asyncio
import logging

import pytest
import yaml
from kubernetes import client
from tests.integration.harness import CRD_FILE, apply_crd

from backgroundjobs.controller import crdcheck
from backgroundjobs.controller.kube import operator_api_client

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("session_operator_paused")]


async def check() -> list[str]:
    """What the operator does at start: warn in the log, and post an Event when outdated."""
    api = await operator_api_client()
    try:
        crd = await crdcheck.installed_crd(api)
        assert crd is not None
        problems = crdcheck.warn_if_outdated(crd)
        if problems:
            await crdcheck.post_outdated_event(api, crd, problems)
        return problems
    finally:
        await api.close()


def crd_events(api_client: client.ApiClient, uid: str) -> list:
    return [
        e
        for e in client.CoreV1Api(api_client)
        .list_namespaced_event(crdcheck.EVENT_NAMESPACE, field_selector=f"involvedObject.uid={uid}")
        .items
        if e.reason == crdcheck.CRD_OUTDATED
    ]


def test_an_older_installed_crd_is_warned_about(
    api_client: client.ApiClient,
    crd: dict,
    kubeconfig: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    assert asyncio.run(check()) == []

    older = yaml.safe_load(CRD_FILE.read_text())
    del older["spec"]["versions"][0]["selectableFields"]
    ext = client.ApiextensionsV1Api(api_client)
    current = ext.read_custom_resource_definition(older["metadata"]["name"])
    older["metadata"]["resourceVersion"] = current.metadata.resource_version
    ext.replace_custom_resource_definition(older["metadata"]["name"], older)
    try:
        with caplog.at_level(logging.WARNING, logger="backgroundjobs.crd"):
            problems = asyncio.run(check())
        assert problems == [
            "selectableFields .spec.handler, .spec.queue, .status.phase, .status.type are missing"
        ]
        assert "kubectl apply --server-side -f crds/" in caplog.text
        # kubectl describe crd shows it too; a second start (the same problems) adds none
        asyncio.run(check())
        (event,) = crd_events(api_client, current.metadata.uid)
        assert event.type == "Warning"
        assert "selectableFields .spec.handler" in event.message
        assert event.involved_object.kind == "CustomResourceDefinition"
    finally:
        apply_crd(api_client)
