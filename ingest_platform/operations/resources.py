"""The ``alerts`` resource: where alerts go, configured from the environment.

Either channel, both or neither:

- the webhook when ``INGEST_PLATFORM_ALERT_WEBHOOK_URL`` is set (a Slack incoming webhook or any
  receiver of Slack's JSON); the URL carries its token, so it is read through `EnvVar` and
  redacted from everything the sensors record;
- email when ``INGEST_PLATFORM_ALERT_SMTP_HOST`` and ``INGEST_PLATFORM_ALERT_EMAIL_TO`` are set
  (port, security, user and sender have their own variables; the password is read through
  `EnvVar` from ``INGEST_PLATFORM_ALERT_SMTP_PASSWORD``).

``INGEST_PLATFORM_WEBSERVER_URL`` (the Dagster webserver's external URL) makes every alert link
to its run. With no channel, the sensors send nothing and say so in their skip reason.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.operations.alerts import redactor
from ingest_platform.operations.delivery import (
    SMTP_SECURITY,
    Channel,
    EmailChannel,
    Notifier,
    WebhookChannel,
)

RESOURCE_KEY = "alerts"
WEBHOOK_URL_ENV = "INGEST_PLATFORM_ALERT_WEBHOOK_URL"
SMTP_HOST_ENV = "INGEST_PLATFORM_ALERT_SMTP_HOST"
SMTP_PORT_ENV = "INGEST_PLATFORM_ALERT_SMTP_PORT"
SMTP_SECURITY_ENV = "INGEST_PLATFORM_ALERT_SMTP_SECURITY"
SMTP_USER_ENV = "INGEST_PLATFORM_ALERT_SMTP_USER"
SMTP_PASSWORD_ENV = "INGEST_PLATFORM_ALERT_SMTP_PASSWORD"
EMAIL_FROM_ENV = "INGEST_PLATFORM_ALERT_EMAIL_FROM"
EMAIL_TO_ENV = "INGEST_PLATFORM_ALERT_EMAIL_TO"
WEBSERVER_URL_ENV = "INGEST_PLATFORM_WEBSERVER_URL"
#: The alert settings that are secrets: read through EnvVar, never put in config or a log.
ALERT_SECRET_ENV_VARS = (WEBHOOK_URL_ENV, SMTP_PASSWORD_ENV)
NO_CHANNEL = (
    f"no alert channel configured (set {WEBHOOK_URL_ENV}, or {SMTP_HOST_ENV} and "
    f"{EMAIL_TO_ENV}): nothing sent"
)


class AlertConfigError(ValueError):
    """An alert setting is wrong; the message names the variable (never a secret's value)."""


class AlertChannels(ConfigurableResource):
    """Where alerts go, and how hard delivery tries (per message and channel, per tick)."""

    webhook_url: str = Field(default="", description=f"EnvVar('{WEBHOOK_URL_ENV}'); empty: none.")
    smtp_host: str = Field(default="", description="SMTP server; empty: no email.")
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_security: str = Field(default="starttls", description="starttls, ssl or none.")
    smtp_user: str = Field(default="", description="SMTP login; empty: no AUTH.")
    smtp_password: str = Field(default="", description=f"EnvVar('{SMTP_PASSWORD_ENV}').")
    email_from: str = Field(default="ingest-platform@localhost")
    email_to: str = Field(default="", description="Recipients, comma-separated.")
    webserver_url: str = Field(default="", description="The webserver's URL, for run links.")
    attempts: int = Field(default=3, ge=1, le=10, description="Tries per message and channel.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="First retry wait (jittered).")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per HTTP/SMTP attempt.")
    tick_budget_seconds: float = Field(
        default=40.0, gt=0, description="No delivery starts after this long in one sensor tick."
    )

    def channels(self) -> list[Channel]:
        """The configured channels (an empty list: alerts are off)."""
        out: list[Channel] = []
        if self.webhook_url:
            if not self.webhook_url.startswith(("http://", "https://")):
                raise AlertConfigError(f"{WEBHOOK_URL_ENV} is not an http(s) URL")
            out.append(WebhookChannel(self.webhook_url, timeout=self.timeout_seconds))
        if self.smtp_host and self.email_to:
            if self.smtp_security not in SMTP_SECURITY:
                raise AlertConfigError(
                    f"{SMTP_SECURITY_ENV}={self.smtp_security!r}: use one of {SMTP_SECURITY}"
                )
            recipients = [r.strip() for r in self.email_to.split(",") if r.strip()]
            out.append(
                EmailChannel(
                    host=self.smtp_host,
                    port=self.smtp_port,
                    sender=self.email_from,
                    recipients=recipients,
                    security=self.smtp_security,
                    user=self.smtp_user,
                    password=self.smtp_password,
                    timeout=self.timeout_seconds,
                )
            )
        return out

    def notifier(self) -> Notifier:
        channels = self.channels()
        secrets = [s for c in channels for s in c.secrets()]
        return Notifier(
            channels,
            redactor(secrets),
            attempts=self.attempts,
            backoff=self.backoff_seconds,
            budget=self.tick_budget_seconds,
        )

    def run_link(self, run_id: str | None) -> str | None:
        if not run_id or not self.webserver_url:
            return None
        return f"{self.webserver_url.rstrip('/')}/runs/{run_id}"


def alert_channels(**overrides: Any) -> AlertChannels:
    """The resource as the environment configures it when the definitions are built: secrets
    as EnvVar (resolved when a sensor runs), the rest as plain values."""
    values: dict[str, Any] = {}
    if settings.env(WEBHOOK_URL_ENV):
        values["webhook_url"] = EnvVar(WEBHOOK_URL_ENV)
    if settings.env(SMTP_PASSWORD_ENV):
        values["smtp_password"] = EnvVar(SMTP_PASSWORD_ENV)
    plain = {
        "smtp_host": SMTP_HOST_ENV,
        "smtp_security": SMTP_SECURITY_ENV,
        "smtp_user": SMTP_USER_ENV,
        "email_from": EMAIL_FROM_ENV,
        "email_to": EMAIL_TO_ENV,
        "webserver_url": WEBSERVER_URL_ENV,
    }
    for field_name, env_name in plain.items():
        value = settings.env(env_name)
        if value:
            values[field_name] = value
    port = settings.env(SMTP_PORT_ENV)
    if port:
        if not port.isdigit():
            raise AlertConfigError(f"{SMTP_PORT_ENV}={port!r} is not a port number")
        values["smtp_port"] = int(port)
    return AlertChannels(**{**values, **overrides})
