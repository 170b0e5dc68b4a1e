"""Per-source rate limits: sliding windows (e.g. 5 calls per 60 s) that calls wait for.

Two kinds share one behaviour (`acquire` blocks until a call is allowed, and refuses waits
beyond `max_wait`):

- `RateLimiter` keeps its window in memory: every thread of one process shares it;
- `SharedRateLimiter` keeps a log of granted calls in the budget store (`core.http.store`): a
  SQLite file every process of one machine shares, or the Dagster instance's PostgreSQL
  database, shared by every run on every machine. A provider counts our calls, whichever
  process sends them; Dagster pools serialise steps, not the seconds around a step's edges,
  so two runs back to back could otherwise burst past a limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest_platform.core.http import store
from ingest_platform.core.http.errors import BudgetUnavailable, RateLimited
from ingest_platform.core.http.store import RATE_LIMIT_GRANT, RATE_LIMIT_SOURCE, upsert

Limits = tuple[tuple[int, float], ...]


class SlidingWindowLimiter:
    """What both limiters share: validated limits, the wait loop, `max_wait`, the figures.

    Subclasses implement `_take`: grant a call now and return 0, or return the seconds until
    one could be granted, without granting it.
    """

    def __init__(
        self,
        source: str,
        limits: Iterable[tuple[int, float]],
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.limits: Limits = tuple(sorted(limits, key=lambda lim: lim[1]))
        for calls, period in self.limits:
            if calls < 1 or period <= 0:
                raise ValueError(
                    f"{source}: rate limit must be >= 1 call per > 0 s, got {calls}/{period}"
                )
        self.max_wait = max_wait
        self._sleep = sleep
        self._figures_lock = threading.Lock()
        self.waited_seconds = 0.0

    def _take(self) -> float:
        raise NotImplementedError

    def acquire(self) -> float:
        """Take one call slot; return the seconds spent waiting for it."""
        waited = 0.0
        while True:
            wait = self._take()
            if wait <= 0:
                with self._figures_lock:
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


class RateLimiter(SlidingWindowLimiter):
    """Sliding-window limits kept in memory, shared by all threads using this object.

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
        super().__init__(source, limits, max_wait, sleep)
        self._clock = clock
        self._lock = threading.Lock()
        self._history: deque[float] = deque()

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

    def _take(self) -> float:
        with self._lock:
            now = self._clock()
            wait = self._wait_needed(now)
            if wait <= 0:
                self._history.append(now)
            return wait


class SharedRateLimiter(SlidingWindowLimiter):
    """Sliding-window limits over a log of granted calls in a shared store.

    Each `acquire` is one short transaction: lock the source's row (an upsert, which takes the
    row lock on PostgreSQL and the write lock on SQLite), prune grants older than the longest
    window, count the grants in each window, and either log a grant or release the lock and
    sleep until the oldest grant in the way ages out. The time is the store's clock
    (`store.clock`), so machines need not agree on theirs.

    `guard_seconds` widens every window a little: the provider counts requests as they
    *arrive*, and two grants exactly one window apart can arrive closer together than that
    (the budget charge, connection set-up, scheduling, network). Measured against the sandbox
    on a loaded two-core machine, arrivals ran up to 80 ms closer than their grants; 0.1 s
    costs a per-second limit a tenth of its rate and a per-minute one nothing noticeable.

    Each process may configure its own limits for a source; all are checked against the one
    log of calls actually granted.
    """

    def __init__(
        self,
        source: str,
        limits: Iterable[tuple[int, float]],
        location: str | Path,
        max_wait: float = 300.0,
        guard_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(source, limits, max_wait, sleep)
        if guard_seconds < 0:
            raise ValueError(f"{source}: guard_seconds must be >= 0, got {guard_seconds}")
        self.url = store.store_url(location)
        self.guard_seconds = guard_seconds

    @property
    def where(self) -> str:
        """The store, for messages (without credentials)."""
        return store.describe(self.url)

    def _take(self) -> float:
        try:
            return store.transact(self.url, self._take_in)
        except store.StoreUnavailable as exc:
            raise BudgetUnavailable(self.source, f"rate limit store {exc}") from None

    def _take_in(self, conn: Connection) -> float:
        lock = upsert(conn, RATE_LIMIT_SOURCE).values(source=self.source, grants=0)
        conn.execute(
            lock.on_conflict_do_update(
                index_elements=["source"], set_={"grants": RATE_LIMIT_SOURCE.c.grants}
            )
        )
        now = store.clock(conn)
        grants = RATE_LIMIT_GRANT.c
        mine = grants.source == self.source
        longest = max(period for _, period in self.limits) + self.guard_seconds
        conn.execute(sa.delete(RATE_LIMIT_GRANT).where(mine & (grants.granted_at <= now - longest)))
        wait = 0.0
        for calls, period in self.limits:
            window = period + self.guard_seconds
            # The calls-th most recent grant inside the window: while it is there, the window
            # is full until it ages out.
            blocking = conn.execute(
                sa.select(grants.granted_at)
                .where(mine & (grants.granted_at > now - window))
                .order_by(grants.granted_at.desc())
                .limit(1)
                .offset(calls - 1)
            ).scalar()
            if blocking is not None:
                wait = max(wait, blocking + window - now)
        if wait <= 0:
            conn.execute(sa.insert(RATE_LIMIT_GRANT).values(source=self.source, granted_at=now))
            conn.execute(
                sa.update(RATE_LIMIT_SOURCE)
                .where(RATE_LIMIT_SOURCE.c.source == self.source)
                .values(grants=RATE_LIMIT_SOURCE.c.grants + 1)
            )
        return wait


_shared_limiters: dict[tuple[str, Limits, str | None], SlidingWindowLimiter] = {}
_shared_lock = threading.Lock()


def shared_rate_limiter(
    source: str, limits: Iterable[tuple[int, float]], location: str | Path | None = None
) -> SlidingWindowLimiter:
    """The process-wide limiter for `source` with these limits (one per source, limits and
    store): kept in the store at `location` (a SQLite path or a database URL) when given, so
    every process using that store shares it; in memory otherwise."""
    key = (
        source,
        tuple(sorted((int(c), float(p)) for c, p in limits)),
        None if location is None else store.store_url(location),
    )
    with _shared_lock:
        limiter = _shared_limiters.get(key)
        if limiter is None:
            limiter = _shared_limiters[key] = (
                RateLimiter(source, key[1])
                if key[2] is None
                else SharedRateLimiter(source, key[1], key[2])
            )
        return limiter
