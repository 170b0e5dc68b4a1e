"""What an alert says: the incident (`Alert`), its firing or resolved `Message`, and their text.

Every alert answers three questions in its first lines, in the same order whatever broke:
what broke (``summary``), where (asset, partition, job, run, with a link to the run in the
webserver when its URL is configured) and why (the first line of the reason). Everything that
goes out passes through the platform's redaction (`core.http.Redactor`): the API keys and the
alert channels' own secrets, raw or URL-encoded, and secret query parameters.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ingest_platform.core.http import Redactor

#: Environment variables whose values must never leave in an alert (the platform's API keys
#: and storage credentials; the alert channels add their own webhook URL and SMTP password).
SECRET_ENV_VARS = (
    "ALPHA_VANTAGE_API_KEY",
    "POLYGON_API_KEY",
    "FRED_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "DAGSTER_PG_PASSWORD",
    "INGEST_PLATFORM_WAREHOUSE_URL",
)
#: Longest reason line an alert carries (a Slack line, an email subject's worth).
MAX_REASON = 300

FIRING = "firing"
RESOLVED = "resolved"


def first_line(text: str | None, limit: int = MAX_REASON) -> str:
    """The first non-blank line of ``text``, stripped and cut to ``limit`` characters."""
    for line in (text or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def secret_spellings(url: str) -> list[str]:
    """What of a secret URL (a Slack webhook: the token is its path) can show up in an error:
    the URL itself, its path and query, and each long path segment."""
    if not url:
        return []
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    segments = [s for s in parts.path.split("/") if len(s) >= 8]
    return [url, *([path] if len(path) > 1 else []), *segments]


def redactor(extra_secrets: Iterable[str] = ()) -> Redactor:
    """A redactor for the platform's secrets (from the environment) and ``extra_secrets``."""
    return Redactor([*(os.environ.get(name) for name in SECRET_ENV_VARS), *extra_secrets])


@dataclass(frozen=True)
class Alert:
    """One incident: stable ``key`` (one alert per key until it resolves), what, where, why."""

    key: str
    kind: str  # run_failure, check_failure, stream, freshness
    summary: str
    where: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""
    link: str | None = None

    def redacted(self, redact: Redactor) -> Alert:
        return Alert(
            key=self.key,
            kind=self.kind,
            summary=redact(self.summary),
            where={k: redact(str(v)) for k, v in self.where.items()},
            reason=first_line(redact(self.reason)),
            link=self.link,
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "where": dict(self.where)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            key=str(data["key"]),
            kind=str(data["kind"]),
            summary=str(data["summary"]),
            where={str(k): str(v) for k, v in dict(data.get("where") or {}).items()},
            reason=str(data.get("reason") or ""),
            link=data.get("link"),
        )


@dataclass(frozen=True)
class Message:
    """An alert going out: ``firing`` when the incident opens, ``resolved`` when it ends."""

    alert: Alert
    state: str  # FIRING or RESOLVED
    at: float  # epoch seconds
    note: str = ""  # for a resolution: what ended it

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert.as_dict(),
            "state": self.state,
            "at": self.at,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        return cls(
            alert=Alert.from_dict(data["alert"]),
            state=str(data["state"]),
            at=float(data["at"]),
            note=str(data.get("note") or ""),
        )

    @property
    def title(self) -> str:
        return f"[{self.state.upper()}] {self.alert.summary}"

    def text(self) -> str:
        """The plain-text body: title, where, reason, link, when (the same in Slack and mail)."""
        alert = self.alert
        lines = [self.title]
        if alert.where:
            lines.append("where: " + ", ".join(f"{k} {v}" for k, v in alert.where.items()))
        if alert.reason:
            lines.append(f"reason: {alert.reason}")
        if self.note:
            lines.append(f"resolved: {self.note}")
        if alert.link:
            lines.append(f"run: {alert.link}")
        when = dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(timespec="seconds")
        lines.append(f"at: {when} (incident {alert.key})")
        return "\n".join(lines)

    def slack_payload(self) -> dict[str, Any]:
        """A Slack incoming-webhook payload (``text`` is also what Mattermost, Rocket.Chat and
        most Slack-compatible receivers read)."""
        return {
            "text": self.text(),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": self.text()}}],
        }

    def subject(self) -> str:
        return f"[ingest_platform] {self.title}"[:200]
