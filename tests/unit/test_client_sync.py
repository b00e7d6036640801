"""The client without a cluster: the generated sync facade, configuration, error mapping,
and the create / bulk-enqueue logic against a fake API."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs import Conflict, InvalidArguments, InvalidSpec, JobNotFound, handler
from backgroundjobs._connection import find_source
from backgroundjobs.client import AsyncClient, Client, JobInfo
from backgroundjobs.client._errors import from_api_exception, is_transient
from backgroundjobs.client._sync import public_async_methods
from backgroundjobs.errors import BackgroundJobsError

pytestmark = pytest.mark.unit


@handler("test-client-sync.notify")
def notify(user_id: int, message: str = "") -> None:
    """A handler for the bulk tests."""


def write_kubeconfig(path: Path, namespaces: dict[str, str | None], current: str) -> Path:
    contexts = []
    for name, namespace in namespaces.items():
        context: dict[str, Any] = {"cluster": "c", "user": "u"}
        if namespace:
            context["namespace"] = namespace
        contexts.append({"name": name, "context": context})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": contexts,
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def kubeconfig_file(tmp_path: Path) -> Path:
    return write_kubeconfig(
        tmp_path / "config", {"dev": "shop", "ops": "operations", "bare": None}, "dev"
    )


# ------------------------------------------------------------------ the sync facade


def test_every_async_method_has_a_declared_sync_twin() -> None:
    methods = public_async_methods()
    assert {
        "enqueue",
        "schedule",
        "add_or_update_recurring",
        "remove_recurring",
        "trigger",
        "continue_with",
        "requeue",
        "cancel",
        "delete",
        "get",
        "wait",
        "list",
        "watch",
        "enqueue_many",
        "logs",
        "close",
    } <= set(methods)
    for name, async_method in methods.items():
        sync_method = vars(Client)[name]
        # declared in the class body (so type checkers see it), not patched in at import
        assert not getattr(sync_method, "__backgroundjobs_generated__", False), name
        assert inspect.signature(sync_method) == inspect.signature(async_method), name
        assert sync_method.__doc__ == async_method.__doc__ and sync_method.__doc__, name


def test_every_public_name_has_a_docstring() -> None:
    import backgroundjobs.client as package

    for name in package.__all__:
        obj = getattr(package, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name
    for cls in (AsyncClient, Client, JobInfo):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"


class FakeAsync:
    """Stands in for the AsyncClient behind a Client."""

    def __init__(self) -> None:
        self.namespace = "fake"
        self.closed_iterators = 0
        self.threads: list[str] = []

    async def get(self, name: str, *, namespace: str | None = None) -> str:
        self.threads.append(threading.current_thread().name)
        await asyncio.sleep(0)
        if name == "missing":
            raise JobNotFound(name)
        return f"got {name} in {namespace or self.namespace}"

    async def watch(self, **kwargs: Any) -> AsyncIterator[int]:
        try:
            for i in range(100):
                yield i
        finally:
            self.closed_iterators += 1

    async def close(self) -> None:
        pass


def test_sync_methods_run_on_the_background_loop(kubeconfig_file: Path) -> None:
    with Client(kubeconfig=kubeconfig_file) as jobs:
        fake = FakeAsync()
        jobs._async = fake  # type: ignore[assignment]
        assert jobs.get("a") == "got a in fake"  # type: ignore[comparison-overlap]
        assert jobs.get("b", namespace="x") == "got b in x"  # type: ignore[comparison-overlap]
        with pytest.raises(JobNotFound):
            jobs.get("missing")
        assert fake.threads == ["backgroundjobs-client-loop"] * 3
        items = []
        for item in jobs.watch():
            items.append(item)
            if len(items) == 3:
                break
        assert items == [0, 1, 2]
        # the generator is closed when the loop leaves it, which closes the async one
        import gc

        gc.collect()
        assert fake.closed_iterators == 1


def test_clients_share_one_loop_thread(kubeconfig_file: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    clients = [Client(kubeconfig=kubeconfig_file) for _ in range(5)]
    loops = [t for t in threading.enumerate() if t.name == "backgroundjobs-client-loop"]
    assert len(loops) == 1
    for c in clients:
        c.close()
    assert "backgroundjobs-client-loop" in before | {t.name for t in loops}


def wait_for_child(pid: int, deadline: float = 60.0) -> int:
    """The forked child's exit code; it is killed (and the test fails) if it hangs."""
    import os
    import signal
    import time

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the forked child still ran after {deadline} s: it hung")


def test_a_client_made_before_a_fork_works_in_the_child(kubeconfig_file: Path) -> None:
    """The parent's loop thread does not exist in a forked child: without the fork hook the
    child's first call waits for ever on a loop nobody runs."""
    import os

    jobs = Client(kubeconfig=kubeconfig_file)
    parent_api = jobs._portal.run(jobs.async_client._api())  # the parent's connections
    parent_thread = jobs._portal._thread
    pid = os.fork()
    if pid == 0:  # the child: exit codes say what went wrong, the parent asserts on them
        code = 0
        try:
            if jobs.async_client._api_client is not None:
                code = 3  # the parent's session kept
            else:
                child_api = jobs._portal.run(jobs.async_client._api())
                if child_api is parent_api or jobs._portal._thread is parent_thread:
                    code = 4
                fake = FakeAsync()
                jobs._async = fake  # type: ignore[assignment]
                if jobs.get("a") != "got a in fake":  # type: ignore[comparison-overlap]
                    code = 5
        except BaseException:
            code = 6
        os._exit(code)
    assert wait_for_child(pid) == 0
    # the parent is untouched: same loop thread, same connections
    assert jobs._portal._thread is parent_thread and parent_thread.is_alive()
    assert jobs.async_client._api_client is parent_api
    jobs.close()


# ------------------------------------------------------------------ configuration


def test_namespace_comes_from_the_kubeconfig_context(kubeconfig_file: Path) -> None:
    assert AsyncClient(kubeconfig=kubeconfig_file).namespace == "shop"
    assert AsyncClient(kubeconfig=kubeconfig_file, context="ops").namespace == "operations"
    assert AsyncClient(kubeconfig=kubeconfig_file, context="bare").namespace == "default"
    assert AsyncClient(kubeconfig=kubeconfig_file, namespace="mine").namespace == "mine"
    assert Client(kubeconfig=kubeconfig_file, context="ops").namespace == "operations"


def test_kubeconfig_env_then_home_then_in_cluster(
    kubeconfig_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBECONFIG", f"/nonexistent:{kubeconfig_file}")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert find_source(None, None).kubeconfig == f"/nonexistent:{kubeconfig_file}"
    assert AsyncClient().namespace == "shop"
    monkeypatch.delenv("KUBECONFIG")
    assert find_source(None, None).in_cluster
    assert AsyncClient().namespace == "default"  # no service-account namespace file here
    home_config = tmp_path / "home" / ".kube" / "config"
    home_config.parent.mkdir(parents=True)
    write_kubeconfig(home_config, {"h": "from-home"}, "h")
    assert AsyncClient().namespace == "from-home"


def test_no_configuration_at_all_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(BackgroundJobsError, match="no kubeconfig found"):
        AsyncClient(context="prod")

    async def connect() -> None:
        await AsyncClient().get("x")

    with pytest.raises(BackgroundJobsError, match="cannot load the Kubernetes configuration"):
        asyncio.run(connect())


# ------------------------------------------------------------------ errors


def api_exception(status: int, message: str = "", reason: str = "") -> ApiException:
    exc = ApiException(status=status, reason=reason or "Reason")
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status}).encode()
    return exc


def test_api_errors_become_typed_errors() -> None:
    cel = (
        'BackgroundJob.backgroundjobs.dev "x" is invalid: spec.timeout: Invalid value: "0s":'
        " timeout must be ..."
    )
    error = from_api_exception(api_exception(422, cel), namespace="n")
    assert isinstance(error, InvalidSpec) and str(error) == cel
    assert isinstance(from_api_exception(api_exception(400, "bad")), InvalidSpec)
    assert isinstance(from_api_exception(api_exception(409, "exists")), Conflict)
    missing = from_api_exception(api_exception(404, "nope"), name="x", namespace="n")
    assert (
        isinstance(missing, JobNotFound)
        and str(missing) == 'backgroundjob "x" not found in namespace "n"'
    )
    no_crd = from_api_exception(
        api_exception(404, "the server could not find the requested resource"), namespace="n"
    )
    assert type(no_crd) is BackgroundJobsError and "CRD installed" in str(no_crd)
    assert "not allowed" in str(from_api_exception(api_exception(403, "forbidden")))
    assert is_transient(api_exception(503)) and is_transient(api_exception(429))
    assert not is_transient(api_exception(422)) and is_transient(ConnectionResetError())


# ------------------------------------------------------------------ creates and bulk enqueue


class FakeCustomObjects:
    """The create call of CustomObjectsApi, failing on demand."""

    def __init__(self, failures: dict[str, list[int]] | None = None) -> None:
        self.failures = failures or {}
        self.created: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        name = body["metadata"]["name"]
        self.calls.append(name)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            pending = self.failures.get(name)
            if pending:
                status = pending.pop(0)
                if status == 503:
                    self.created[name] = body  # stored, but the answer is lost
                raise api_exception(status, f"status {status}")
            if name in self.created:
                raise api_exception(409, "already exists")
            self.created[name] = body
            return body
        finally:
            self.in_flight -= 1


def fake_client(
    kubeconfig_file: Path, api: FakeCustomObjects, monkeypatch: pytest.MonkeyPatch
) -> AsyncClient:
    client = AsyncClient(kubeconfig=kubeconfig_file, namespace="bulk")

    async def custom() -> FakeCustomObjects:
        return api

    monkeypatch.setattr(client, "_custom", custom)
    monkeypatch.setattr("backgroundjobs.client._async.random.uniform", lambda a, b: 0.0)
    return client


def test_a_create_retried_after_a_lost_answer_is_not_duplicated(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects({"welcome": [503]})
    client = fake_client(kubeconfig_file, api, monkeypatch)
    assert asyncio.run(client.enqueue(notify, 1, name="welcome")) == "welcome"
    assert api.calls == ["welcome", "welcome"] and list(api.created) == ["welcome"]


def test_an_explicit_name_that_exists_is_a_conflict(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects()
    client = fake_client(kubeconfig_file, api, monkeypatch)
    asyncio.run(client.enqueue(notify, 1, name="welcome"))
    with pytest.raises(Conflict):
        asyncio.run(client.enqueue(notify, 2, name="welcome"))


def test_a_generated_name_collision_picks_another_name(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects()
    client = fake_client(kubeconfig_file, api, monkeypatch)
    names = iter(["test-client-sync-notify-aaaaa", "test-client-sync-notify-bbbbb"])
    monkeypatch.setattr("backgroundjobs.client._async.generate_name", lambda handler: next(names))
    api.created["test-client-sync-notify-aaaaa"] = {}
    assert asyncio.run(client.enqueue(notify, 1)) == "test-client-sync-notify-bbbbb"


def test_bad_arguments_create_nothing(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects()
    client = fake_client(kubeconfig_file, api, monkeypatch)
    with pytest.raises(InvalidArguments, match="parameter 'user_id'"):
        asyncio.run(client.enqueue(notify, "not-a-number"))
    with pytest.raises(InvalidArguments, match="given twice"):
        asyncio.run(client.enqueue(notify, 1, message="a", handler_kwargs={"message": "b"}))
    with pytest.raises(InvalidSpec, match="exactly one of delay"):
        asyncio.run(client.schedule(notify, 1))
    assert api.calls == []


def test_handler_kwargs_reach_a_parameter_named_like_an_option(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects()
    client = fake_client(kubeconfig_file, api, monkeypatch)
    name = asyncio.run(
        client.enqueue("elsewhere.h", queue="critical", handler_kwargs={"queue": "inbox"})
    )
    spec = api.created[name]["spec"]
    assert spec["queue"] == "critical" and spec["kwargs"] == {"queue": "inbox"}


def test_enqueue_many_keeps_order_isolates_failures_and_bounds_concurrency(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects({"batch-7": [500, 500, 500, 500], "batch-3": [503]})
    client = fake_client(kubeconfig_file, api, monkeypatch)
    items: list[Any] = [((i,), {"message": f"hi {i}"}) for i in range(50)]
    items[5] = (("five",), {})  # fails validation
    items[9] = "not a pair"
    progress: list[tuple[int, int]] = []
    results = asyncio.run(
        client.enqueue_many(
            notify,
            items,
            concurrency=4,
            name_prefix="batch",
            queue="low",
            on_progress=lambda done, total: progress.append((done, total)),
        )
    )
    assert len(results) == 50
    assert isinstance(results[5], InvalidArguments) and "parameter 'user_id'" in str(results[5])
    assert isinstance(results[9], InvalidArguments) and "item 9" in str(results[9])
    assert isinstance(results[7], BackgroundJobsError) and "500" in str(results[7])
    ok = [i for i, r in enumerate(results) if isinstance(r, str)]
    assert ok == [i for i in range(50) if i not in (5, 7, 9)]
    assert all(results[i] == f"batch-{i}" for i in ok)
    assert api.calls.count("batch-3") == 2 and "batch-3" in api.created  # retried, once
    assert api.max_in_flight <= 4
    assert progress[-1] == (50, 50) and len(progress) == 50
    body = api.created["batch-0"]
    assert body["metadata"]["labels"]["backgroundjobs.dev/batch"] == "batch"
    assert body["spec"] == {
        "handler": "test-client-sync.notify",
        "args": [0],
        "kwargs": {"message": "hi 0"},
        "queue": "low",
    }


def test_enqueue_many_default_names_and_limits(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects()
    client = fake_client(kubeconfig_file, api, monkeypatch)
    results = asyncio.run(
        client.enqueue_many("unregistered.mail", [(("a",), {}), (("b",), {})], subject="common")
    )
    assert all(isinstance(r, str) for r in results)
    first, second = (str(r) for r in results)
    assert (
        first.startswith("unregistered-mail-")
        and first.endswith("-0")
        and second == first[:-1] + "1"
    )
    assert api.created[first]["spec"]["kwargs"] == {"subject": "common"}
    assert asyncio.run(client.enqueue_many("unregistered.mail", [])) == []
    with pytest.raises(InvalidSpec, match="too long"):
        asyncio.run(client.enqueue_many("unregistered.mail", [((), {})] * 10, name_prefix="x" * 51))
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(client.enqueue_many("unregistered.mail", [], concurrency=0))


def test_a_failing_progress_callback_stops_the_bulk_enqueue(
    kubeconfig_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects()
    client = fake_client(kubeconfig_file, api, monkeypatch)

    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        if done == 3:
            raise Stop

    async def run() -> None:
        items = [((i,), {}) for i in range(100)]
        with pytest.raises(Stop):
            await client.enqueue_many(notify, items, concurrency=2, on_progress=stop)
        await asyncio.sleep(0.05)

    asyncio.run(run())
    assert len(api.calls) < 10
