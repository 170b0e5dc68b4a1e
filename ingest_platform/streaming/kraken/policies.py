"""The client's small policies: reconnect `Backoff`, and `HaltPolicy` deciding when to `Halt`."""

from __future__ import annotations

import collections
import json
import random
from dataclasses import dataclass
from typing import Any

HALT_LOG_PREFIX = "KRAKEN_STREAM_HALT"
MAX_DETAIL = 500
"""Longest detail text kept in a halt line or a gap row."""


class Backoff:
    """Exponential backoff with a cap and full jitter: ``uniform(0, min(cap, base * 2**n))``.

    Full jitter spreads a fleet of reconnecting clients over the whole window, which is what
    keeps them from reconnecting in lockstep after an exchange restart.
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        return min(self.cap, self.base * 2 ** min(self.attempt, 60))

    def next_delay(self) -> float:
        delay = self._rng.uniform(0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


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
