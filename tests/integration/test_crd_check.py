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
    api = await operator_api_client()
    try:
        crd = await crdcheck.installed_crd(api)
        assert crd is not None
        return crdcheck.warn_if_outdated(crd)
    finally:
        await api.close()


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
    finally:
        apply_crd(api_client)
