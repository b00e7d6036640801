"""The built images, run for real with Docker: read-only root filesystem, user 65532."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from tests.e2e.docker_jobs import NONROOT, JobRunner, collect
from tests.e2e.smtp_sink import SmtpSink

pytestmark = pytest.mark.e2e

HOUR = 3600


def _inspect(image: str) -> dict:
    out = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)[0]["Config"]


@pytest.mark.parametrize("kind", ["base", "examples", "operator"])
def test_images_run_as_non_root_without_a_shell_entrypoint(images, kind):
    config = _inspect(images[kind])
    assert config["User"] == f"{NONROOT}:{NONROOT}"
    assert config["Entrypoint"][0] == "python3"  # exec form: no shell at run time
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]


def test_the_examples_image_lists_its_handler_modules(images):
    env = dict(e.split("=", 1) for e in _inspect(images["examples"])["Env"])
    assert env["BACKGROUNDJOBS_HANDLER_MODULES"].startswith("bgj_examples.")


def test_echo_succeeds_as_uid_65532_on_a_read_only_root(job_runner: JobRunner):
    run = job_runner.run("test.echo", ["hello from e2e"], {"sleep": 0.2}, name="echo-1", run=4)
    assert run.code == 0, run.stderr
    result = run.result()
    assert result["message"] == "hello from e2e"
    assert result["uid"] == NONROOT
    assert result["run"] == 4
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines and len(run.records) == len(lines), "every log line is JSON"
    assert all(r["job"] == "echo-1" and r["run"] == 4 for r in run.records)
    assert any(r.get("echo") == "hello from e2e" for r in run.records)


@pytest.mark.parametrize(("fail", "code", "error_type"), [
    ("exception", 1, "RuntimeError"),
    ("permanent", 2, "PermanentError"),
])  # fmt: skip
def test_echo_fails_on_request_with_the_right_exit_code(job_runner, fail, code, error_type):
    run = job_runner.run("test.echo", ["boom"], {"sleep": 0, "fail": fail})
    assert run.code == code
    assert run.result()["type"] == error_type
    assert "boom" in run.result()["error"]


def test_an_unknown_handler_and_bad_arguments_exit_2(job_runner):
    unknown = job_runner.run("mail.sned", ["x"])
    assert unknown.code == 2
    assert "mail.send" in unknown.result()["error"]  # the registered ones are listed
    invalid = job_runner.run("test.echo", [], {"message": "x", "sleep": "long"})
    assert invalid.code == 2
    assert invalid.result()["type"] == "InvalidArguments"


def test_the_base_image_runs_a_module_function_handler(job_runner, images):
    run = job_runner.run("json:dumps", [{"a": [1, 2]}], image=images["base"])
    assert run.code == 0, run.stderr
    assert run.result() == '{"a": [1, 2]}'


def test_docker_stop_cancels_the_handler_with_exit_143(job_runner):
    command, termination_log = job_runner.docker_args("test.echo", ["long"], {"sleep": 120})
    name = f"bgj-e2e-stop-{os.getpid()}"
    command[2:2] = ["--name", name]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "sleeping" not in _logs(name):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the handler never started"
            time.sleep(0.2)
        subprocess.run(["docker", "stop", "-t", "20", name], check=True, capture_output=True)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    run = collect(proc.returncode, stdout, stderr, termination_log)
    assert run.code == 143
    assert run.result()["type"] == "Cancelled"
    assert any(r.get("event") == "cancelled" for r in run.records)


def _logs(name: str) -> str:
    out = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    return out.stdout + out.stderr


def test_mail_send_delivers_once_through_smtp(job_runner, tmp_path):
    sent_dir = job_runner.writable_dir("sent")
    secret = tmp_path / "smtp-password"
    secret.write_text("hunter2")
    secret.chmod(0o644)
    with SmtpSink() as sink:
        env = {
            "BGJ_SMTP_HOST": sink.host,
            "BGJ_SMTP_PORT": str(sink.port),
            "BGJ_SMTP_FROM": "Shop <noreply@shop.example>",
            "BGJ_SMTP_USER": "mailer",
            "BGJ_SMTP_PASSWORD_FILE": "/secrets/password",
            "BGJ_MAIL_SENT_DIR": "/sent",
        }
        volumes = {sent_dir: "/sent", secret: "/secrets/password:ro"}
        mail = (["ann@example.com", "Welcome!", "<p>Hello <b>Ann</b></p>"], {"html": True})
        first = job_runner.run("mail.send", *mail, env=env, volumes=volumes, name="welcome")
        again = job_runner.run("mail.send", *mail, env=env, volumes=volumes, name="welcome")
        messages = sink.messages
        logins = sink.logins
    assert first.code == 0, first.stderr
    assert again.code == 0, again.stderr
    assert first.result()["status"] == "sent"
    assert again.result()["status"] == "already-sent"  # the retry did not send twice
    assert len(messages) == 1
    message = messages[0].message
    assert messages[0].rcpt_to == ["ann@example.com"]
    assert message["Subject"] == "Welcome!"
    assert message["Message-ID"] == first.result()["messageId"]
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Hello Ann"
    assert html is not None and "<b>Ann</b>" in html.get_content()
    assert logins == [("mailer", "hunter2")]


def test_mail_send_to_a_down_server_fails_for_a_retry(job_runner):
    run = job_runner.run(
        "mail.send",
        ["ann@example.com", "x", "y"],
        env={"BGJ_SMTP_HOST": "127.0.0.1", "BGJ_SMTP_PORT": "1", "BGJ_SMTP_TIMEOUT": "5"},
    )
    assert run.code == 1
    assert run.result()["type"] == "ConnectionRefusedError"


def test_report_generate_writes_a_pdf_to_the_mounted_dir(job_runner):
    reports = job_runner.writable_dir("reports")
    run = job_runner.run(
        "report.generate",
        ["user-7"],
        {"days": 60},
        env={"BGJ_REPORT_DIR": "/reports"},
        volumes={reports: "/reports"},
        name="report-user-7",
    )
    assert run.code == 0, run.stderr
    path = run.result()
    assert path == "/reports/report-user-7-report-user-7-run1.pdf"
    host_file = reports / Path(path).name
    data = host_file.read_bytes()
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\n(\d+)", data)[-1])
    assert data[startxref:].startswith(b"xref")
    assert b"(Activity report: user user-7) Tj" in data
    assert host_file.stat().st_uid == NONROOT
    assert [r["done"] for r in run.records if r.get("event") == "progress"][-1] == 60


def test_cleanup_temp_files_deletes_only_old_files(job_runner):
    area = job_runner.writable_dir("tmp-area")
    (area / "sub").mkdir()
    files = {"old.tmp": 30, "sub/old.bin": 48, "new.tmp": 1, "sub/new.bin": 23}
    for name, hours in files.items():
        path = area / name
        path.write_text("x")
        when = time.time() - hours * HOUR
        os.utime(path, (when, when))
    (area / "sub").chmod(0o777)
    run = job_runner.run(
        "cleanup.temp_files", ["/data"], {"older_than_hours": 24}, volumes={area: "/data"}
    )
    assert run.code == 0, run.stderr
    assert run.result() == 2
    remaining = sorted(str(p.relative_to(area)) for p in area.rglob("*") if p.is_file())
    assert remaining == ["new.tmp", "sub/new.bin"]


def test_cache_cleanup_expired_in_the_image(job_runner):
    cache_dir = job_runner.writable_dir("cache")
    now = time.time()
    for key, expires in {"a": now - 10, "b": now + HOUR, "c": now - HOUR}.items():
        (cache_dir / f"{key}.json").write_text(json.dumps({"key": key, "expiresAt": expires}))
    run = job_runner.run(
        "cache.cleanup_expired", env={"BGJ_CACHE_DIR": "/cache"}, volumes={cache_dir: "/cache"}
    )
    assert run.code == 0, run.stderr
    assert run.result() == 2
    assert sorted(p.name for p in cache_dir.iterdir()) == ["b.json"]


def test_the_operator_image_starts_its_entrypoint(images):
    help_run = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--network", "none", images["operator"], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "--namespace" in help_run.stdout
    imports = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--network", "none", "--entrypoint", "python3",
         images["operator"], "-c", "import kopf, backgroundjobs.controller; print('ok')"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.strip() == "ok"


def _python_in(image: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--network", "none", "--entrypoint", "python3",
         image, "-c", code],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_base_image_has_the_runtime_without_the_kubernetes_client(images):
    """The lean core: a handler image carries pydantic, not kubernetes-asyncio and aiohttp."""
    out = _python_in(images["base"], (
        "import importlib.util as u, backgroundjobs.runtime\n"
        "print(sorted(m for m in ('kubernetes_asyncio', 'aiohttp', 'yaml', 'kopf', 'pydantic')"
        " if u.find_spec(m)))"
    ))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['pydantic']"


def test_the_examples_image_has_the_client_its_bulk_handler_needs(images):
    out = _python_in(images["examples"], "import backgroundjobs.client, bgj_examples.notifications")
    assert out.returncode == 0, out.stderr
