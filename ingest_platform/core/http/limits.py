"""Per-source rate limits: sliding windows shared by every thread of the process.

Concurrent *runs* are serialised per source by Dagster pools (see the assets); within a run,
threads share one `RateLimiter` per source and configuration.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from ingest_platform.core.http.errors import RateLimited


class RateLimiter:
    """Sliding-window limits (e.g. 5 calls per 60 s), shared by all threads using it.

    `acquire` blocks until a call is allowed. Waits longer than `max_wait` raise `RateLimited`
    rather than parking a run for hours: daily caps belong to the `CallBudget`.
    """

    def __init__(
        self,
        source: str,
        limits: Iterable[tuple[int, float]],
        max_wait: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.limits = sorted(limits, key=lambda lim: lim[1])
        for calls, period in self.limits:
            if calls < 1 or period <= 0:
                raise ValueError(
                    f"{source}: rate limit must be >= 1 call per > 0 s, got {calls}/{period}"
                )
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._history: deque[float] = deque()
        self.waited_seconds = 0.0

    def _wait_needed(self, now: float) -> float:
        longest = max((p for _, p in self.limits), default=0.0)
        while self._history and now - self._history[0] >= longest:
            self._history.popleft()
        wait = 0.0
        for calls, period in self.limits:
            recent = [t for t in self._history if now - t < period]
            if len(recent) >= calls:
                wait = max(wait, recent[-calls] + period - now)
        return wait

    def acquire(self) -> float:
        """Take one call slot; return the seconds spent waiting for it."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    self._history.append(now)
                    self.waited_seconds += waited
                    return waited
            if waited + wait > self.max_wait:
                raise RateLimited(
                    self.source,
                    f"local rate limit {self.describe()} would need a {waited + wait:.0f} s wait "
                    f"(max_wait {self.max_wait:.0f} s)",
                    retry_after=wait,
                )
            self._sleep(wait)
            waited += wait

    def describe(self) -> str:
        return ", ".join(f"{calls}/{period:g}s" for calls, period in self.limits)


_shared_limiters: dict[tuple[str, tuple[tuple[int, float], ...]], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_rate_limiter(source: str, limits: Iterable[tuple[int, float]]) -> RateLimiter:
    """The process-wide limiter for `source` with these limits (one per source and config)."""
    key = (source, tuple(sorted((int(c), float(p)) for c, p in limits)))
    with _shared_lock:
        limiter = _shared_limiters.get(key)
        if limiter is None:
            limiter = _shared_limiters[key] = RateLimiter(source, key[1])
        return limiter
