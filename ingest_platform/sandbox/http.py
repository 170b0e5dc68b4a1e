"""The sandbox's HTTP side: every simulated provider on one loopback port, with faults and counters.

Threaded, not async: the stdlib ``ThreadingHTTPServer`` with a ``BaseHTTPRequestHandler`` that
speaks HTTP/1.1 keep-alive (``Content-Length`` on every response, daemon threads). Why:

- the work per request is CPU-bound formatting (numpy slices into JSON) plus deliberate waits
  for the ``slow`` and ``timeout`` faults. A thread per connection keeps handlers plain
  synchronous functions, and a held connection blocks only its own thread;
- everything that talks to it (yfinance, ``requests``, Dagster ops) is synchronous, and the
  server starts inside a test process with no event loop to share or leak;
- keep-alive plus ``TCP_NODELAY`` keeps per-request overhead small; the GIL bounds throughput to
  about one core, which ``benchmarks/sandbox_http_serving.py`` shows is far above a backfill's
  needs.

Layout under `SandboxHTTPServer.url`: ``/yahoo``, ``/fred``, ``/worldbank/v2``, ``/alphavantage``,
``/polygon``, ``/wikipedia`` (see `BASE_PATHS`; handlers in `ingest_platform.sandbox.providers`)
and the JSON control API under ``/_sandbox/``:

- ``GET health``: ``{"status": "ok", "url", "providers": {name: base_url}}``;
- ``GET faults``: ``{"faults": [active rules, with their "fired" counts]}``; ``POST faults`` with
  ``{"faults": [{kind, endpoint, symbol, times, params}]}`` adds rules (400 naming the problem
  when one is bad, and then none is added); ``DELETE faults`` clears them;
- ``GET counters``: `RequestCounters.snapshot` (``{endpoint: {symbol: n}}``, ``-`` when a request
  has no symbol); ``DELETE counters`` resets them (arrival times included);
- ``GET rates``: `RequestCounters.rates` (``{endpoint: {"per_second": {epoch second: n},
  "busiest_second": n}}``), to see whether a client kept a provider's per-second limit;
- ``GET config``: the simulator's settings (seed, as_of, drifts, page size; revoked keys only
  counted) and the providers' base URLs.

Every provider request is counted under its endpoint and symbol first (its arrival time noted),
then the `FaultPlan` is asked for a fault (``take(endpoint, symbol, kinds=HTTP_FAULTS)``), then
the provider answers.
Control requests are not counted. What each fault kind does:

- ``rate_limit``: 429 + ``Retry-After`` (params.retry_after, default 1, whole seconds) with the
  provider's body (Yahoo ``Edge: Too Many Requests``; Polygon's and FRED's JSON errors; Alpha
  Vantage ``{"Note"}``; World Bank's message array; Wikipedia an HTML page);
- ``server_error``: params.status (default 503) with the provider's error body;
- ``slow``: waits params.delay (default 1 s), then answers normally;
- ``timeout``: holds the request params.delay (default 30 s) without a byte, then closes the
  connection; `SandboxHTTPServer.stop` releases held requests at once;
- ``truncated_json``: the normal body cut to half, with a matching Content-Length;
- ``throttle_note`` / ``throttle_information``: Alpha Vantage's HTTP-200 ``Note`` /
  ``Information``; any other provider answers its ``rate_limit`` 429 instead;
- ``empty`` / ``stale`` (params.sessions, default 1) / ``duplicate_rows``: a well-formed answer
  without rows / without the latest sessions (observations, years, constituent changes) / with
  every row twice; see each provider module for what a row is there;
- ``echo_key``: the provider's error answer whose text repeats the request's API key (or
  Yahoo's crumb), to prove the platform redacts provider text; params.where ``rows`` (Polygon,
  FRED): an HTTP-200 answer with the key in a row's value, which the source's parsing stage
  rejects quoting it;
- ``throttle_information`` takes params.variant: ``daily`` (default; echoes the key, as the
  real daily-quota notice does), ``burst`` (1 request per second) or ``premium``;
- ``drift`` (params.relative, default 0.02; params.start / params.end, ISO dates): Alpha
  Vantage's or Polygon's prices on those days (all days without bounds) moved by `relative`,
  the controllable cross-source drift the drift check must catch;
- ``unadjusted``: a Yahoo chart answer with prices as traded and no split events, as when
  a provider misses a split (the unadjusted-split anomaly check must catch it);
- ``missing_days`` (params.start, params.end, ISO dates): a Yahoo chart answer without the bars
  of those days, its split and dividend events kept, as when Yahoo has a hole in a history;
- ``intraday`` (params.at, the exchange's local time, default ``14:07:03``): an answer made
  during the last session, as a stale cache can hand over long after the close: Alpha
  Vantage's ``Last Refreshed`` carries that time, Yahoo's ``regularMarketTime`` falls before
  the session's end; the last bar is that session so far;
- ``xml_answer``: HTTP 200 with an XML body (``application/xml``) although JSON was asked for,
  as the World Bank API sometimes answers (its XML rendering of the same data).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ingest_platform.core.http.redaction import redact_query_values
from ingest_platform.sandbox.control import (
    HTTP_FAULTS,
    Fault,
    FaultPlan,
    FaultPlanError,
    RequestCounters,
)
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.providers import (
    Headers,
    Provider,
    Request,
    Response,
    Route,
    Shape,
    json_response,
)
from ingest_platform.sandbox.providers.alpha_vantage import AlphaVantageProvider
from ingest_platform.sandbox.providers.fred import FredProvider
from ingest_platform.sandbox.providers.polygon import PolygonProvider
from ingest_platform.sandbox.providers.wikipedia import WikipediaProvider
from ingest_platform.sandbox.providers.worldbank import WorldBankProvider
from ingest_platform.sandbox.providers.yahoo import YahooProvider

log = logging.getLogger(__name__)

PROVIDERS: tuple[type[Provider], ...] = (
    YahooProvider,
    FredProvider,
    WorldBankProvider,
    AlphaVantageProvider,
    PolygonProvider,
    WikipediaProvider,
)
#: Provider name -> path of its base URL on the sandbox.
BASE_PATHS: dict[str, str] = {p.name: p.root for p in PROVIDERS}
CONTROL_ROOT = "/_sandbox/"
_DEFAULT_DELAYS = {"slow": 1.0, "timeout": 30.0}


@dataclass(frozen=True)
class Hold:
    """Answer nothing for `seconds` (or until the server stops), then close the connection."""

    seconds: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # a burst of pooled clients must not hit SYN retries

    def __init__(self, address: tuple[str, int], sandbox: SandboxHTTPServer) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut every open connection, so idle keep-alive threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ingest-platform-sandbox/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # seconds an idle keep-alive connection may sit before it is closed
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sandbox = self.server.sandbox
        outcome = sandbox.handle(self.command, self.path, self.headers, body)
        if isinstance(outcome, Hold):
            sandbox.wait(outcome.seconds)
            self.close_connection = True
            return
        self.send_response(outcome.status)
        self.send_header("Content-Type", outcome.content_type)
        self.send_header("Content-Length", str(len(outcome.body)))
        for name, value in outcome.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(outcome.body)

    def log_message(self, format: str, *args: Any) -> None:
        # Like a real provider's access log, minus the keys: the sandbox logs to the same
        # process as the platform in tests and the demo.
        log.debug("%s %s", self.address_string(), redact_query_values(format % args))


class SandboxHTTPServer:
    """Every simulated HTTP source behind one loopback port; see the module docstring.

    ``with SandboxHTTPServer(MarketSimulator(seed=7)) as server:`` starts it in a daemon thread;
    point each client at ``server.base_url("yahoo")`` (``"fred"``, ``"worldbank"``,
    ``"alpha_vantage"``, ``"polygon"``, ``"wikipedia"``).
    """

    def __init__(
        self,
        market: MarketSimulator | None = None,
        faults: FaultPlan | None = None,
        counters: RequestCounters | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.market = market if market is not None else MarketSimulator()
        self.faults = faults if faults is not None else FaultPlan()
        self.counters = counters if counters is not None else RequestCounters()
        self.host, self.port = host, port
        self._providers = [cls(self.market) for cls in PROVIDERS]
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop_done = threading.Event()
        self._stopping = threading.Event()
        self._url: str | None = None
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``; valid once started."""
        if self._url is None:
            raise RuntimeError("the sandbox HTTP server is not started")
        return self._url

    def base_url(self, provider: str) -> str:
        """The base URL a provider's client takes instead of the real service's."""
        if provider not in BASE_PATHS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(BASE_PATHS)}")
        return self.url + BASE_PATHS[provider]

    def base_urls(self) -> dict[str, str]:
        return {name: self.base_url(name) for name in BASE_PATHS}

    def _bind(self) -> _Server:
        with self._lock:
            if self._httpd is not None:
                raise RuntimeError("the sandbox HTTP server is already running")
            self._stopping.clear()
            self._loop_done.clear()
            self._httpd = _Server((self.host, self.port), self)
            host, port = self._httpd.server_address[:2]
            if isinstance(host, bytes):  # typeshed allows it; an AF_INET server gives str
                host = host.decode()
            self._url = f"http://{host}:{port}"
            return self._httpd

    def _loop(self, httpd: _Server) -> None:
        try:
            httpd.serve_forever(poll_interval=0.05)
        finally:
            self._loop_done.set()

    def start(self) -> None:
        """Listen, and serve from a daemon thread; returns once the socket accepts connections."""
        httpd = self._bind()
        self._thread = threading.Thread(
            target=self._loop, args=(httpd,), name=f"sandbox-http-{self._url}", daemon=True
        )
        self._thread.start()
        log.info("sandbox HTTP server listening on %s", self._url)

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (the ``ingest-platform sandbox`` command)."""
        httpd = self._bind()
        log.info("sandbox HTTP server listening on %s", self._url)
        try:
            self._loop(httpd)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, release held requests and open connections; safe to call twice."""
        with self._lock:
            httpd, self._httpd = self._httpd, None
            thread, self._thread = self._thread, None
        if httpd is None:
            return
        self._stopping.set()  # wakes held ("timeout") and slow requests
        if not self._loop_done.is_set():
            httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def wait(self, seconds: float) -> None:
        """Sleep for a fault, but wake at once when the server stops."""
        self._stopping.wait(max(seconds, 0.0))

    def __enter__(self) -> SandboxHTTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch ------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Headers, body: bytes = b""
    ) -> Response | Hold:
        """Answer one request (the socket-free core, also handy for in-process use)."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        if path.startswith(CONTROL_ROOT):
            return self._control(method, path[len(CONTROL_ROOT) :].strip("/"), body)
        provider = next(
            (p for p in self._providers if path == p.root or path.startswith(p.root + "/")), None
        )
        if provider is None:
            self.counters.count_request("sandbox.unknown")
            message = f"no simulated provider serves {path}"
            return json_response({"error": message, "providers": BASE_PATHS}, 404)
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(key, value)
        request = Request(
            method, path[len(provider.root) :] or "/", query, headers, body, self._url or ""
        )
        route = provider.classify(request)
        self.counters.count_request(route.endpoint, route.symbol)
        fault = self.faults.take(route.endpoint, route.symbol, kinds=HTTP_FAULTS)
        try:
            return self._answer(provider, request, route, fault)
        except Exception:
            log.exception("sandbox %s failed on %s", route.endpoint, path)
            return json_response({"error": f"sandbox internal error in {route.endpoint}"}, 500)

    def _answer(
        self, provider: Provider, request: Request, route: Route, fault: Fault | None
    ) -> Response | Hold:
        """The provider's answer, bent by `fault` (see control.HTTP_FAULTS for the kinds)."""
        if fault is None:
            return provider.respond(request, route, Shape())
        kind, params = fault.kind, fault.params
        if kind in ("slow", "timeout"):
            delay = float(params.get("delay", _DEFAULT_DELAYS[kind]))
            if kind == "timeout":
                return Hold(delay)
            self.wait(delay)
            return provider.respond(request, route, Shape())
        if kind in ("throttle_note", "throttle_information"):
            throttled = provider.throttled(request, kind, params)
            if throttled is not None:
                return throttled
            kind = "rate_limit"  # providers without an HTTP-200 throttle answer 429
        if kind == "echo_key":
            echoed = provider.echo_key(request, params)
            return echoed if echoed is not None else provider.server_error(request, 500)
        if kind == "rate_limit":
            response = provider.rate_limited(request)
            response.headers.append(("Retry-After", _seconds(params.get("retry_after", 1))))
            return response
        if kind == "server_error":
            status = int(params.get("status", 503))
            return provider.server_error(request, status if 100 <= status <= 599 else 503)
        if kind == "xml_answer":
            return provider.xml_answer(request)
        if kind == "truncated_json":
            response = provider.respond(request, route, Shape())
            response.body = response.body[: len(response.body) // 2]
            return response
        shape = Shape(
            empty=kind == "empty",
            stale_sessions=int(params.get("sessions", 1)) if kind == "stale" else 0,
            duplicate_rows=kind == "duplicate_rows",
            missing_days=(str(params["start"]), str(params["end"]))
            if kind == "missing_days"
            else None,
            drift=(
                float(params.get("relative", 0.02)),
                params.get("start"),
                params.get("end"),
            )
            if kind == "drift"
            else None,
            unadjusted=kind == "unadjusted",
            refreshed_at=str(params.get("at", "14:07:03")) if kind == "intraday" else None,
        )
        return provider.respond(request, route, shape)

    # -- control API ---------------------------------------------------------------------------

    def _control(self, method: str, name: str, body: bytes) -> Response:
        allowed = {
            "health": ("GET",),
            "faults": ("GET", "POST", "DELETE"),
            "counters": ("GET", "DELETE"),
            "rates": ("GET",),
            "config": ("GET",),
        }
        if name not in allowed:
            return json_response({"error": f"unknown control endpoint /_sandbox/{name}"}, 404)
        if method not in allowed[name]:
            response = json_response({"error": f"{method} not allowed on /_sandbox/{name}"}, 405)
            response.headers.append(("Allow", ", ".join(allowed[name])))
            return response
        if name == "health":
            return json_response({"status": "ok", "url": self._url, "providers": self.base_urls()})
        if name == "config":
            return json_response({**self.market.config(), "providers": self.base_urls()})
        if name == "rates":
            return json_response(self.counters.rates())
        if name == "counters":
            if method == "DELETE":
                self.counters.reset()
            return json_response(self.counters.snapshot())
        if method == "DELETE":
            self.faults.clear()
        elif method == "POST":
            try:
                added = self.faults.extend(_fault_rules(body))
            except FaultPlanError as exc:
                return json_response({"error": str(exc)}, 400)
            return json_response({"added": len(added), "faults": self.faults.active()})
        return json_response({"faults": self.faults.active()})


def _fault_rules(body: bytes) -> list[dict[str, Any]]:
    """The rules of a ``POST /_sandbox/faults`` body, checked enough for clear 400 messages."""
    try:
        payload = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FaultPlanError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("faults"), list):
        raise FaultPlanError('expected a JSON object {"faults": [{"kind": ..., ...}]}')
    for number, rule in enumerate(payload["faults"]):
        if not isinstance(rule, dict):
            raise FaultPlanError(f"fault rule {number} is not an object")
        times = rule.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool)):
            raise FaultPlanError(f"fault rule {number}: times must be an integer or null")
        for key in ("endpoint", "symbol"):
            if key in rule and not isinstance(rule[key], str):
                raise FaultPlanError(f"fault rule {number}: {key} must be a string")
    return payload["faults"]


def _seconds(value: Any) -> str:
    """A Retry-After value: whole seconds (rounded up), as HTTP expects."""
    try:
        return str(max(math.ceil(float(value)), 0))
    except (TypeError, ValueError):
        return "1"
