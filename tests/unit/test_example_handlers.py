"""The example handlers' logic (job_images/examples/bgj_examples), called in-process."""

from __future__ import annotations

import asyncio
import html.parser
import json
import os
import re
import smtplib
import socket
import sys
import threading
import time
import types
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.smtp_sink import SmtpSink

from backgroundjobs import PermanentError, errors
from backgroundjobs.runtime import CurrentJob
from backgroundjobs.runtime._context import set_current_job

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "job_images" / "examples"))

from bgj_examples import MODULES, cache, cleanup, echo, mail, notifications, report  # noqa: E402
from bgj_examples._pdf import LINES_PER_PAGE  # noqa: E402

HOUR = 3600


@pytest.fixture
def job() -> Iterator[None]:
    """Run the code as if inside job ``shop/welcome-mail`` run 1."""
    set_current_job(CurrentJob(handler="x", name="welcome-mail", namespace="shop", run=1))
    yield
    set_current_job(None)


def _age(path: Path, hours: float) -> None:
    when = time.time() - hours * HOUR
    os.utime(path, (when, when), follow_symlinks=False)


def test_every_example_module_is_listed_in_the_image():
    dockerfile = (ROOT / "job_images" / "examples" / "Dockerfile").read_text()
    (listed,) = re.findall(r"BACKGROUNDJOBS_HANDLER_MODULES=(\S+)", dockerfile)
    assert tuple(listed.split(",")) == MODULES
    names = {p.stem for p in (ROOT / "job_images/examples/bgj_examples").glob("[!_]*.py")}
    assert {m.rpartition(".")[2] for m in MODULES} == names


# cleanup.temp_files


def test_cleanup_deletes_only_files_older_than_the_cutoff(tmp_path):
    old, new, nested_old = tmp_path / "old.tmp", tmp_path / "new.tmp", tmp_path / "a/b/old.tmp"
    nested_old.parent.mkdir(parents=True)
    for path in (old, new, nested_old):
        path.write_text("x")
    _age(old, 30)
    _age(nested_old, 25)
    _age(new, 23)
    assert cleanup.temp_files(str(tmp_path), older_than_hours=24) == 2
    assert not old.exists() and not nested_old.exists()
    assert new.exists()
    assert nested_old.parent.is_dir()  # directories are kept


def test_cleanup_removes_symlinks_but_never_their_targets(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious"
    target.write_text("keep me")
    _age(target, 100)
    area = tmp_path / "area"
    area.mkdir()
    link = area / "link"
    link.symlink_to(target)
    _age(link, 100)
    (area / "dirlink").symlink_to(outside, target_is_directory=True)
    _age(area / "dirlink", 100)
    assert cleanup.temp_files(str(area), older_than_hours=1) == 2  # the two links themselves
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and not (area / "dirlink").is_symlink()


def test_cleanup_pattern_and_dry_run(tmp_path):
    for name in ("a.tmp", "b.log"):
        (tmp_path / name).write_text("x")
        _age(tmp_path / name, 48)
    assert cleanup.temp_files(str(tmp_path), 24, pattern="*.tmp", dry_run=True) == 1
    assert (tmp_path / "a.tmp").exists()
    assert cleanup.temp_files(str(tmp_path), 24, pattern="*.tmp") == 1
    assert not (tmp_path / "a.tmp").exists() and (tmp_path / "b.log").exists()


def test_cleanup_of_a_missing_directory_is_permanent(tmp_path):
    with pytest.raises(PermanentError, match="not a directory"):
        cleanup.temp_files(str(tmp_path / "missing"))


# cache.cleanup_expired


def test_cache_cleanup_removes_expired_and_unreadable_entries(tmp_path):
    cache.put(tmp_path, "fresh", {"v": 1}, ttl_seconds=HOUR)
    cache.put(tmp_path, "stale", {"v": 2}, ttl_seconds=-1)
    cache.put(tmp_path, "stale2", [1, 2], ttl_seconds=-HOUR)
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("not a cache entry")
    assert cache.cleanup_expired(directory=str(tmp_path)) == 3
    assert cache.get(tmp_path, "fresh") == {"v": 1}
    assert cache.get(tmp_path, "stale") is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".json") == [
        cache._entry_path(tmp_path, "fresh").name
    ]
    assert (tmp_path / "notes.txt").exists()


def test_cache_cleanup_reads_its_directory_from_the_env(tmp_path, monkeypatch):
    cache.put(tmp_path, "stale", 1, ttl_seconds=-1)
    monkeypatch.setenv("BGJ_CACHE_DIR", str(tmp_path))
    assert cache.cleanup_expired() == 1
    monkeypatch.delenv("BGJ_CACHE_DIR")
    with pytest.raises(PermanentError, match="BGJ_CACHE_DIR"):
        cache.cleanup_expired()


# report.generate


class _PdfCheck:
    """Checks the structure a PDF reader relies on: header, objects, xref offsets, trailer."""

    def __init__(self, data: bytes) -> None:
        assert data.startswith(b"%PDF-1.4\n")
        assert data.rstrip().endswith(b"%%EOF")
        startxref = int(re.findall(rb"startxref\n(\d+)\n%%EOF", data)[-1])
        assert data[startxref:].startswith(b"xref\n")
        header = re.match(rb"xref\n0 (\d+)\n", data[startxref:])
        assert header is not None
        count = int(header.group(1))
        entries = data[startxref + header.end() :].split(b"\n")[:count]
        assert entries[0] == b"0000000000 65535 f "
        for number, entry in enumerate(entries[1:], start=1):
            assert len(entry) == 19 and entry.endswith(b" 00000 n ")
            offset = int(entry[:10])
            assert data[offset:].startswith(b"%d 0 obj\n" % number), number
        for length, stream in re.findall(
            rb"<< /Length (\d+) >>\nstream\n(.*?)\nendstream", data, re.S
        ):
            assert int(length) == len(stream)
        self.page_count = int(re.search(rb"/Type /Pages /Kids \[.*?\] /Count (\d+)", data).group(1))
        self.text = b" ".join(re.findall(rb"\((.*?)(?<!\\)\) Tj", data)).decode("cp1252")


def test_report_is_a_well_formed_pdf_in_the_report_dir(tmp_path, monkeypatch, job):
    monkeypatch.setenv("BGJ_REPORT_DIR", str(tmp_path))
    path = Path(report.generate("user-42", title="Monthly (activity) report", days=30))
    assert path.parent == tmp_path
    assert path.name == "report-user-42-welcome-mail-run1.pdf"
    pdf = _PdfCheck(path.read_bytes())
    assert pdf.page_count == 1
    assert "user user-42" in pdf.text
    assert "Total" in pdf.text
    assert "Monthly \\(activity\\) report" in pdf.text  # parentheses escaped
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_a_long_report_has_several_pages_and_the_same_figures_for_the_same_user(tmp_path):
    first = Path(report.generate(7, days=120, directory=str(tmp_path / "a")))
    second = Path(report.generate("7", days=120, directory=str(tmp_path / "b")))
    pdf = _PdfCheck(first.read_bytes())
    assert pdf.page_count == -(-(120 + 8) // LINES_PER_PAGE)
    total = re.search(r"Total +\d+ +\d+ +[\d.]+", pdf.text)
    assert total is not None
    assert total.group(0) in _PdfCheck(second.read_bytes()).text


def test_report_with_given_rows_as_html(tmp_path):
    rows = [report.DayActivity(day="2026-01-01", visits=3, orders=1, revenue=9.5)]
    path = Path(report.generate("u<1>", rows=rows, file_format="html", directory=str(tmp_path)))
    text = path.read_text()
    parser = html.parser.HTMLParser()
    parser.feed(text)
    parser.close()
    assert "<td>2026-01-01</td><td>3</td><td>1</td><td>9.50</td>" in text
    assert "u&lt;1&gt;" in text and "u<1>" not in text
    assert path.name.startswith("report-u_1-")


def test_report_without_a_directory_is_permanent(monkeypatch):
    monkeypatch.delenv("BGJ_REPORT_DIR", raising=False)
    with pytest.raises(PermanentError, match="BGJ_REPORT_DIR"):
        report.generate("u1")


# mail.send


@pytest.fixture
def smtp(monkeypatch) -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        monkeypatch.setenv("BGJ_SMTP_HOST", sink.host)
        monkeypatch.setenv("BGJ_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("BGJ_SMTP_FROM", "Shop <noreply@shop.example>")
        monkeypatch.delenv("BGJ_SMTP_USER", raising=False)
        monkeypatch.delenv("BGJ_MAIL_SENT_DIR", raising=False)
        yield sink


def test_mail_is_delivered_as_plain_text(smtp):
    result = mail.send("ann@example.com", "Welcome", "Hello Ann,\nwelcome aboard.")
    assert result["status"] == "sent"
    (received,) = smtp.messages
    assert received.rcpt_to == ["ann@example.com"]
    assert received.mail_from == "noreply@shop.example"
    message = received.message
    assert message["Subject"] == "Welcome"
    assert message["From"] == "Shop <noreply@shop.example>"
    assert message.get_content() == "Hello Ann,\nwelcome aboard.\n"


def test_html_mail_has_a_plain_text_alternative(smtp):
    mail.send(
        ["a@example.com", "b@example.com"],
        "News",
        "<h1>Hi</h1><p>Read <a href='https://x.example'>this</a></p>",
        html=True,
    )
    (received,) = smtp.messages
    assert received.rcpt_to == ["a@example.com", "b@example.com"]
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content() == "Hi\nRead <https://x.example> this\n"
    assert "<h1>Hi</h1>" in rich.get_content()


def test_mail_attaches_the_parents_report(smtp, tmp_path):
    report_file = tmp_path / "report-42.pdf"
    report_file.write_bytes(b"%PDF-1.4 report")
    set_current_job(
        CurrentJob(
            handler="x", name="mail", namespace="shop", run=1, parent_result=str(report_file)
        )
    )
    try:
        mail.send("ann@example.com", "Your report", "Attached.", attach_parent_result=True)
    finally:
        set_current_job(None)
    (received,) = smtp.messages
    (attachment,) = received.message.iter_attachments()
    assert attachment.get_filename() == "report-42.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.4 report"


@pytest.mark.parametrize("parent", [None, {"not": "a path"}])
def test_mail_without_a_parent_path_to_attach_is_a_permanent_error(smtp, parent):
    set_current_job(
        CurrentJob(handler="x", name="mail", namespace="shop", run=1, parent_result=parent)
    )
    try:
        with pytest.raises(PermanentError, match="no path"):
            mail.send("ann@example.com", "Your report", "x", attach_parent_result=True)
    finally:
        set_current_job(None)
    assert smtp.messages == []


def test_mail_with_a_missing_attachment_is_a_permanent_error(smtp, tmp_path):
    with pytest.raises(PermanentError, match="cannot attach"):
        mail.send("ann@example.com", "x", "y", attach=[str(tmp_path / "gone.pdf")])
    assert smtp.messages == []


def test_mail_is_sent_once_per_job_run(smtp, tmp_path, monkeypatch, job):
    monkeypatch.setenv("BGJ_MAIL_SENT_DIR", str(tmp_path / "sent"))
    first = mail.send("ann@example.com", "Welcome", "Hi")
    again = mail.send("ann@example.com", "Welcome", "Hi")  # a retry of the same run
    assert (first["status"], again["status"]) == ("sent", "already-sent")
    assert first["messageId"] == again["messageId"]
    assert len(smtp.messages) == 1
    assert smtp.messages[0].message["Message-ID"] == first["messageId"]
    set_current_job(CurrentJob(handler="x", name="welcome-mail", namespace="shop", run=2))
    assert mail.send("ann@example.com", "Welcome", "Hi")["status"] == "sent"  # a requeue
    assert len(smtp.messages) == 2


def test_mail_with_an_explicit_message_id_is_sent_once(smtp, tmp_path, monkeypatch):
    monkeypatch.setenv("BGJ_MAIL_SENT_DIR", str(tmp_path))
    for _ in range(3):
        mail.send("ann@example.com", "Reset", "Link", message_id="reset-123")
    assert len(smtp.messages) == 1


def test_a_failed_send_is_not_recorded_so_the_retry_sends(smtp, tmp_path, monkeypatch, job):
    monkeypatch.setenv("BGJ_MAIL_SENT_DIR", str(tmp_path))
    smtp.fail_mail_with("451 try again later")
    with pytest.raises(smtplib.SMTPResponseException) as info:
        mail.send("ann@example.com", "Welcome", "Hi")
    assert not isinstance(info.value, PermanentError)  # exit 1: retried
    smtp.fail_mail_with(None)
    assert mail.send("ann@example.com", "Welcome", "Hi")["status"] == "sent"
    assert len(smtp.messages) == 1


def test_permanent_smtp_refusals_are_permanent_errors(smtp):
    with pytest.raises(PermanentError, match="refused every recipient"):
        mail.send("reject-me@example.com", "x", "y")
    smtp.fail_mail_with("550 sender blocked")
    with pytest.raises(PermanentError, match="550 sender blocked"):
        mail.send("ann@example.com", "x", "y")
    with pytest.raises(PermanentError, match="invalid recipient"):
        mail.send("not-an-address", "x", "y")


def test_an_unreachable_server_is_retried(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("BGJ_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BGJ_SMTP_PORT", str(port))
    with pytest.raises(OSError):
        mail.send("ann@example.com", "x", "y")


def test_smtp_credentials_come_from_env_or_a_secret_file(smtp, tmp_path, monkeypatch):
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("BGJ_SMTP_USER", "mailer")
    monkeypatch.setenv("BGJ_SMTP_PASSWORD_FILE", str(secret))
    mail.send("ann@example.com", "x", "y")
    assert smtp.logins == [("mailer", "s3cret")]


# notifications


def test_send_to_user_without_settings_delivers_to_the_log(monkeypatch, job, caplog):
    monkeypatch.delenv("BGJ_NOTIFY_DIR", raising=False)
    monkeypatch.delenv("BGJ_NOTIFY_WEBHOOK_URL", raising=False)
    with caplog.at_level("INFO"):
        result = notifications.send_to_user(7, "Sale today", title="Shop")
    assert result == {
        "id": "shop/welcome-mail/1",
        "userId": "7",
        "channel": "log",
        "status": "sent",
    }
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "notification"]
    assert record.notification["message"] == "Sale today"
    assert record.notification["title"] == "Shop"


def test_send_to_user_appends_to_the_inbox_once_per_run(tmp_path, monkeypatch, job):
    monkeypatch.setenv("BGJ_NOTIFY_DIR", str(tmp_path))
    monkeypatch.delenv("BGJ_NOTIFY_WEBHOOK_URL", raising=False)
    first = notifications.send_to_user(42, "Sale today")
    again = notifications.send_to_user(42, "Sale today")
    assert (first["status"], again["status"]) == ("sent", "already-sent")
    lines = (tmp_path / "42.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["message"] == "Sale today"
    assert json.loads(lines[0])["id"] == "shop/welcome-mail/1"


class _Webhook(BaseHTTPRequestHandler):
    status = 204
    received: list[tuple[dict[str, Any], str | None]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((json.loads(body), self.headers.get("Idempotency-Key")))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_send_to_user_posts_to_a_webhook(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("BGJ_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/n")
        assert notifications.send_to_user("u1", "hello")["channel"] == "webhook"
        payload, key = _Webhook.received[-1]
        assert payload["userId"] == "u1" and payload["message"] == "hello"
        assert key == payload["id"]
        _Webhook.status = 400
        with pytest.raises(PermanentError, match="HTTP 400"):
            notifications.send_to_user("u1", "hello")
        _Webhook.status = 503
        with pytest.raises(urllib.error.HTTPError) as info:
            notifications.send_to_user("u1", "hello")
        assert not isinstance(info.value, PermanentError)
    finally:
        server.shutdown()
        server.server_close()


class _FakeAsyncClient:
    """Stands in for backgroundjobs.client.AsyncClient: records calls, answers per item."""

    calls: list[tuple[str, list[Any], dict[str, Any]]] = []
    existing: set[str] = set()
    refuse: set[str] = set()

    def __init__(self, *, namespace: str | None = None) -> None:
        assert namespace == "shop"

    async def __aenter__(self) -> _FakeAsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def enqueue_many(
        self, handler: str, items: list[Any], /, *, name_prefix: str, queue: str | None
    ) -> list[str | Exception]:
        self.calls.append((handler, items, {"name_prefix": name_prefix, "queue": queue}))
        results: list[str | Exception] = []
        for index, ((user, _), _) in enumerate(items):
            name = f"{name_prefix}-{index}"
            if user in self.refuse:
                results.append(errors.InvalidSpec(f"refused {user}"))
            elif name in self.existing:
                results.append(errors.Conflict(name))
            else:
                self.existing.add(name)
                results.append(name)
        return results


@pytest.fixture
def fake_client(monkeypatch) -> type[_FakeAsyncClient]:
    fake = types.ModuleType("backgroundjobs.client")
    fake.AsyncClient = _FakeAsyncClient  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backgroundjobs.client", fake)
    _FakeAsyncClient.calls, _FakeAsyncClient.existing, _FakeAsyncClient.refuse = [], set(), set()
    return _FakeAsyncClient


def test_send_bulk_enqueues_one_job_per_user_in_batches(tmp_path, fake_client, job):
    users_file = tmp_path / "users"
    users_file.write_text("\n".join(f"u{i}" for i in range(1000, 1234)) + "\n\n")
    result = asyncio.run(
        notifications.send_bulk(
            "Sale", user_ids=list(range(1000)), users_file=str(users_file), batch_size=500
        )
    )
    assert result == {"enqueued": 1234, "alreadyEnqueued": 0, "failed": 0, "batches": 3}
    calls = fake_client.calls
    assert [len(items) for _, items, _ in calls] == [500, 500, 234]
    assert all(handler == "notifications.send_to_user" for handler, _, _ in calls)
    assert calls[0][1][0] == (("0", "Sale"), {"title": ""})
    assert calls[2][1][-1] == (("u1233", "Sale"), {"title": ""})
    prefixes = [options["name_prefix"] for _, _, options in calls]
    assert len(set(prefixes)) == 3


def test_a_retried_send_bulk_skips_the_users_enqueued_already(fake_client, job):
    fake_client.refuse = {"7"}
    with pytest.raises(PermanentError, match="1 of 10 notification jobs were not created"):
        asyncio.run(notifications.send_bulk("Sale", user_ids=list(range(10)), batch_size=4))
    fake_client.refuse = set()
    result = asyncio.run(notifications.send_bulk("Sale", user_ids=list(range(10)), batch_size=4))
    assert result == {"enqueued": 1, "alreadyEnqueued": 9, "failed": 0, "batches": 3}


def test_send_bulk_without_users_is_permanent():
    with pytest.raises(PermanentError, match="no users"):
        asyncio.run(notifications.send_bulk("x"))


# test.echo


def test_echo_returns_the_message_and_fails_on_request():
    result = echo.echo("hi", sleep=0.05)
    assert result["message"] == "hi" and result["uid"] == os.getuid()
    with pytest.raises(RuntimeError, match="failed on request"):
        echo.echo("x", sleep=0, fail="exception")
    with pytest.raises(PermanentError):
        echo.echo("x", sleep=0, fail="permanent")


def test_batch_summary_mails_the_parent_batchs_counts(smtp):
    counts = {"total": 20, "succeeded": 18, "failed": 2, "failedIndexes": "3,7"}
    set_current_job(
        CurrentJob(handler="x", name="summary", namespace="shop", run=1, parent_result=counts)
    )
    try:
        notifications.batch_summary("ops@example.com", "Sent")
        with pytest.raises(PermanentError, match="not a batch's counts"):
            set_current_job(CurrentJob(handler="x", name="s", run=1, parent_result="x"))
            notifications.batch_summary("ops@example.com")
    finally:
        set_current_job(None)
    (received,) = smtp.messages
    body = received.message.get_content()
    assert "18 of 20 notifications were sent; 2 failed. Failed items (0-based): 3,7." in body
