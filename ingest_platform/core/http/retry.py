"""Bounded retries for source requests, on tenacity, with Retry-After honoured up to a cap.

tenacity runs the loop; what is ours is the policy: only transient `SourceError`s are retried,
the wait is full jitter (`core.backoff`) or the provider's Retry-After when that is longer, a
Retry-After beyond `RetryPolicy.max_retry_after` ends the retries at once (daily quotas are the
budget's business, not a reason to park a run), and the final error keeps its type, names the
attempts, and drops its chained cause, whose text may hold a URL with a key in it.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import tenacity

from ingest_platform.core.backoff import full_jitter
from ingest_platform.core.http.errors import RateLimited, SourceError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Defaults suit daily batch ingestion against free tiers."""

    max_attempts: int = 4
    backoff_base: float = 0.5  # seconds; retry n waits up to base * 2**n, fully jittered
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0  # a Retry-After beyond this fails fast instead of stalling
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("backoff_base and backoff_cap must be >= 0")
        if self.max_retry_after < 0:
            raise ValueError(f"max_retry_after must be >= 0, got {self.max_retry_after}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("connect_timeout and read_timeout must be > 0")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return full_jitter(self.backoff_base, self.backoff_cap, attempt, rng)


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


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, SourceError) and exc.transient


def _last_error(state: tenacity.RetryCallState) -> SourceError | None:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return None
    exc = outcome.exception()
    return exc if isinstance(exc, SourceError) else None


class _RetryAfterBeyond(tenacity.stop.stop_base):
    """Stop when the provider asks us to wait longer than we are willing to."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        retry_after = getattr(_last_error(retry_state), "retry_after", None)
        return retry_after is not None and retry_after > self.cap


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
    the retries early. The final error names the attempts and keeps its type.
    """
    rng = rng or random.Random()

    def wait(state: tenacity.RetryCallState) -> float:
        delay = policy.backoff(state.attempt_number, rng)
        error = _last_error(state)
        retry_after = getattr(error, "retry_after", None)
        return max(delay, retry_after) if retry_after is not None else delay

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = _last_error(state)
        assert error is not None and state.next_action is not None
        log.info(
            "%s%s: retry %d/%d in %.2f s after: %s",
            source,
            f" {symbol}" if symbol else "",
            state.attempt_number,
            policy.max_attempts - 1,
            state.next_action.sleep,
            error.detail,
        )
        if on_retry is not None:
            on_retry(error)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_transient),
        stop=tenacity.stop_any(
            tenacity.stop_after_attempt(policy.max_attempts),
            _RetryAfterBeyond(policy.max_retry_after),
        ),
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=False,
    )
    try:
        return retrying(attempt)
    except tenacity.RetryError as gave_up:
        last = gave_up.last_attempt
        error = last.exception()
        assert isinstance(error, SourceError)
        attempts = last.attempt_number
    extra = {"retry_after": error.retry_after} if isinstance(error, RateLimited) else {}
    raise type(error)(
        source, f"{error.detail} (gave up after {attempts} attempt(s))", symbol, **extra
    ) from None
