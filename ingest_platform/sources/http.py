"""The one HTTP layer every non-yfinance source uses.

It owns what each provider client would otherwise re-implement, and get subtly wrong:
- timeouts on every request, and bounded retries with exponential backoff and full jitter that
  honour ``Retry-After`` (but refuse to sleep longer than `RetryPolicy.max_retry_after`);
- a per-source rate limiter shared by every thread of the process (concurrent *runs* are
  serialised per source by a Dagster pool, see the assets);
- a persisted per-source call budget (calls, cost, remaining), charged per attempt, because a
  free tier counts every request we send, retries included;
- API-key redaction in every URL, log line and exception. Keys travel in query strings for
  Alpha Vantage and FRED, and ``requests`` puts the full URL into its exception messages, so
  errors are re-raised from redacted text with their cause suppressed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from ingest_platform.sources.errors import (
    BudgetExhausted,
    MalformedPayload,
    RateLimited,
    SourceError,
    SourceUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Query-string parameters whose values are secrets, compared case-insensitively.
SECRET_PARAMS = frozenset({"apikey", "api_key", "token", "access_token", "key", "secret"})
REDACTED = "***"
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


# ---- redaction -----------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """`url` with every secret query-parameter value replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, REDACTED if k.lower() in SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*:,;/")))


_SECRET_NAMES = "|".join(sorted(SECRET_PARAMS))
_URL_IN_TEXT = re.compile(rf"(?i)([?&](?:{_SECRET_NAMES})=)[^&\s'\")]+")


class Redactor:
    """Removes known secret values and secret query parameters from arbitrary text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Very short "secrets" would redact innocent text; real keys are long.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _URL_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class _RedactingFilter(logging.Filter):
    """urllib3 logs request lines (with query strings) at DEBUG: scrub them too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = _URL_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, str(record.msg))
        return True


_filter_installed = threading.Lock()


def _install_urllib3_filter() -> None:
    with _filter_installed:
        logger = logging.getLogger("urllib3.connectionpool")
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())


# ---- retry policy --------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Defaults suit daily batch ingestion against free tiers."""

    max_attempts: int = 4
    backoff_base: float = 0.5  # seconds; attempt n waits up to base * 2**n, fully jittered
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0  # a Retry-After beyond this fails fast instead of stalling
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("backoff_base and backoff_cap must be >= 0")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
        return rng.uniform(0, min(self.backoff_cap, self.backoff_base * (2**attempt)))


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def retry_call(
    attempt: Callable[[], T],
    source: str,
    symbol: str | None,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[SourceError], None] | None = None,
) -> T:
    """Call `attempt` until it succeeds, retrying transient `SourceError`s with backoff.

    Non-transient errors propagate at once. A Retry-After longer than the policy allows ends
    the retries early. The final error names the attempts and keeps its type, and is raised
    without its chained cause, whose text may hold a URL with a key in it.
    """
    rng = rng or random.Random()
    last_error: SourceError | None = None
    attempts = 0
    for attempt_number in range(policy.max_attempts):
        if attempt_number:
            assert last_error is not None
            delay = policy.backoff(attempt_number, rng)
            retry_after = getattr(last_error, "retry_after", None)
            if retry_after is not None:
                if retry_after > policy.max_retry_after:
                    break  # the provider asks for longer than we are willing to wait
                delay = max(delay, retry_after)
            log.info(
                "%s%s: retry %d/%d in %.2f s after: %s",
                source,
                f" {symbol}" if symbol else "",
                attempt_number,
                policy.max_attempts - 1,
                delay,
                last_error.detail,
            )
            if on_retry is not None:
                on_retry(last_error)
            sleep(delay)
        attempts += 1
        try:
            return attempt()
        except SourceError as exc:
            if not exc.transient:
                raise
            last_error = exc
    assert last_error is not None
    extra = {"retry_after": last_error.retry_after} if isinstance(last_error, RateLimited) else {}
    raise type(last_error)(
        source, f"{last_error.detail} (gave up after {attempts} attempt(s))", symbol, **extra
    ) from None


# ---- rate limiting -------------------------------------------------------------------------


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


# ---- budgets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetReport:
    source: str
    day: str
    calls: int
    cost: float
    limit: int | None
    remaining: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "day": self.day,
            "calls": self.calls,
            "cost": round(self.cost, 6),
            "limit": self.limit,
            "remaining": self.remaining,
        }


class CallBudget:
    """Calls (and their cost) per source per UTC day, persisted in SQLite.

    SQLite gives atomic check-and-increment across threads *and* processes (concurrent runs,
    the sensor), so two runs cannot both spend the last call of a free tier.
    """

    def __init__(
        self,
        source: str,
        path: str | Path,
        daily_limit: int | None = None,
        cost_per_call: float = 0.0,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self.source = source
        self.path = Path(path)
        self.daily_limit = daily_limit
        self.cost_per_call = cost_per_call
        self._today = today
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS call_budget ("
                " source TEXT NOT NULL, day TEXT NOT NULL, calls INTEGER NOT NULL,"
                " cost REAL NOT NULL, PRIMARY KEY (source, day))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def charge(self, calls: int = 1) -> None:
        """Spend `calls` calls, or raise `BudgetExhausted` without spending any."""
        day = self._today().isoformat()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT calls FROM call_budget WHERE source = ? AND day = ?", (self.source, day)
            ).fetchone()
            used = row[0] if row else 0
            if self.daily_limit is not None and used + calls > self.daily_limit:
                conn.execute("ROLLBACK")
                raise BudgetExhausted(
                    self.source,
                    f"daily call budget spent: {used}/{self.daily_limit} calls on {day} (UTC)",
                )
            conn.execute(
                "INSERT INTO call_budget (source, day, calls, cost) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, day) DO UPDATE SET calls = calls + excluded.calls, "
                "cost = cost + excluded.cost",
                (self.source, day, calls, calls * self.cost_per_call),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def remaining(self) -> int | None:
        return self.report().remaining

    def report(self) -> BudgetReport:
        day = self._today().isoformat()
        with self._connect() as conn:
            row = conn.execute(
                "SELECT calls, cost FROM call_budget WHERE source = ? AND day = ?",
                (self.source, day),
            ).fetchone()
        calls, cost = row if row else (0, 0.0)
        remaining = None if self.daily_limit is None else max(0, self.daily_limit - calls)
        return BudgetReport(self.source, day, calls, cost, self.daily_limit, remaining)


# ---- the client ----------------------------------------------------------------------------


@dataclass
class ClientStats:
    """What a client did, for materialization metadata."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    bytes_received: int = 0
    rate_limit_wait_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "bytes_received": self.bytes_received,
            "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
        }


Interpret = Callable[[int, Any], T]


class HttpClient:
    """GET JSON (or text) from one source with retries, limits, budget and redaction."""

    def __init__(
        self,
        source: str,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        budget: CallBudget | None = None,
        secrets: Iterable[str | None] = (),
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pool_size: int = 16,
    ) -> None:
        self.source = source
        self.retry = retry or RetryPolicy()
        self.limiter = limiter
        self.budget = budget
        self.redact = Redactor(secrets)
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._local = threading.local()
        self._session = session
        self._headers = dict(headers or {})
        self._pool_size = pool_size
        _install_urllib3_filter()

    def _session_for_thread(self) -> requests.Session:
        if self._session is not None:
            return self._session
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"User-Agent": "ingest-platform/0.1", **self._headers})
            self._local.session = session
        return session

    def get_json(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        symbol: str | None = None,
        interpret: Interpret[T] | None = None,
    ) -> T:
        """GET `url` and return ``interpret(status, payload)`` (the payload itself by default).

        `interpret` turns provider-specific answers into data or typed errors. Transient
        errors (throttling, 5xx, timeouts, truncated JSON) are retried with backoff; others
        propagate at once.
        """
        return self._request(url, params, symbol, interpret, parse_json=True)

    def get_text(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        symbol: str | None = None,
        interpret: Interpret[T] | None = None,
    ) -> T:
        return self._request(url, params, symbol, interpret, parse_json=False)

    def _request(self, url, params, symbol, interpret, parse_json: bool):
        if interpret is None:

            def interpret(status: int, payload: Any) -> Any:
                if status >= 400:
                    raise SourceError(self.source, f"unexpected HTTP {status}", symbol)
                return payload

        def on_retry(error: SourceError) -> None:
            self.stats.add(retries=1, throttled=int(isinstance(error, RateLimited)))

        return retry_call(
            lambda: self._attempt(url, params, symbol, interpret, parse_json),
            self.source,
            symbol,
            self.retry,
            sleep=self._sleep,
            rng=self._rng,
            on_retry=on_retry,
        )

    def _attempt(self, url, params, symbol, interpret, parse_json: bool):
        if self.limiter is not None:
            self.stats.add(rate_limit_wait_seconds=self.limiter.acquire())
        if self.budget is not None:
            self.budget.charge()
        self.stats.add(requests=1)
        timeout = (self.retry.connect_timeout, self.retry.read_timeout)
        shown = self.redact(redact_url(_with_params(url, params)))
        try:
            response = self._session_for_thread().get(url, params=params, timeout=timeout)
            body = response.content
        except requests.Timeout:
            raise SourceUnavailable(
                self.source, f"timed out after {timeout[1]:g} s: GET {shown}", symbol
            ) from None
        except requests.RequestException as exc:
            reason = self.redact(f"{type(exc).__name__}: {exc}")
            raise SourceUnavailable(self.source, f"GET {shown} failed: {reason}", symbol) from None
        self.stats.add(bytes_received=len(body))
        status = response.status_code
        if status == 429:
            raise RateLimited(
                self.source,
                f"HTTP 429 from GET {shown}",
                symbol,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status in _RETRYABLE_STATUS:
            raise SourceUnavailable(self.source, f"HTTP {status} from GET {shown}", symbol)
        if parse_json:
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise MalformedPayload(
                    self.source,
                    f"invalid JSON ({len(body)} bytes, {exc.msg} at char {exc.pos}) "
                    f"from GET {shown}",
                    symbol,
                ) from None
        else:
            payload = response.text
        return interpret(status, payload)


def _with_params(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
