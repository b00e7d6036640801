"""``mail.send``: one email through SMTP, sent at most once per job run (scenarios 1, 2 and 4).

Settings (env; credentials from a Secret as env or as files with ``_FILE``):

- ``BGJ_SMTP_HOST`` (``localhost``), ``BGJ_SMTP_PORT`` (25), ``BGJ_SMTP_TIMEOUT`` (30 s)
- ``BGJ_SMTP_STARTTLS`` (false): upgrade the connection with STARTTLS before logging in;
  ``BGJ_SMTP_SSL`` (false): connect with implicit TLS (port 465)
- ``BGJ_SMTP_USER``, ``BGJ_SMTP_PASSWORD`` (or ``BGJ_SMTP_PASSWORD_FILE``): log in when set
- ``BGJ_SMTP_FROM`` (``backgroundjobs@localhost``): the sender
- ``BGJ_MAIL_SENT_DIR``: the sent-log, a directory on a volume shared by the job's pods. A
  message is recorded there once the server accepted it; a retry of the same run (same
  BackgroundJob name and run number, or the same ``message_id``) finds the record and does not
  send again. Without it, every attempt sends.

Attachments: ``attach`` names files (on a volume the pod mounts); ``attach_parent_result``
attaches the file whose path is the parent job's result, as a continuation after
``report.generate`` gets it (scenario 4). A file that cannot be read is a PermanentError.

Failures the server reports as permanent (5xx: recipient refused, authentication failed) raise
PermanentError (exit 2, not retried); a server that is down or answers 4xx is retried.
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import hashlib
import html.parser
import json
import logging
import mimetypes
import os
import smtplib
import ssl
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from backgroundjobs import PermanentError, handler
from backgroundjobs.runtime import current_job, parent_result
from bgj_examples._config import env_bool, env_number, env_secret, env_str

log = logging.getLogger(__name__)


@handler("mail.send")
def send(
    to: str | list[str],
    subject: str,
    body: str,
    html: bool = False,
    message_id: str | None = None,
    attach: list[str] | None = None,
    attach_parent_result: bool = False,
) -> dict[str, Any]:
    """Send ``body`` (HTML with a plain-text part when ``html``) to ``to``.

    ``message_id`` is the idempotence key; by default the job's ``namespace/name/run``.
    Returns ``{"status": "sent" | "already-sent", "messageId", "to"}``.
    """
    recipients = _recipients(to)
    sender = env_str("BGJ_SMTP_FROM", "backgroundjobs@localhost")
    job = current_job()
    key = message_id or (job.key if job else None)
    header_id = _message_id(key, sender) if key else email.utils.make_msgid(domain=_domain(sender))
    files = [Path(p) for p in attach or []]
    if attach_parent_result:
        result = parent_result()
        if not isinstance(result, str) or not result:
            raise PermanentError(f"attach_parent_result: the parent's result {result!r} is no path")
        files.append(Path(result))
    message = build_message(
        sender, recipients, subject, body, html=html, message_id=header_id, attachments=files
    )

    sent_dir = env_str("BGJ_MAIL_SENT_DIR")
    if not key or not sent_dir:
        log.warning(
            "no idempotence for this mail: %s",
            "BGJ_MAIL_SENT_DIR is not set" if key else "no job name and no message_id",
        )
        refused = deliver(message)
        return _result("sent", header_id, recipients, refused)

    with sent_log_entry(Path(sent_dir), key) as entry:
        if entry.exists():
            record = json.loads(entry.read_text())
            log.info(
                "mail %s was sent already at %s: not sending it again",
                record.get("messageId"),
                record.get("sentAt"),
                extra={"event": "mail_already_sent"},
            )
            return _result("already-sent", str(record.get("messageId")), recipients, {})
        refused = deliver(message)
        record = {
            "key": key,
            "messageId": header_id,
            "to": recipients,
            "subject": subject,
            "sentAt": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write_atomically(entry, json.dumps(record).encode())
    return _result("sent", header_id, recipients, refused)


def build_message(
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    *,
    html: bool = False,
    message_id: str | None = None,
    attachments: list[Path] | None = None,
) -> EmailMessage:
    """The message to send: plain text, or HTML with a plain-text alternative; then files."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = message_id or email.utils.make_msgid(domain=_domain(sender))
    if html:
        message.set_content(html_to_text(body))
        message.add_alternative(body, subtype="html")
    else:
        message.set_content(body)
    for path in attachments or []:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PermanentError(f"cannot attach {path}: {exc}") from exc
        kind, _ = mimetypes.guess_type(path.name)
        maintype, _, subtype = (kind or "application/octet-stream").partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
    return message


def deliver(message: EmailMessage) -> dict[str, tuple[int, bytes]]:
    """Hand ``message`` to the configured SMTP server; returns the recipients it refused."""
    host = env_str("BGJ_SMTP_HOST", "localhost")
    port = int(env_number("BGJ_SMTP_PORT", 25))
    timeout = env_number("BGJ_SMTP_TIMEOUT", 30)
    user = env_str("BGJ_SMTP_USER")
    password = env_secret("BGJ_SMTP_PASSWORD")
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if env_bool("BGJ_SMTP_SSL"):
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if env_bool("BGJ_SMTP_STARTTLS"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if user:
                smtp.login(user, password)
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            raise PermanentError(
                f"the SMTP server refused every recipient: {exc.recipients}"
            ) from exc
        raise
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise PermanentError(
                f"the SMTP server {host}:{port} refused the mail: {exc.smtp_code} "
                f"{_text(exc.smtp_error)}"
            ) from exc
        raise
    for address, (code, reason) in refused.items():
        log.warning("recipient %s refused: %s %s", address, code, _text(reason))
    log.info(
        "mail %s sent to %s through %s:%s",
        message["Message-ID"],
        message["To"],
        host,
        port,
        extra={"event": "mail_sent"},
    )
    return refused


@contextlib.contextmanager
def sent_log_entry(directory: Path, key: str) -> Iterator[Path]:
    """The sent-log record for ``key``, locked so that two pods of one job cannot both send."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermanentError(
            f"cannot use the sent-log BGJ_MAIL_SENT_DIR={directory}: {exc}"
        ) from exc
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    lock_path = directory / f"{digest}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield directory / f"{digest}.json"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def html_to_text(markup: str) -> str:
    """A readable plain-text version of an HTML body (tags dropped, blocks on their own lines)."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


class _TextExtractor(html.parser.HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "table", "ul"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.parts.append(f"<{href}> ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text(reply: bytes | str) -> str:
    return reply if isinstance(reply, str) else reply.decode(errors="replace")


def _recipients(to: str | list[str]) -> list[str]:
    raw = [to] if isinstance(to, str) else list(to)
    addresses = [address for _, address in email.utils.getaddresses(raw)]
    if not addresses or any(
        "@" not in a or a.startswith("@") or a.endswith("@") for a in addresses
    ):
        raise PermanentError(f"invalid recipient address in {to!r}")
    return addresses


def _message_id(key: str, sender: str) -> str:
    # Deterministic, so a receiving system can also drop a duplicate by its Message-ID.
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{_domain(sender)}>"


def _domain(address: str) -> str:
    _, addr = email.utils.parseaddr(address)
    return addr.rpartition("@")[2] or "backgroundjobs.local"


def _result(
    status: str, message_id: str, recipients: list[str], refused: dict[str, tuple[int, bytes]]
) -> dict[str, Any]:
    result: dict[str, Any] = {"status": status, "messageId": message_id, "to": recipients}
    if refused:
        result["refused"] = sorted(refused)
    return result


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
