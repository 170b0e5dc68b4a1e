"""Time, injected: the protocol, the connection and the log read a `Clock`.

Two readings, because they answer different questions. ``monotonic_ns`` measures intervals
(liveness limits, latency, retry times, segment age): it never jumps when the wall clock is
corrected. ``time_ns`` stamps what is written down (receive times in the log, when a halt
happened), which must be comparable across processes and days.

Passing a clock instead of calling ``time.*`` lets a test drive the stream's notion of time
forward by exactly the amount a rule cares about, instead of sleeping on the wall clock.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where the stream reads the time; `SYSTEM_CLOCK` in production."""

    def monotonic_ns(self) -> int:
        """Nanoseconds on a clock that never goes backwards (intervals only)."""
        ...

    def time_ns(self) -> int:
        """Nanoseconds since the Unix epoch (timestamps that are written down)."""
        ...


class SystemClock:
    """The process's clocks: ``time.perf_counter_ns`` and ``time.time_ns``."""

    monotonic_ns = staticmethod(time.perf_counter_ns)
    time_ns = staticmethod(time.time_ns)


SYSTEM_CLOCK: Clock = SystemClock()
