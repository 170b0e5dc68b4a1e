"""One module per simulated provider: parse a request, answer it the way the real service does.

Handlers are plain objects with no sockets in them: `ingest_platform.sandbox.http` parses the
HTTP request into a `Request`, asks the provider to `classify` it (the endpoint name and symbol
used for counters and fault matching), applies any fault, and writes the `Response` back. The
data-shaping faults (``empty``, ``stale``, ``duplicate_rows``) reach the handler as a `Shape`,
because only the provider knows what a row is in its payload; the transport faults (429, 5xx,
slow, hold, truncate) are applied by the server around the handler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from ingest_platform.sandbox.data import MarketSimulator

#: Query parameters that carry API keys: never part of a request id, never echoed.
KEY_PARAMS = frozenset({"apikey", "api_key", "token"})


class Headers(Protocol):
    """A request's headers as far as a provider reads them: a lookup by name.

    The HTTP server hands over its parsed headers (an `email.message.Message`, whose lookup is
    case-insensitive, as HTTP's header names are); in-process callers and tests pass a dict.
    """

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class Request:
    """A request below a provider's root (``/yahoo/v8/...`` arrives as path ``/v8/...``)."""

    method: str
    path: str  # percent-decoded, below the provider root
    query: Mapping[str, str]  # first value of each parameter
    headers: Headers
    body: bytes = b""
    server_url: str = ""  # "http://127.0.0.1:<port>", for absolute links such as next_url

    @overload
    def param(self, name: str, default: str) -> str: ...
    @overload
    def param(self, name: str, default: None = None) -> str | None: ...
    def param(self, name: str, default: str | None = None) -> str | None:
        """The query parameter's first value, else `default` (a given default: never None)."""
        return self.query.get(name, default)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(frozen=True)
class Route:
    """The endpoint name and symbol a request counts under (and faults match on)."""

    endpoint: str
    symbol: str | None = None


@dataclass(frozen=True)
class Shape:
    """How data faults reshape a well-formed answer (each provider knows what a row is)."""

    empty: bool = False
    stale_sessions: int = 0  # drop this many of the most recent sessions / observations
    duplicate_rows: bool = False
    missing_days: tuple[str, str] | None = None  # (start, end): bars dropped, events kept
    unadjusted: bool = False  # Yahoo chart: prices as traded, split events left out
    #: (relative, start, end): prices in [start, end] (ISO dates, None: open) times 1+relative.
    drift: tuple[float, str | None, str | None] | None = None
    #: HH:MM:SS local: the answer was made at that time of its last session (mid-session).
    refreshed_at: str | None = None

    def refreshed_seconds(self) -> int | None:
        """`refreshed_at` as seconds after local midnight."""
        if self.refreshed_at is None:
            return None
        hours, minutes, seconds = (int(part) for part in self.refreshed_at.split(":"))
        return hours * 3600 + minutes * 60 + seconds

    def drift_factor(self, dates: Any) -> Any:
        """1 + relative on the drifted days, else 1 (an array like `dates`)."""
        import numpy as np

        days = np.asarray(dates, dtype="datetime64[D]")
        factor = np.ones(len(days))
        if self.drift is None:
            return factor
        relative, start, end = self.drift
        inside = np.ones(len(days), dtype=bool)
        if start:
            inside &= days >= np.datetime64(start, "D")
        if end:
            inside &= days <= np.datetime64(end, "D")
        factor[inside] += relative
        return factor


@dataclass
class Response:
    """What the server writes back; Content-Length is always set from `body`."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_bytes(payload: Any, indent: int | None = None) -> bytes:
    """Compact JSON (or indented, as Alpha Vantage prints it), deterministic for equal input."""
    if indent is None:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return json.dumps(payload, indent=indent, allow_nan=False).encode()


def json_response(
    payload: Any, status: int = 200, indent: int | None = None, headers: list | None = None
) -> Response:
    return Response(status, json_bytes(payload, indent), "application/json", headers or [])


def text_response(
    text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    return Response(status, text.encode(), content_type)


def request_id(request: Request) -> str:
    """A request id derived from the request (not the clock), so equal requests match byte for
    byte across runs; API keys are left out of it."""
    query = sorted((k, v) for k, v in request.query.items() if k.lower() not in KEY_PARAMS)
    digest = hashlib.md5(f"{request.path}?{query}".encode(), usedforsecurity=False)
    return digest.hexdigest()


class Provider:
    """Base class: the hooks the server calls. Subclasses set `name` and `root`."""

    name: str = ""
    root: str = ""

    def __init__(self, market: MarketSimulator) -> None:
        self.market = market

    def classify(self, request: Request) -> Route:
        raise NotImplementedError

    def respond(self, request: Request, route: Route, shape: Shape) -> Response:
        raise NotImplementedError

    def rate_limited(self, request: Request) -> Response:
        """The provider's 429 body (the server adds Retry-After)."""
        return text_response("Too Many Requests", 429)

    def server_error(self, request: Request, status: int) -> Response:
        return text_response("Service Unavailable", status)

    def xml_answer(self, request: Request) -> Response:
        """An XML body where JSON was asked for (the ``xml_answer`` fault)."""
        body = '<?xml version="1.0" encoding="utf-8"?>\r\n<error>Service answered XML</error>'
        return Response(200, body.encode(), "application/xml; charset=utf-8")

    def throttled(
        self, request: Request, kind: str, params: Mapping[str, Any] | None = None
    ) -> Response | None:
        """An HTTP-200 throttle message (Alpha Vantage); None falls back to `rate_limited`."""
        return None

    def echo_key(
        self, request: Request, params: Mapping[str, Any] | None = None
    ) -> Response | None:
        """The provider's error answer with text that repeats the caller's credential, as real
        services do ("We have detected your API key as …"); None: the provider has no such
        answer and serves a 500 instead. params.where ``rows`` (where a provider supports it):
        an HTTP-200 answer whose row carries the key where a number belongs, so the error comes
        from the platform's own parsing stage, past the HTTP layer."""
        return None

    def revoked(self, key: str | None) -> bool:
        return key is not None and key in self.market.revoked_keys
