"""When the stream stops itself: `HaltPolicy` counts trouble in a window, `Halt` says why.

A halt is for trouble no reconnect can fix: checksum mismatches or critical errors piling up
(``max_mismatches`` / ``max_critical_errors`` within ``halt_window`` seconds), a pair the
exchange does not list, a log that cannot be written. Its `Halt.log_line` is what operators
alert on. (Reconnect backoff is `ingest_platform.core.backoff.Backoff`.)
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from typing import Any

HALT_LOG_PREFIX = "KRAKEN_STREAM_HALT"
MAX_DETAIL = 500
"""Longest detail text kept in a halt line or a gap row."""


@dataclass(frozen=True)
class Halt:
    """Why the stream stopped itself; `log_line` is what operators alert on."""

    reason: str
    detail: str
    at: float  # epoch seconds
    mismatches: int
    critical_errors: int
    window_seconds: float

    def log_line(self) -> str:
        detail = self.detail.replace("\n", " ")[:MAX_DETAIL]
        return (
            f"{HALT_LOG_PREFIX} reason={self.reason} mismatches={self.mismatches} "
            f"critical_errors={self.critical_errors} window_s={self.window_seconds:g} "
            f"detail={json.dumps(detail)}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "at": self.at,
            "mismatches": self.mismatches,
            "critical_errors": self.critical_errors,
            "window_seconds": self.window_seconds,
        }


class HaltPolicy:
    """Counts mismatches and critical errors in a sliding window; says when to halt."""

    def __init__(self, max_mismatches: int, max_critical_errors: int, window: float) -> None:
        self.max_mismatches = max_mismatches
        self.max_critical_errors = max_critical_errors
        self.window = window
        self._mismatches: collections.deque[float] = collections.deque()
        self._critical: collections.deque[float] = collections.deque()

    def _add(self, events: collections.deque[float], now: float) -> int:
        events.append(now)
        while events and events[0] <= now - self.window:
            events.popleft()
        return len(events)

    def mismatch(self, now: float) -> bool:
        return self._add(self._mismatches, now) >= self.max_mismatches

    def critical(self, now: float) -> bool:
        return self._add(self._critical, now) >= self.max_critical_errors

    def counts(self, now: float) -> tuple[int, int]:
        for events in (self._mismatches, self._critical):
            while events and events[0] <= now - self.window:
                events.popleft()
        return len(self._mismatches), len(self._critical)
