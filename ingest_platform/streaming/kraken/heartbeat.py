"""The heartbeat file: what a running stream says about itself, every second or so.

``<log root>/heartbeat.json`` is a small JSON document the connection replaces atomically
(`write_heartbeat`): who is streaming (run id, pid, host, log session), in what state, how
fresh its data is, its counters, and the halt if it halted. The Dagster sensor reads it to tell
a live stream from a stale one, and a halted one from one that merely stopped.

`load_heartbeat` is the sensor's reading: it checks the fields it relies on (`Heartbeat`) and
raises `HeartbeatUnreadable` for a file that is not JSON, not an object, or holds a field of
the wrong type, so one odd file can never crash the sensor.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest_platform.core.durable import TEMP_PREFIX, TEMP_SUFFIX

HEARTBEAT_FILE = "heartbeat.json"
FORMAT = 1


def heartbeat_document(
    *,
    run_id: str | None,
    session: str | None,
    state: str,
    updated_at: float,
    started_at: float,
    last_message_at: float | None,
    last_heartbeat_at: float | None,
    last_error: str | None,
    halt: dict[str, Any] | None,
    stats: dict[str, Any],
    bus: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The heartbeat of this process (times are epoch seconds); ``bus``: the fan-out's health
    (None: the fan-out is off)."""
    return {
        "format": FORMAT,
        "run_id": run_id,
        "session": session,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "state": state,
        "updated_at": updated_at,
        "started_at": started_at,
        "last_message_at": last_message_at,
        "last_heartbeat_at": last_heartbeat_at,
        "last_error": last_error,
        "halt": halt,
        "stats": stats,
        "bus": bus,
    }


def write_heartbeat(root: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Replace ``<root>/heartbeat.json`` atomically (no fsync: it is advisory and rewritten)."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    final = base / HEARTBEAT_FILE
    temp = base / f"{TEMP_PREFIX}{HEARTBEAT_FILE}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
    try:
        temp.write_text(json.dumps(payload, sort_keys=True, default=str))
        os.replace(temp, final)
    finally:
        if temp.exists():
            temp.unlink()
    return final


class HeartbeatUnreadable(ValueError):
    """The heartbeat file exists but cannot be understood; the message says why."""


class HaltNote(BaseModel):
    """The ``halt`` of a heartbeat, as far as the sensor reads it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    reason: str = "unknown"
    at: float | None = Field(default=None, strict=True, allow_inf_nan=False)


class BusNote(BaseModel):
    """The fan-out's health, as far as the sensor and ``status`` read it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: str = "unknown"
    buffered: int = 0
    dropped: int = 0
    unacked: int = 0
    gaps: int = 0
    last_error: str | None = None

    def summary(self) -> str:
        text = (
            f"bus {self.state}: {self.buffered} buffered, {self.dropped} dropped, "
            f"{self.unacked} unacked, {self.gaps} gaps"
        )
        return f"{text} ({self.last_error})" if self.last_error else text


class Heartbeat(BaseModel):
    """The fields of the heartbeat file the sensor decides on, type-checked."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str | None = None
    state: str | None = None
    updated_at: float = Field(strict=True, allow_inf_nan=False)
    halt: HaltNote | None = None
    bus: BusNote | None = None

    @property
    def halted_at(self) -> float | None:
        """When the stream halted (epoch seconds), or None if it did not."""
        if self.halt is None or self.state != "halted":
            return None
        return self.halt.at if self.halt.at is not None else self.updated_at


def parse_heartbeat(document: object) -> Heartbeat:
    """A `Heartbeat` from the decoded JSON, or `HeartbeatUnreadable` naming the bad field."""
    if not isinstance(document, dict):
        raise HeartbeatUnreadable(f"not a JSON object but {type(document).__name__}")
    try:
        return Heartbeat.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {error['msg']} "
            f"(got {error.get('input')!r:.40})"
            for error in exc.errors()
        )
        raise HeartbeatUnreadable(problems) from None


def load_heartbeat(root: str | os.PathLike[str]) -> Heartbeat | None:
    """The heartbeat under ``root``: None when there is no file, `HeartbeatUnreadable` when the
    file cannot be read or understood."""
    path = Path(root) / HEARTBEAT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HeartbeatUnreadable(f"{path}: {exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HeartbeatUnreadable(f"{path}: not JSON ({exc})") from None
    try:
        return parse_heartbeat(document)
    except HeartbeatUnreadable as exc:
        raise HeartbeatUnreadable(f"{path}: {exc}") from None
