"""`HttpClient`: GET JSON or text from one source with retries, limits, budget and redaction.

Every HTTP source goes through it (yfinance has its own session, wrapped in
`market.sources.yahoo`). ``requests`` puts the full URL into its exception messages, so errors
are re-raised from redacted text with their cause suppressed.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter

from ingest_platform.core.http.budget import CallBudget
from ingest_platform.core.http.errors import (
    MalformedPayload,
    QuotaExhausted,
    RateLimited,
    SourceError,
    SourceUnavailable,
)
from ingest_platform.core.http.limits import SlidingWindowLimiter
from ingest_platform.core.http.redaction import Redactor, install_urllib3_filter, redact_url
from ingest_platform.core.http.retry import RetryPolicy, parse_retry_after, retry_call

T = TypeVar("T")
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


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
        limiter: SlidingWindowLimiter | None = None,
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
        install_urllib3_filter()

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
            except json.JSONDecodeError as exc:
                raise MalformedPayload(
                    self.source,
                    f"invalid JSON ({len(body)} bytes, {exc.msg} at char {exc.pos}) "
                    f"from GET {shown}",
                    symbol,
                ) from None
            except UnicodeDecodeError as exc:  # not UTF-8 at all (an HTML or XML error page)
                raise MalformedPayload(
                    self.source,
                    f"invalid JSON ({len(body)} bytes, not UTF-8 at byte {exc.start}) "
                    f"from GET {shown}",
                    symbol,
                ) from None
        else:
            payload = response.text
        try:
            return interpret(status, payload)
        except QuotaExhausted as exc:
            if self.budget is not None:
                self.budget.mark_exhausted()  # no later request of the day is sent
            raise exc.redacted(self.redact) from None
        except SourceError as exc:
            # Provider text (Alpha Vantage's Information, Polygon's error, FRED's
            # error_message, World Bank's message) may echo the key: scrub it here, once.
            raise exc.redacted(self.redact) from None


def _with_params(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
