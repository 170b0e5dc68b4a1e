"""Incidents of the Kraken stream: a halt, a run replaced by ``kraken_stream_sensor``, or a stream
run that failed otherwise; each ends when a different run is streaming again.

Read from what the stream already records, never from its internals:

- the heartbeat file (``heartbeat.json``, `streaming.kraken.heartbeat`): ``state: halted`` with
  the halt's reason, detail and time, written by the halted run itself;
- the stream job's runs in the instance: a failed run (a halt fails its run with
  ``Kraken stream halted: ...``; a run the sensor could not cancel is marked failed with
  ``kraken_stream_sensor: ...``), and a replacement, which the sensor launches with the tag
  ``ingest_platform/launch_reason`` = ``run <id>: heartbeat N s old (> M s); replacing``.

One incident per stream run (``stream:<run id>``), whichever of these reveals it first. Runs are
found through watermarks kept in the sensor's cursor (the newest update and creation times
seen), so each is looked at once; an incident that resolved is remembered and never re-opened.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from ingest_platform.operations.alerts import Alert
from ingest_platform.operations.incidents import Book
from ingest_platform.operations.run_incidents import (
    failure_reason,
    run_failure_event,
    step_failures_of,
)
from ingest_platform.streaming.kraken.heartbeat import (
    HEARTBEAT_FILE,
    Heartbeat,
    HeartbeatUnreadable,
    parse_heartbeat,
)
from ingest_platform.streaming.kraken.job import JOB_NAME

LAUNCH_REASON_TAG = "ingest_platform/launch_reason"
_REPLACED = re.compile(r"^run (\S+): .*replacing")
HALT_PREFIX = "Kraken stream halted"
SENSOR_PREFIX = "kraken_stream_sensor:"
#: How far back the first evaluation looks for failed or replacing runs.
LOOKBACK_SECONDS = 3600.0
FAILED_MARK, CREATED_MARK = "failed_after", "created_after"


@dataclass(frozen=True)
class StreamView:
    """The heartbeat as the alerts read it: the validated fields, the raw document (for the
    halt's detail), or why it could not be read."""

    heartbeat: Heartbeat | None
    document: dict[str, Any]
    unreadable: str | None = None

    def healthy_run(self, now: float, stale_after: float) -> str | None:
        """The run streaming right now (a fresh heartbeat in state ``streaming``), if any."""
        beat = self.heartbeat
        if beat is None or beat.state != "streaming" or now - beat.updated_at > stale_after:
            return None
        return beat.run_id


def read_stream(root: Path) -> StreamView:
    """The heartbeat file under ``root`` (no file: an empty view)."""
    path = Path(root) / HEARTBEAT_FILE
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return StreamView(None, {})
    except (OSError, ValueError) as exc:
        return StreamView(None, {}, f"{path}: {exc}")
    try:
        return StreamView(parse_heartbeat(document), dict(document))
    except HeartbeatUnreadable as exc:
        return StreamView(None, {}, f"{path}: {exc}")


def _alert(run_id: str, cause: str, reason: str, link: Any) -> Alert:
    summaries = {
        "halted": "Kraken stream halted",
        "replaced": "Kraken stream run replaced by kraken_stream_sensor",
        "failed": "Kraken stream run failed",
    }
    return Alert(
        key=f"stream:{run_id}",
        kind="stream",
        summary=summaries[cause],
        where={"job": JOB_NAME, "run": run_id},
        reason=reason,
        link=link(run_id),
    )


def _halt_reason(document: dict[str, Any]) -> str:
    raw = document.get("halt")
    halt: dict[str, Any] = raw if isinstance(raw, dict) else {}
    parts = [str(halt.get("reason") or "unknown")]
    if halt.get("detail"):
        parts.append(str(halt["detail"]))
    counts = [f"{k}={halt[k]}" for k in ("mismatches", "critical_errors") if k in halt]
    return ": ".join(parts) + (f" ({', '.join(counts)})" if counts else "")


def discover(
    instance: DagsterInstance, view: StreamView, book: Book, now: float, link: Any
) -> dict[str, Alert]:
    """Stream incidents revealed since the cursor's watermarks (which this advances)."""
    found: dict[str, Alert] = {}
    beat = view.heartbeat
    if beat is not None and beat.state == "halted" and beat.run_id:
        found[f"stream:{beat.run_id}"] = _alert(
            beat.run_id, "halted", _halt_reason(view.document), link
        )

    since = book.marks.get(FAILED_MARK, now - LOOKBACK_SECONDS)
    failed = instance.get_run_records(
        filters=RunsFilter(
            job_name=JOB_NAME,
            statuses=[DagsterRunStatus.FAILURE],
            updated_after=dt.datetime.fromtimestamp(since, dt.UTC),
        )
    )
    for record in failed:
        run_id = record.dagster_run.run_id
        book.marks[FAILED_MARK] = max(
            book.marks.get(FAILED_MARK, since), record.update_timestamp.timestamp()
        )
        if f"stream:{run_id}" in found:
            continue
        event = run_failure_event(instance, run_id)
        reason = failure_reason(step_failures_of(instance, run_id), event)
        cause = "failed"
        if HALT_PREFIX in reason:
            cause = "halted"
        elif SENSOR_PREFIX in reason:
            cause = "replaced"
        found[f"stream:{run_id}"] = _alert(run_id, cause, reason, link)

    since = book.marks.get(CREATED_MARK, now - LOOKBACK_SECONDS)
    created = instance.get_run_records(
        filters=RunsFilter(
            job_name=JOB_NAME, created_after=dt.datetime.fromtimestamp(since, dt.UTC)
        )
    )
    for record in created:
        book.marks[CREATED_MARK] = max(
            book.marks.get(CREATED_MARK, since), record.create_timestamp.timestamp()
        )
        reason = record.dagster_run.tags.get(LAUNCH_REASON_TAG, "")
        match = _REPLACED.match(reason)
        if match:
            old = match.group(1)
            found[f"stream:{old}"] = _alert(
                old, "replaced", f"{reason} (new run {record.dagster_run.run_id})", link
            )
    return {k: a for k, a in found.items() if k not in book.resolved}
