"""A minimal SMTP server for tests: accepts mail on 127.0.0.1 and keeps it in memory.

Speaks enough ESMTP for ``smtplib``: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP,
QUIT. Recipients containing one of ``reject`` are refused with 550; ``mail_reply`` replaces
the answer to MAIL FROM (e.g. ``"451 try again later"``) to simulate a failing server, and
``fail_first`` answers the first N MAIL FROM commands with 451.

Run as a program (``python3 smtp_sink.py --port 2525 --fail-first 1``, standard library only)
it listens on every address and prints one JSON line per message accepted or refused: the
in-cluster sink of the e2e tests, read through the pod's logs.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import json
import socketserver
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        data = self.data.replace(b"\r\n", b"\n")  # the wire's line ends, as a local file has them
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _State:
    reject: tuple[str, ...] = ("reject",)
    mail_reply: str | None = None
    fail_first: int = 0
    announce: bool = False
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        state = self.server.state
        mail_from: str | None = None
        rcpts: list[str] = []
        self.reply("220 sink ESMTP ready")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            verb, _, rest = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-sink\r\n250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb == "HELO":
                self.reply("250 sink")
            elif verb == "AUTH":
                mechanism, _, initial = rest.partition(" ")
                if mechanism.upper() != "PLAIN":
                    self.reply("504 unsupported mechanism")
                    continue
                if not initial:
                    self.reply("334 ")
                    initial = self.rfile.readline().decode().strip()
                _, user, password = base64.b64decode(initial).decode().split("\0")
                with state.lock:
                    state.logins.append((user, password))
                self.reply("235 authenticated")
            elif verb == "MAIL":
                with state.lock:
                    refuse = state.mail_reply
                    if refuse is None and state.fail_first:
                        refuse = "451 try again later"
                    state.fail_first = max(0, state.fail_first - 1)
                if refuse:
                    _announce(state, {"event": "refused", "reply": refuse})
                    self.reply(refuse)
                    continue
                mail_from = _address(rest)
                rcpts = []
                self.reply("250 sender ok")
            elif verb == "RCPT":
                address = _address(rest)
                if any(word in address for word in state.reject):
                    self.reply(f"550 no such user: {address}")
                else:
                    rcpts.append(address)
                    self.reply("250 recipient ok")
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    self.reply("503 need MAIL and RCPT first")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                lines: list[bytes] = []
                while True:
                    data_line = self.rfile.readline()
                    if not data_line or data_line in (b".\r\n", b".\n"):
                        break
                    lines.append(data_line[1:] if data_line.startswith(b"..") else data_line)
                received = Received(mail_from, list(rcpts), b"".join(lines))
                with state.lock:
                    state.messages.append(received)
                _announce(state, _summary(received))
                mail_from, rcpts = None, []
                self.reply("250 queued")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 reset")
            elif verb == "NOOP":
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


def _announce(state: _State, record: dict[str, Any]) -> None:
    if state.announce:
        print(json.dumps(record), flush=True)


def _summary(received: Received) -> dict[str, Any]:
    message = received.message
    body = message.get_body(("plain", "html"))
    attachments = [part.get_filename() for part in message.iter_attachments()]
    return {
        "event": "message",
        "from": received.mail_from,
        "to": received.rcpt_to,
        "subject": message["Subject"],
        "messageId": message["Message-ID"],
        "body": body.get_content() if body is not None else "",
        "attachments": attachments,
    }


def _address(argument: str) -> str:
    _, _, value = argument.partition(":")
    return value.strip().split(" ")[0].strip("<>")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: _State, address: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        super().__init__(address, _Handler)
        self.state = state


class SmtpSink:
    """``with SmtpSink() as sink: ... sink.port ... sink.messages``."""

    def __init__(self, reject: tuple[str, ...] = ("reject",)) -> None:
        self._state = _State(reject=reject)
        self._server = _Server(self._state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def messages(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.messages)

    @property
    def logins(self) -> list[tuple[str, str]]:
        with self._state.lock:
            return list(self._state.logins)

    def fail_mail_with(self, reply: str | None) -> None:
        """Answer MAIL FROM with ``reply`` (``"451 ..."``) until called with None."""
        self._state.mail_reply = reply

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--fail-first", type=int, default=0, help="answer N MAIL FROM with 451")
    options = parser.parse_args()
    state = _State(fail_first=options.fail_first, announce=True)
    server = _Server(state, ("0.0.0.0", options.port))
    _announce(state, {"event": "listening", "port": options.port})
    server.serve_forever()


if __name__ == "__main__":
    main()
