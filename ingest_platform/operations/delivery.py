"""Sending alerts: a Slack-compatible webhook and SMTP email, each retried with backoff.

A delivery never raises to its caller: it is retried (tenacity: full-jitter exponential waits,
bounded in attempts and in time, so a sensor tick stays far inside Dagster's 60 s) and its
outcome is returned as a `Delivery` for the sensor to record. Error text is redacted before it
is kept: a failed POST's exception names the URL's path, which for a Slack webhook is the
secret itself.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import requests
from tenacity import Retrying, stop_after_attempt, stop_after_delay, wait_random_exponential

from ingest_platform.core.http import Redactor
from ingest_platform.operations.alerts import Message, first_line, secret_spellings

WEBHOOK = "webhook"
EMAIL = "email"
SMTP_SECURITY = ("starttls", "ssl", "none")


class _ScrubSecrets(logging.Filter):
    """urllib3 logs every request line at DEBUG ("POST /services/T0/B0/token"): a webhook URL's
    path is its secret, so the alert channels' secrets are scrubbed from those lines too."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.redact = Redactor()

    def add(self, secrets: Sequence[str]) -> None:
        if not set(secrets) <= self.secrets:
            self.secrets |= set(secrets)
            self.redact = Redactor(sorted(self.secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = self.redact(str(record.msg))
        return True


_scrub = _ScrubSecrets()
_scrub_lock = threading.Lock()


def scrub_request_logs(secrets: Sequence[str]) -> None:
    """Keep ``secrets`` out of urllib3's request log lines (process-wide, idempotent)."""
    with _scrub_lock:
        _scrub.add([s for s in secrets if s])
        logger = logging.getLogger("urllib3.connectionpool")
        if _scrub not in logger.filters:
            logger.addFilter(_scrub)


class DeliveryError(Exception):
    """One failed attempt; the message says why, already redacted."""


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None: ...

    def secrets(self) -> list[str]: ...


@dataclass
class WebhookChannel:
    """POST the Slack payload as JSON; any 2xx is delivered."""

    url: str
    timeout: float = 10.0
    name: str = WEBHOOK

    def send(self, message: Message) -> None:
        response = requests.post(self.url, json=message.slack_payload(), timeout=self.timeout)
        if not 200 <= response.status_code < 300:
            body = first_line(response.text, 120)
            raise DeliveryError(f"HTTP {response.status_code}" + (f": {body}" if body else ""))

    def secrets(self) -> list[str]:
        return secret_spellings(self.url)


@dataclass
class EmailChannel:
    """One message to every recipient through an SMTP server (STARTTLS, SSL or plain)."""

    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    security: str = "starttls"
    user: str = ""
    password: str = ""
    timeout: float = 10.0
    name: str = EMAIL

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = message.subject()
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail.set_content(message.text())
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password)
            refused = smtp.send_message(mail)
        if refused:
            raise DeliveryError(f"refused recipients: {', '.join(sorted(refused))}")

    def secrets(self) -> list[str]:
        return [self.password] if self.password else []


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one message on one channel (what the sensor records)."""

    channel: str
    incident: str
    state: str
    ok: bool
    attempts: int
    error: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Notifier:
    """Sends each message on each channel with bounded retries, within a time budget.

    ``attempts`` tries per channel and message, waits drawn from full-jitter exponential
    backoff starting at ``backoff`` seconds; no new attempt starts once ``budget`` seconds have
    passed since the notifier was made (one sensor tick), so a dead receiver costs a tick at most
    that long. What is not delivered is reported, never raised.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        redact: Redactor,
        attempts: int = 3,
        backoff: float = 1.0,
        budget: float = 40.0,
    ) -> None:
        self.channels = list(channels)
        self.redact = redact
        scrub_request_logs([s for c in self.channels for s in c.secrets()])
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.deadline = time.monotonic() + budget

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.channels]

    def deliver(self, message: Message, only: Sequence[str] | None = None) -> list[Delivery]:
        """Send ``message`` on every channel (or those named in ``only``)."""
        return [
            self._send(channel, message)
            for channel in self.channels
            if only is None or channel.name in only
        ]

    def _send(self, channel: Channel, message: Message) -> Delivery:
        tries = 0
        left = self.deadline - time.monotonic()
        error = ""
        if left > 0:
            retrying = Retrying(
                stop=stop_after_attempt(self.attempts) | stop_after_delay(left),
                wait=wait_random_exponential(multiplier=self.backoff, max=max(self.backoff, 8.0)),
                reraise=True,
            )
            try:
                for attempt in retrying:
                    with attempt:
                        tries += 1
                        channel.send(message)
                return self._outcome(channel, message, True, tries, "")
            except Exception as exc:  # every failure is recorded, none escapes the sensor
                error = self._describe(exc)
        else:
            error = "not attempted: this tick's delivery time budget is spent"
        return self._outcome(channel, message, False, tries, error)

    def _describe(self, exc: Exception) -> str:
        text = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        return first_line(self.redact(text), 300)

    @staticmethod
    def _outcome(channel: Channel, message: Message, ok: bool, tries: int, error: str) -> Delivery:
        return Delivery(
            channel=channel.name,
            incident=message.alert.key,
            state=message.state,
            ok=ok,
            attempts=tries,
            error=error,
            at=time.time(),
        )
