"""Incident bookkeeping kept in a sensor's cursor: one alert per incident, not one per tick.

A sensor computes which incidents are happening now; `reconcile` compares that with the
incidents its cursor says are open and yields a ``firing`` message for each new one and a
``resolved`` message for each that ended. Messages wait in the cursor's outbox until every
channel took them: `flush` sends them (with the notifier's retries) and keeps what failed for
the next tick, up to `MAX_TICKS` ticks, and the cursor keeps the last deliveries, failed ones
included, as the record of what was sent. All of it is JSON in the cursor (the instance stores
it), never a side file, and it holds only redacted text.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest_platform.operations.alerts import FIRING, RESOLVED, Alert, Message
from ingest_platform.operations.delivery import Delivery, Notifier

#: Ticks a message is retried over before it is given up (and recorded as such).
MAX_TICKS = 10
#: Deliveries kept in the cursor, newest last.
LOG_SIZE = 20
#: Resolved incident keys remembered, so an old event never re-opens one.
RESOLVED_MEMORY = 200


@dataclass
class Book:
    """A sensor's incident state, as stored in its cursor."""

    open: dict[str, Alert] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "open": {k: a.as_dict() for k, a in self.open.items()},
                "outbox": self.outbox,
                "log": self.log[-LOG_SIZE:],
                "resolved": self.resolved[-RESOLVED_MEMORY:],
                "marks": self.marks,
            },
            sort_keys=True,
        )

    @classmethod
    def from_cursor(cls, cursor: str | None) -> Book:
        """The book in a cursor; a missing or unreadable cursor starts an empty one."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(
                open={k: Alert.from_dict(v) for k, v in dict(data.get("open") or {}).items()},
                outbox=list(data.get("outbox") or []),
                log=list(data.get("log") or []),
                resolved=[str(k) for k in data.get("resolved") or []],
                marks={str(k): float(v) for k, v in dict(data.get("marks") or {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls()


def reconcile(
    book: Book,
    current: Mapping[str, Alert],
    now: float,
    unknown: Collection[str] = (),
    notes: Mapping[str, str] | None = None,
) -> list[Message]:
    """Open what is new in ``current``, resolve what is open and no longer in it.

    Keys in ``unknown`` are neither opened nor resolved (their state cannot be told this tick,
    e.g. a check being evaluated right now). ``notes`` says what ended a resolved incident.
    """
    messages = []
    for key, alert in current.items():
        if key not in book.open and key not in unknown:
            book.open[key] = alert
            messages.append(Message(alert, FIRING, now))
    for key in [k for k in book.open if k not in current and k not in unknown]:
        alert = book.open.pop(key)
        book.resolved.append(key)
        note = (notes or {}).get(key, "")
        messages.append(Message(alert, RESOLVED, now, note))
    return messages


def flush(book: Book, notifier: Notifier, messages: list[Message]) -> list[Delivery]:
    """Queue ``messages`` for every channel, then send everything queued; keep what failed."""
    for message in messages:
        book.outbox.append({"message": message.as_dict(), "channels": notifier.names, "ticks": 0})
    deliveries: list[Delivery] = []
    kept = []
    for item in book.outbox:
        message = Message.from_dict(item["message"])
        results = notifier.deliver(message, only=item["channels"])
        deliveries += results
        left = [d.channel for d in results if not d.ok]
        ticks = int(item.get("ticks", 0)) + 1
        if left and ticks < MAX_TICKS:
            kept.append({**item, "channels": left, "ticks": ticks})
        elif left:
            book.log.append(
                {"incident": message.alert.key, "state": message.state, "gave_up": left}
            )
    book.outbox = kept
    book.log += [d.as_dict() for d in deliveries]
    book.log = book.log[-LOG_SIZE:]
    return deliveries


def summary(deliveries: list[Delivery], book: Book) -> str:
    """One line for the tick's skip reason: what was sent, what failed, what is open."""
    sent = [d for d in deliveries if d.ok]
    failed = [d for d in deliveries if not d.ok]
    parts = [f"{len(book.open)} open incident(s)"]
    if sent:
        parts.append("sent " + ", ".join(f"{d.state} {d.incident} via {d.channel}" for d in sent))
    if failed:
        parts.append(
            "FAILED "
            + "; ".join(f"{d.state} {d.incident} via {d.channel}: {d.error}" for d in failed)
        )
    if book.outbox:
        parts.append(f"{len(book.outbox)} message(s) queued for retry next tick")
    return "; ".join(parts)
