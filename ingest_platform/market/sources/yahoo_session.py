"""The session yfinance talks to Yahoo through: chart failures surface to our retry policy.

Two things yfinance does on its own are contained here:

- On any chart answer with status >= 400 it retries at once, ignoring ``Retry-After``, and
  toggles its *process-wide* cookie strategy, so one throttled or unknown symbol makes every
  other symbol pay extra cookie and crumb requests. The session raises `ChartStatus` for such
  answers before yfinance sees them (401, Yahoo's "refresh your crumb", is left to yfinance's
  own recovery). `YahooSource` turns it into a typed error, and the shared retry policy, with
  its Retry-After handling and backoff, governs the retry.
- yfinance hard-codes ``https://query1.finance.yahoo.com`` and friends, but accepts an injected
  session: for the sandbox, a transport adapter mounted on the Yahoo hosts reroutes each request
  at the last moment, while the session still believes it talks to Yahoo (cookies are stored
  for the Yahoo domains and the cookie-and-crumb handshake runs exactly as in production).

Production keeps the session yfinance recommends: curl_cffi with browser impersonation.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from ingest_platform.core.http.retry import parse_retry_after

#: Yahoo host -> path prefix under the sandbox's ``/yahoo`` root.
YAHOO_HOSTS = {
    "query1.finance.yahoo.com": "",
    "query2.finance.yahoo.com": "",
    "fc.yahoo.com": "/fc",
    "guce.yahoo.com": "/guce",
    "consent.yahoo.com": "/consent",
}
CHART_PATH = "/v8/finance/chart/"


class ChartStatus(Exception):
    """A chart request answered HTTP >= 400 (401 aside). Deliberately not an OSError: yfinance
    retries those on its own."""

    def __init__(self, status: int, retry_after: float | None, description: str) -> None:
        self.status = status
        self.retry_after = retry_after
        self.description = description
        super().__init__(f"HTTP {status}: {description}")


def check_chart_answer(url: str, status: int, headers: Any, body: bytes) -> None:
    """Raise `ChartStatus` for a failed chart answer, with Yahoo's own description."""
    if CHART_PATH not in url or status < 400 or status == 401:
        return
    description = f"HTTP {status}"
    try:
        error = json.loads(body)["chart"]["error"]
        description = str(error.get("description") or error.get("code") or description)
    except (ValueError, KeyError, TypeError):
        pass
    raise ChartStatus(status, parse_retry_after(headers.get("Retry-After")), description)


class GuardedSession(requests.Session):
    """A requests session whose failed chart answers raise `ChartStatus`."""

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        check_chart_answer(str(url), response.status_code, response.headers, response.content)
        return response


def guarded_curl_session() -> Any:
    """yfinance's recommended session (curl_cffi, impersonating Chrome), guarded the same way.
    Falls back to a guarded requests session where curl_cffi is not installed."""
    try:
        from curl_cffi import requests as curl_requests
    except ImportError:
        return GuardedSession()

    class GuardedCurlSession(curl_requests.Session):
        def request(self, method, url, *args, **kwargs):
            response = super().request(method, url, *args, **kwargs)
            check_chart_answer(str(url), response.status_code, response.headers, response.content)
            return response

    return GuardedCurlSession(impersonate="chrome")


class _RerouteAdapter(HTTPAdapter):
    def __init__(self, base_url: str) -> None:
        super().__init__(pool_connections=4, pool_maxsize=32)
        self._base = urlsplit(base_url.rstrip("/"))

    def reroute(self, url: str) -> str:
        parts = urlsplit(url)
        prefix = YAHOO_HOSTS.get(parts.hostname or "")
        if prefix is None:
            raise requests.exceptions.InvalidURL(f"not a Yahoo URL this session can route: {url}")
        path = f"{self._base.path}{prefix}{parts.path}"
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))

    def send(self, request, **kwargs):
        routed = request.copy()
        routed.url = self.reroute(request.url)
        response = super().send(routed, **kwargs)
        response.request = request  # cookies and redirects stay keyed to the Yahoo URL
        return response


def routed_session(base_url: str) -> requests.Session:
    """A guarded session whose Yahoo requests go to `base_url` + ``/…`` (the sandbox's
    /yahoo)."""
    session = GuardedSession()
    adapter = _RerouteAdapter(base_url)
    for host in YAHOO_HOSTS:
        session.mount(f"https://{host}", adapter)
    session.headers["User-Agent"] = "ingest-platform (sandbox)"
    return session
