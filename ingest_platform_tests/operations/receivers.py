"""Local alert receivers: a Slack-compatible webhook (HTTP) and an SMTP server (aiosmtpd).

Both run on loopback and record what they received; the webhook answers with the status codes
a test queues (200 by default), so a test can make a delivery fail and recover. Fixtures for the
operations tests (their conftest) and the secret scan (test_secrets.py).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

#: The webhook's secret part, as a Slack incoming webhook's path carries its token.
WEBHOOK_TOKEN = "T0ALERTS/B0HOOK/s3cr3t+t0k3n-9f8e7d6c"
SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "smtp-pa55+w/rd-4c3b2a"


@dataclass
class Webhook:
    """What the receiver got, and the statuses it will answer (then 200)."""

    url: str = ""
    payloads: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def texts(self) -> list[str]:
        return [p["text"] for p in self.payloads]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                status = state.statuses.pop(0) if state.statuses else 200
                state.raw.append(body)
                if status == 200 and self.path == f"/services/{WEBHOOK_TOKEN}":
                    state.payloads.append(json.loads(body))
                elif status == 200:
                    status = 404  # a wrong URL is a failed delivery too
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"internal_error")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/services/{WEBHOOK_TOKEN}"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def bodies(self) -> list[str]:
        return [m.get_payload(decode=True).decode() for m in self.messages]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=_free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:
            box.raw.append(envelope.content)
            box.messages.append(message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            box.logins.append((login, password))
            return AuthResult(success=(login, password) == (SMTP_USER, SMTP_PASSWORD))
        return AuthResult(success=False)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=box.port,
        authenticator=authenticate,
        auth_require_tls=False,  # loopback only; production uses STARTTLS (the default)
    )
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def channels(webhook: Webhook, mailbox: Mailbox) -> dict[str, Any]:
    """`AlertChannels` settings for both receivers, with fast retries."""
    return {
        "webhook_url": webhook.url,
        "smtp_host": "127.0.0.1",
        "smtp_port": mailbox.port,
        "smtp_security": "none",
        "smtp_user": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
        "email_from": "ingest-platform@example.test",
        "email_to": "oncall@example.test, data@example.test",
        "webserver_url": "http://dagster.example.test:3000",
        "attempts": 3,
        "backoff_seconds": 0.01,
        "timeout_seconds": 5.0,
    }
