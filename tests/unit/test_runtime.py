"""The job runtime (``python -m backgroundjobs.runtime``), run as the container would run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backgroundjobs.runtime._env import InvalidJobEnv, job_from_env
from backgroundjobs.runtime._secrets import Redactor

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

HANDLERS = """
import asyncio
import logging
import time
from pathlib import Path

from pydantic import BaseModel

from backgroundjobs import PermanentError, handler
from backgroundjobs.runtime import cancelled, current_job, parent_result, progress


class Point(BaseModel):
    x: int
    y: int


@handler("t.add")
def add(a: int, b: int = 1) -> int:
    return a + b


@handler("t.model")
def model(p: Point, tags: list[str] | None = None) -> dict:
    return {"sum": p.x + p.y, "tags": tags or []}


@handler("t.boom")
def boom() -> None:
    raise RuntimeError("boom happened")


@handler("t.permanent")
def permanent() -> None:
    raise PermanentError("card declined")


@handler("t.async_add")
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@handler("t.big")
def big(n: int) -> str:
    return "x" * n


@handler("t.progress")
def with_progress() -> str:
    for i in range(3):
        progress(i + 1, 3, f"step {i + 1}")
    return "ok"


@handler("t.parent")
def parent() -> dict:
    job = current_job()
    return {"parent": job.parent if job else None, "result": parent_result()}


@handler("t.log")
def log_it() -> None:
    logging.getLogger("user.code").warning("hello %s", "world", extra={"order": 42})


@handler("t.sync_wait")
def sync_wait(marker: str) -> str:
    Path(marker + ".ready").touch()
    while not cancelled():
        time.sleep(0.02)
    Path(marker).write_text("sync saw cancellation")
    return "stopped early"


@handler("t.async_wait")
async def async_wait(marker: str) -> str:
    Path(marker + ".ready").touch()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        Path(marker).write_text("async task cancelled")
        raise
    return "not reached"


@handler("t.stubborn")
def stubborn(marker: str) -> None:
    Path(marker + ".ready").touch()
    time.sleep(3600)


def plain(x: int) -> int:
    return x * 2


@handler("t.login")
def login(user: str, password: str) -> dict:
    logging.getLogger("user.code").info("logging in %s with %s", user, password)
    if password != "correct horse":
        raise RuntimeError(f"wrong password {password!r} for {user}")
    return {"user": user, "echo": password, "quoted": f'"{password}"'}
"""


@dataclass
class Run:
    code: int
    termination_log: str | None
    records: list[dict[str, Any]]
    stderr: str
    stdout: str

    def result(self) -> Any:
        assert self.termination_log is not None
        return json.loads(self.termination_log)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == event]


@pytest.fixture(scope="module")
def handlers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("handlers")
    (directory / "handlers_for_test.py").write_text(textwrap.dedent(HANDLERS))
    return directory


@pytest.fixture
def job_env(handlers_dir: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKGROUNDJOBS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(handlers_dir), str(ROOT / "operator")])
    env["BACKGROUNDJOBS_HANDLER_MODULES"] = "handlers_for_test"
    env["BACKGROUNDJOBS_TERMINATION_LOG"] = str(tmp_path / "termination-log")
    env["BACKGROUNDJOBS_NAME"] = "welcome-mail"
    env["BACKGROUNDJOBS_NAMESPACE"] = "shop"
    env["BACKGROUNDJOBS_RUN"] = "3"
    return env


def _spawn(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "backgroundjobs.runtime"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(proc: subprocess.Popen[str], env: dict[str, str], timeout: float = 60) -> Run:
    stdout, stderr = proc.communicate(timeout=timeout)
    log_path = Path(env["BACKGROUNDJOBS_TERMINATION_LOG"])
    records = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    return Run(
        code=proc.returncode,
        termination_log=log_path.read_text() if log_path.exists() else None,
        records=records,
        stderr=stderr,
        stdout=stdout,
    )


def run_job(
    env: dict[str, str],
    tmp_path: Path,
    handler: str,
    args: Any = None,
    kwargs: Any = None,
    **extra: str,
) -> Run:
    env = dict(env, BACKGROUNDJOBS_HANDLER=handler)
    if args is not None:
        env["BACKGROUNDJOBS_ARGS"] = json.dumps(args)
    if kwargs is not None:
        env["BACKGROUNDJOBS_KWARGS"] = json.dumps(kwargs)
    env.update(extra)
    return _collect(_spawn(env, tmp_path), env)


def test_success_writes_the_json_result_to_the_termination_log(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.add", args=["2"], kwargs={"b": 5})
    assert run.code == 0, run.stderr
    assert run.result() == 7  # "2" coerced to int by pydantic
    (succeeded,) = run.events("succeeded")
    assert succeeded["result"] == 7


def test_pydantic_model_arguments_are_validated_and_built(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.model", kwargs={"p": {"x": 1, "y": 2}, "tags": ["a"]})
    assert run.code == 0, run.stderr
    assert run.result() == {"sum": 3, "tags": ["a"]}


def test_an_exception_exits_1_with_an_error_record(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.boom")
    assert run.code == 1
    assert run.result() == {"error": "boom happened", "type": "RuntimeError", "exitCode": 1}
    (failed,) = run.events("failed")
    assert failed["level"] == "error"
    assert "RuntimeError: boom happened" in failed["exception"]


def test_a_permanent_error_exits_2(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.permanent")
    assert run.code == 2
    assert run.result()["type"] == "PermanentError"
    assert run.result()["error"] == "card declined"


def test_an_unknown_handler_exits_2_and_names_the_registered_ones(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "mail.nope")
    assert run.code == 2
    error = run.result()
    assert error["type"] == "UnknownHandler"
    assert "mail.nope" in error["error"] and "t.add" in error["error"]


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (["not a number"], None, "parameter 'a': Input should be a valid integer"),
        ([], None, "missing a required argument: 'a'"),
        ([1], {"c": 2}, "unexpected keyword argument 'c'"),
        ([1, 2, 3], None, "too many positional arguments"),
    ],
)
def test_invalid_arguments_exit_2(job_env, tmp_path, args, kwargs, expected):
    run = run_job(job_env, tmp_path, "t.add", args=args, kwargs=kwargs)
    assert run.code == 2
    assert run.result()["type"] == "InvalidArguments"
    assert expected in run.result()["error"]


def test_invalid_nested_model_argument_names_the_field(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.model", kwargs={"p": {"x": 1, "y": "two"}})
    assert run.code == 2
    assert "parameter 'p' at y: Input should be a valid integer" in run.result()["error"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BACKGROUNDJOBS_ARGS", "[1,", "BACKGROUNDJOBS_ARGS is not valid JSON"),
        ("BACKGROUNDJOBS_ARGS", '{"a": 1}', "BACKGROUNDJOBS_ARGS must be a JSON array"),
        ("BACKGROUNDJOBS_KWARGS", "[1]", "BACKGROUNDJOBS_KWARGS must be a JSON object"),
        ("BACKGROUNDJOBS_PARENT_RESULT", "{oops", "BACKGROUNDJOBS_PARENT_RESULT is not valid"),
        ("BACKGROUNDJOBS_RUN", "three", "BACKGROUNDJOBS_RUN='three' is neither an integer nor"),
    ],
)
def test_a_bad_env_exits_2(job_env, tmp_path, variable, value, expected):
    run = run_job(job_env, tmp_path, "t.add", args=[1], **{variable: value})
    assert run.code == 2
    assert run.result()["type"] == "InvalidJobEnv"
    assert expected in run.result()["error"]


def test_no_handler_in_the_env_exits_2(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "")
    assert run.code == 2
    assert "BACKGROUNDJOBS_HANDLER is not set" in run.result()["error"]


def test_a_module_function_handler_needs_no_registration(job_env, tmp_path):
    run = run_job(
        job_env, tmp_path, "handlers_for_test:plain", args=[21], BACKGROUNDJOBS_HANDLER_MODULES=""
    )
    assert run.code == 0, run.stderr
    assert run.result() == 42


def test_a_module_function_handler_whose_module_is_missing_exits_2(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "no_such_module:fn")
    assert run.code == 2
    assert run.result()["type"] == "HandlerImportError"
    assert "no_such_module" in run.result()["error"]


def test_a_handler_module_that_fails_to_import_exits_2(job_env, tmp_path):
    run = run_job(
        job_env,
        tmp_path,
        "t.add",
        args=[1],
        BACKGROUNDJOBS_HANDLER_MODULES="handlers_for_test,nope",
    )
    assert run.code == 2
    assert "cannot import handler module 'nope'" in run.result()["error"]


def test_an_async_handler_runs_on_an_event_loop(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.async_add", args=[2, 3])
    assert run.code == 0, run.stderr
    assert run.result() == 5


def test_a_result_of_exactly_4096_bytes_is_accepted(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.big", args=[4094])  # + 2 quotes = 4096 bytes of JSON
    assert run.code == 0, run.stderr
    assert len(run.termination_log or "") == 4096


def test_a_result_over_4_kib_fails_and_is_never_truncated(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.big", args=[5000])
    assert run.code == 1
    error = run.result()
    assert error["type"] == "ResultTooLarge"
    assert "too large" in error["error"] and "5002 bytes" in error["error"]
    assert "xxxx" not in (run.termination_log or "")


def test_progress_records_are_logged(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.progress")
    assert run.code == 0, run.stderr
    progress = [(r["done"], r["total"], r["message"]) for r in run.events("progress")]
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


def test_the_parent_result_is_available_to_a_continuation(job_env, tmp_path):
    run = run_job(
        job_env,
        tmp_path,
        "t.parent",
        BACKGROUNDJOBS_PARENT="report-42",
        BACKGROUNDJOBS_PARENT_RESULT=json.dumps({"path": "/reports/42.pdf"}),
    )
    assert run.code == 0, run.stderr
    assert run.result() == {"parent": "report-42", "result": {"path": "/reports/42.pdf"}}


def test_every_log_line_is_json_carrying_the_job(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.log")
    assert run.code == 0, run.stderr
    assert run.records, "no log records"
    for record in run.records:
        assert record["job"] == "welcome-mail"
        assert record["namespace"] == "shop"
        assert record["run"] == 3
        assert record["handler"] == "t.log"
        assert {"time", "level", "message"} <= record.keys()
    (user,) = [r for r in run.records if r["logger"] == "user.code"]
    assert user["message"] == "hello world"
    assert user["level"] == "warning"
    assert user["order"] == 42


def test_an_unwritable_termination_log_is_a_warning_not_a_failure(job_env, tmp_path):
    missing = str(tmp_path / "no" / "such" / "dir" / "log")
    run = run_job(job_env, tmp_path, "t.add", args=[1], BACKGROUNDJOBS_TERMINATION_LOG=missing)
    assert run.code == 0
    assert run.events("termination_log_unwritable")


def _start_and_terminate(
    env: dict[str, str], tmp_path: Path, handler: str, **extra: str
) -> tuple[Run, Path]:
    marker = tmp_path / "marker"
    env = dict(env, BACKGROUNDJOBS_HANDLER=handler, **extra)
    env["BACKGROUNDJOBS_KWARGS"] = json.dumps({"marker": str(marker)})
    proc = _spawn(env, tmp_path)
    ready = Path(str(marker) + ".ready")
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the handler never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    return _collect(proc, env), marker


def test_sigterm_cancels_a_sync_handler_that_polls_cancelled(job_env, tmp_path):
    run, marker = _start_and_terminate(job_env, tmp_path, "t.sync_wait")
    assert run.code == 143
    assert marker.read_text() == "sync saw cancellation"
    assert run.result() == {"error": "cancelled by SIGTERM", "type": "Cancelled", "exitCode": 143}
    assert run.events("cancelled")


def test_sigterm_cancels_an_async_handlers_task(job_env, tmp_path):
    run, marker = _start_and_terminate(job_env, tmp_path, "t.async_wait")
    assert run.code == 143
    assert marker.read_text() == "async task cancelled"
    assert run.result()["type"] == "Cancelled"


def test_a_handler_that_ignores_sigterm_is_abandoned_after_the_grace_period(job_env, tmp_path):
    started = time.monotonic()
    run, _ = _start_and_terminate(
        job_env, tmp_path, "t.stubborn", BACKGROUNDJOBS_CANCEL_GRACE_SECONDS="0.5"
    )
    assert run.code == 143
    assert "did not stop within the grace period" in run.result()["error"]
    assert time.monotonic() - started < 30  # the handler itself would sleep an hour


def test_the_runtime_imports_neither_kopf_nor_kubernetes(job_env):
    code = (
        "import sys, backgroundjobs.runtime; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('kopf', 'kubernetes', 'kubernetes_asyncio', 'aiohttp')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=job_env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", (
        "importing backgroundjobs.runtime pulled in the Kubernetes client; every job pod pays "
        "for that at start-up (backgroundjobs/__init__.py should import the client lazily)"
    )


# In-process checks of the pure parts.


def test_job_from_env_reads_the_operators_variables():
    job = job_from_env(
        {
            "BACKGROUNDJOBS_HANDLER": "mail.send",
            "BACKGROUNDJOBS_ARGS": '["a@b.c"]',
            "BACKGROUNDJOBS_KWARGS": '{"subject": "Hi"}',
            "BACKGROUNDJOBS_NAME": "welcome",
            "BACKGROUNDJOBS_NAMESPACE": "shop",
            "BACKGROUNDJOBS_RUN": "2",
        }
    )
    assert (job.handler, job.args, job.kwargs) == ("mail.send", ["a@b.c"], {"subject": "Hi"})
    assert job.key == "shop/welcome/2"
    with pytest.raises(InvalidJobEnv):
        job_from_env({})


@pytest.mark.parametrize("run", ["scheduled", "triggered"])
@pytest.mark.parametrize(
    ("extra", "key"),
    [
        # The pod's name is the Job's and a 5-character suffix (the Job controller's).
        ({"HOSTNAME": "nightly-29933102-z5ftr"}, "shop/nightly/nightly-29933102"),
        ({"HOSTNAME": "x", "BACKGROUNDJOBS_JOB": "nightly-1"}, "shop/nightly/nightly-1"),
        ({"HOSTNAME": "no-suffix"}, "shop/nightly/0"),
    ],
)
def test_a_run_of_a_recurring_job_is_keyed_by_its_job(run, extra, key):
    from backgroundjobs.runtime._env import job_from_env

    env = {
        "BACKGROUNDJOBS_HANDLER": "t.add",
        "BACKGROUNDJOBS_NAME": "nightly",
        "BACKGROUNDJOBS_NAMESPACE": "shop",
        "BACKGROUNDJOBS_RUN": run,
        **extra,
    }
    job = job_from_env(env)
    assert job.run is None
    assert job.key == key


# ------------------------------------------------------------------ secret keyword arguments
SECRET_ENV = {"BACKGROUNDJOBS_SECRET_KWARGS": "password"}


def secret(value: str) -> dict[str, str]:
    return {**SECRET_ENV, "BACKGROUNDJOBS_SECRET_KWARG_password": value}


def test_a_secret_kwarg_reaches_the_handler_and_nothing_it_writes(job_env, tmp_path):
    run = run_job(job_env, tmp_path, "t.login", kwargs={"user": "ann"}, **secret("correct horse"))
    assert run.code == 0, run.stderr
    assert run.result() == {"user": "ann", "echo": "<secret>", "quoted": '"<secret>"'}
    assert "correct horse" not in run.stderr and "correct horse" not in run.termination_log
    (logged,) = [r for r in run.records if r["logger"] == "user.code"]
    assert logged["message"] == "logging in ann with <secret>"


def test_a_failure_quoting_a_secret_kwarg_does_not_carry_it(job_env, tmp_path):
    value = 'tr0ub4dor "&3"'  # quotes and spaces: redacted as written and as JSON writes it
    run = run_job(job_env, tmp_path, "t.login", kwargs={"user": "ann"}, **secret(value))
    assert run.code == 1
    assert run.result()["error"] == "wrong password '<secret>' for ann"
    assert value not in run.stderr and json.dumps(value)[1:-1] not in run.stderr
    (failed,) = run.events("failed")
    assert "<secret>" in failed["exception"]


def test_an_invalid_secret_kwarg_is_refused_without_its_value(job_env, tmp_path):
    run = run_job(
        job_env, tmp_path, "t.add", args=[1], BACKGROUNDJOBS_SECRET_KWARGS="b",
        BACKGROUNDJOBS_SECRET_KWARG_b="not-a-number",
    )  # fmt: skip
    assert run.code == 2
    error = run.result()["error"]
    assert "parameter 'b': Input should be a valid integer" in error and "<secret>" in error
    assert "not-a-number" not in run.stderr + run.termination_log


@pytest.mark.parametrize(
    ("extra", "kwargs", "expected"),
    [
        (SECRET_ENV, {"user": "ann"}, "BACKGROUNDJOBS_SECRET_KWARG_password is not set"),
        (secret("x" * 8), {"user": "ann", "password": "y"}, "given both in spec.kwargs and in"),
    ],
)
def test_a_secret_kwarg_missing_or_given_twice_exits_2(job_env, tmp_path, extra, kwargs, expected):
    run = run_job(job_env, tmp_path, "t.login", kwargs=kwargs, **extra)
    assert run.code == 2
    assert run.result()["type"] == "InvalidJobEnv"
    assert expected in run.result()["error"]


def test_job_info_never_shows_secret_kwargs():
    job = job_from_env(
        {"BACKGROUNDJOBS_HANDLER": "h", **secret("correct horse"), "BACKGROUNDJOBS_KWARGS": "{}"}
    )
    assert job.secret_kwargs == {"password": "correct horse"}
    assert job.kwargs == {} and "correct horse" not in repr(job)


def test_short_values_are_not_redacted():
    """A value under four characters would blank ordinary words, and hides little."""
    redactor = Redactor(["abc", "s3cr3t"])
    assert redactor.text("abc s3cr3t") == "abc <secret>"
