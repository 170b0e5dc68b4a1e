"""Prometheus naming, registries and the ``/metrics`` server, shared by every exporter.

Two things export metrics: ``ingest-platform status --format prometheus`` (a snapshot of the
instance and the lake for the node exporter's textfile collector, `operations.status_metrics`)
and, to come, the Kraken stream process itself (a live ``/metrics`` endpoint). Both name their
metrics with these conventions, the stream's names are agreed here (`STREAM_METRICS`,
`BUS_METRICS`, registered by `stream_metrics`), and the Grafana dashboard and the alert rules in
``deploy/`` are checked against them. It lives in ``core`` (names only, no domain import) so that
the stream and the operations domain can both import it without a cycle between them.

Conventions (Prometheus' own): every name starts with ``ingest_platform_``; units are base units
spelled out as a suffix (``_seconds``, ``_timestamp_seconds``); counters end in ``_total``
(prometheus-client adds it); a label says *which* (``dataset``, ``pair``, ``source``), never a
value that grows without bound (no run ids, no partition keys).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

NAMESPACE = "ingest_platform"


def metric_name(*parts: str) -> str:
    """``ingest_platform_<parts joined by _>``: the one prefix every metric of the platform has."""
    return "_".join((NAMESPACE, *parts))


@dataclass(frozen=True)
class MetricSpec:
    """A metric's name (without the ``_total`` a counter gets), type, help and labels."""

    name: str
    kind: str  # counter, gauge, histogram
    help: str
    labels: tuple[str, ...] = ()

    def series_names(self) -> tuple[str, ...]:
        """The sample names this metric exposes in the text format."""
        if self.kind == "counter":
            return (f"{self.name}_total", f"{self.name}_created")
        if self.kind == "histogram":
            return tuple(f"{self.name}{s}" for s in ("_bucket", "_sum", "_count", "_created"))
        return (self.name,)


#: Socket read -> verified book, in seconds: sub-millisecond when healthy (the stream latency
#: figures in docs/pages/performance.md), tens of milliseconds under load.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

#: What the Kraken stream process will serve on its own ``/metrics`` (see `stream_metrics`).
STREAM_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        metric_name("stream", "messages"), "counter", "Messages received, by pair.", ("pair",)
    ),
    MetricSpec(
        metric_name("stream", "verified_books"),
        "counter",
        "Book messages whose checksum verified, by pair.",
        ("pair",),
    ),
    MetricSpec(
        metric_name("stream", "checksum_failures"),
        "counter",
        "Book checksums that did not match (each one resubscribes the pair), by pair.",
        ("pair",),
    ),
    MetricSpec(
        metric_name("stream", "resyncs"), "counter", "Resubscriptions for a snapshot.", ("pair",)
    ),
    MetricSpec(metric_name("stream", "reconnects"), "counter", "WebSocket reconnects."),
    MetricSpec(
        metric_name("stream", "gaps"), "counter", "Gaps recorded in the log, by pair.", ("pair",)
    ),
    MetricSpec(
        metric_name("stream", "socket_to_book_seconds"),
        "histogram",
        "Time from a socket read to the verified book, in seconds.",
    ),
)

#: The fan-out's metrics (NATS publisher), once it exists.
BUS_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        metric_name("bus", "publish_seconds"),
        "histogram",
        "Time to publish one event and get the bus's acknowledgement, in seconds.",
    ),
    MetricSpec(
        metric_name("bus", "buffer_depth"), "gauge", "Events waiting to be published (buffered)."
    ),
    MetricSpec(
        metric_name("bus", "dropped_events"),
        "counter",
        "Events dropped because the buffer was full.",
    ),
)


@dataclass(frozen=True)
class StreamMetrics:
    """The stream process's metric objects, registered in one registry (`stream_metrics`)."""

    messages: Counter
    verified_books: Counter
    checksum_failures: Counter
    resyncs: Counter
    reconnects: Counter
    gaps: Counter
    socket_to_book_seconds: Histogram
    bus_publish_seconds: Histogram
    bus_buffer_depth: Gauge
    bus_dropped_events: Counter


def _counter(spec: MetricSpec, registry: CollectorRegistry) -> Counter:
    return Counter(spec.name, spec.help, spec.labels, registry=registry)


def _histogram(spec: MetricSpec, registry: CollectorRegistry) -> Histogram:
    return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=LATENCY_BUCKETS)


def stream_metrics(
    registry: CollectorRegistry | None = None,
) -> tuple[StreamMetrics, CollectorRegistry]:
    """The stream's metrics in a registry of their own (a new one unless given): what the stream
    op increments and `serve` exposes. A registry per process rather than the global default, so
    tests and several streams in one interpreter never collide on a name."""
    registry = registry or CollectorRegistry()
    stream = {spec.name.removeprefix(metric_name("stream", "")): spec for spec in STREAM_METRICS}
    bus = {spec.name.removeprefix(metric_name("bus", "")): spec for spec in BUS_METRICS}
    metrics = StreamMetrics(
        messages=_counter(stream["messages"], registry),
        verified_books=_counter(stream["verified_books"], registry),
        checksum_failures=_counter(stream["checksum_failures"], registry),
        resyncs=_counter(stream["resyncs"], registry),
        reconnects=_counter(stream["reconnects"], registry),
        gaps=_counter(stream["gaps"], registry),
        socket_to_book_seconds=_histogram(stream["socket_to_book_seconds"], registry),
        bus_publish_seconds=_histogram(bus["publish_seconds"], registry),
        bus_buffer_depth=Gauge(
            bus["buffer_depth"].name, bus["buffer_depth"].help, registry=registry
        ),
        bus_dropped_events=_counter(bus["dropped_events"], registry),
    )
    return metrics, registry


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; `close` stops it (idempotent)."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(port: int, registry: CollectorRegistry, addr: str = "0.0.0.0") -> MetricsServer:
    """Serve ``registry`` on ``http://addr:port/metrics`` from a daemon thread (port 0: any free
    port; read it back from `MetricsServer.port`). prometheus-client's own WSGI server: it
    answers the text format, or OpenMetrics when the scraper asks for it."""
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)


def known_metric_names(specs: Iterable[MetricSpec]) -> set[str]:
    """Every sample name the given metrics expose (``_total``, ``_bucket``... included)."""
    return {name for spec in specs for name in spec.series_names()}
