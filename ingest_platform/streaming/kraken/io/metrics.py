"""The stream's Prometheus metrics: `StreamMetricsExporter` copies the stream's counters into
the agreed metric objects (`ingest_platform.core.metrics.stream_metrics`) off the hot path.

The protocol and the publisher keep plain integer counters (a Prometheus counter per message
would cost the hot path a lock each time); `sync`, called by the connection's periodic task
twice a second, adds what each counter gained since the last call, moves the new socket ->
book latency samples from the protocol's ring buffer into the histogram, and sets the bus's
buffer depth. The bus's publish latency is observed as each acknowledgement arrives (the
publisher's ``on_ack``). `serve` (core) exposes the registry on ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest_platform.core.metrics import StreamMetrics
from ingest_platform.streaming.kraken.fanout.process import StreamFanout
from ingest_platform.streaming.kraken.protocol.protocol import KrakenProtocol
from ingest_platform.streaming.kraken.protocol.stats import SymbolStats


def _messages(stats: SymbolStats) -> int:
    return (
        stats.snapshots
        + stats.updates_verified
        + stats.checksum_failures
        + stats.dropped_unsynced
        + stats.trades
        + stats.ohlc
    )


_PER_PAIR: dict[str, Callable[[SymbolStats], int]] = {
    "messages": _messages,
    "verified_books": lambda s: s.snapshots + s.updates_verified,
    "checksum_failures": lambda s: s.checksum_failures,
    "resyncs": lambda s: s.resyncs,
    "gaps": lambda s: s.gaps,
}


class StreamMetricsExporter:
    """Keeps ``metrics`` in step with one protocol (and its publisher, if the fan-out is on)."""

    def __init__(
        self,
        metrics: StreamMetrics,
        protocol: KrakenProtocol,
        fanout: StreamFanout | None = None,
    ) -> None:
        self.metrics = metrics
        self.protocol = protocol
        self.fanout = fanout
        self._seen: dict[tuple[str, str], int] = {}
        self._latency_count = 0
        for pair in protocol.stats.symbols:  # every pair's series exists from the start
            for name in _PER_PAIR:
                getattr(metrics, name).labels(pair=pair)
        if fanout is not None:
            histogram = metrics.bus_publish_seconds
            fanout.on_ack = lambda ns: histogram.observe(ns / 1e9)

    def _add(self, key: tuple[str, str], value: int, counter: Any) -> None:
        delta = value - self._seen.get(key, 0)
        if delta > 0:
            counter.inc(delta)
            self._seen[key] = value

    def sync(self) -> None:
        metrics = self.metrics
        stats = self.protocol.stats
        for pair, symbol in stats.symbols.items():
            for name, read in _PER_PAIR.items():
                self._add((name, pair), read(symbol), getattr(metrics, name).labels(pair=pair))
        self._add(("reconnects", ""), stats.reconnects, metrics.reconnects)
        window = self.protocol.latency
        new = window.count - self._latency_count
        if new > 0:
            values = window.values().tolist()
            if window.count > window.size:  # the ring wrapped: its newest samples end at count
                end = window.count % window.size
                values = values[end:] + values[:end]
            for ns in values[-min(new, window.size) :]:
                metrics.socket_to_book_seconds.observe(ns / 1e9)
            self._latency_count = window.count
        fanout = self.fanout
        if fanout is not None:
            metrics.bus_buffer_depth.set(fanout.buffered())
            self._add(("dropped", ""), fanout.stats.dropped, metrics.bus_dropped_events)
