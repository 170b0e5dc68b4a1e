"""The heartbeat file: what a running stream says about itself, every second or so.

``<log root>/heartbeat.json`` is a small JSON document the connection replaces atomically
(`write_heartbeat`): who is streaming (run id, pid, host, log session), in what state, how
fresh its data is, its counters, and the halt if it halted. The Dagster sensor reads it to tell
a live stream from a stale one, and a halted one from one that merely stopped.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

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
) -> dict[str, Any]:
    """The heartbeat of this process (times are epoch seconds)."""
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


def read_heartbeat(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last heartbeat the stream wrote, or None when there is none (or it is unreadable)."""
    try:
        raw = json.loads((Path(root) / HEARTBEAT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None
