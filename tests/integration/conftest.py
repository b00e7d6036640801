"""Integration fixtures: the CRD installed, the operator running as a real process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from tests.integration.bgj import Jobs
from tests.integration.harness import QUEUE_CRD_FILE, OperatorProcess, apply_crd


@pytest.fixture(scope="session")
def crd(api_client: client.ApiClient) -> dict:
    """The generated CRDs applied (created or replaced) and Established: BackgroundJob's
    (returned) and BackgroundJobQueue's."""
    apply_crd(api_client, QUEUE_CRD_FILE)
    return apply_crd(api_client)


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str, crd: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator running against the test cluster for the whole session."""
    op = OperatorProcess(
        kubeconfig,
        tmp_path_factory.mktemp("operator"),
        {
            # a queue with a concurrency limit for the queue tests
            "BACKGROUNDJOBS_QUEUES": '{"limited": {"maxConcurrency": 1}}',
            # The tests create jobs as the cluster's admin, who may create Jobs anyway, as
            # `make run` does; the pod policy is tested with operators of its own
            # (test_tenancy.py), and on by default.
            "BACKGROUNDJOBS_POD_POLICY_CHECK": "false",
        },
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def bgjobs(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Jobs:
    """BackgroundJobs of this test's namespace, with the operator running."""
    return Jobs(api_client, namespace)


@pytest.fixture
def bgjobs_no_operator(api_client: client.ApiClient, namespace: str, crd: dict) -> Jobs:
    """BackgroundJobs of this test's namespace; the operator is not required."""
    return Jobs(api_client, namespace)


@pytest.fixture(scope="module")
def session_operator_paused(operator: OperatorProcess) -> Iterator[None]:
    """The session's operator stopped for a module that runs operators of its own (another
    identity, leader election), so that only those act; started again afterwards."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()
