"""A `requests` session that sends yfinance's Yahoo calls to another base URL (the sandbox).

yfinance hard-codes ``https://query1.finance.yahoo.com`` and friends, but since 1.4 accepts an
injected session. Mounting a transport adapter on the Yahoo hosts reroutes each request at the
last moment, while the session still believes it talks to Yahoo: cookies are stored for the
Yahoo domains and yfinance's cookie-and-crumb handshake runs exactly as in production.

Production passes no session at all, so yfinance picks the one it recommends (curl_cffi with
browser impersonation).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

#: Yahoo host -> path prefix under the sandbox's ``/yahoo`` root.
YAHOO_HOSTS = {
    "query1.finance.yahoo.com": "",
    "query2.finance.yahoo.com": "",
    "fc.yahoo.com": "/fc",
    "guce.yahoo.com": "/guce",
    "consent.yahoo.com": "/consent",
}


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
    """A session whose Yahoo requests go to `base_url` + ``/…`` (e.g. the sandbox's /yahoo)."""
    session = requests.Session()
    adapter = _RerouteAdapter(base_url)
    for host in YAHOO_HOSTS:
        session.mount(f"https://{host}", adapter)
    session.headers["User-Agent"] = "ingest-platform (sandbox)"
    return session
