"""What the stream counts: per-symbol and stream counters, and the latency window.

`StreamStats.snapshot` is the JSON-ready form that reports, the heartbeat file and
`StreamResult` carry (with the connection's own counters beside it).
"""

from __future__ import annotations

import collections
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class LatencyWindow:
    """The most recent ``size`` latency samples (ns) in a ring buffer; percentiles on demand."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._samples = array("q", bytes(8 * size))
        self.count = 0

    def add(self, value_ns: int) -> None:
        self._samples[self.count % self.size] = value_ns
        self.count += 1

    def values(self) -> np.ndarray:
        n = min(self.count, self.size)
        return np.frombuffer(self._samples, dtype=np.int64)[:n].copy()

    def percentiles_ms(self, qs: Iterable[float] = (50, 95, 99, 99.9)) -> dict[str, float]:
        values = self.values()
        if not len(values):
            return {}
        out = {f"p{q:g}": float(np.percentile(values, q)) / 1e6 for q in qs}
        out["max"] = float(values.max()) / 1e6
        return out


@dataclass
class SymbolStats:
    snapshots: int = 0
    updates_verified: int = 0
    verified_since_snapshot: int = 0
    checksum_failures: int = 0
    dropped_unsynced: int = 0
    resyncs: int = 0
    trades: int = 0
    ohlc: int = 0
    gaps: int = 0
    synced: bool = False


@dataclass
class StreamStats:
    """Counters the protocol keeps; `snapshot` turns them into a JSON-ready dict.

    What only the driver knows (connection attempts, when the last message arrived in wall
    time) it counts itself and adds to the reports (`io.connection.KrakenConnection.report`).
    """

    started_at: float = field(default_factory=time.time)
    messages: collections.Counter[str] = field(default_factory=collections.Counter)
    book_messages: int = 0
    trades: int = 0
    ohlc_bars: int = 0
    heartbeats: int = 0
    reconnects: int = 0
    resyncs: int = 0
    gaps: int = 0
    gap_seconds: float = 0.0
    checksum_failures: int = 0
    critical_errors: int = 0
    malformed: int = 0
    unknown: int = 0
    rejected_subscriptions: int = 0
    subscriptions: int = 0
    """Successful data-channel subscription acks: 0 means the stream never got any data."""
    liveness_breaches: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    exchange_status: str | None = None
    last_rtt_ms: float | None = None
    symbols: dict[str, SymbolStats] = field(default_factory=dict)

    def snapshot(self, latency: LatencyWindow | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "started_at": self.started_at,
            "messages": dict(self.messages),
            "messages_total": sum(self.messages.values()),
            "book_messages": self.book_messages,
            "trades": self.trades,
            "ohlc_bars": self.ohlc_bars,
            "heartbeats": self.heartbeats,
            "reconnects": self.reconnects,
            "resyncs": self.resyncs,
            "gaps": self.gaps,
            "gap_seconds": round(self.gap_seconds, 6),
            "checksum_failures": self.checksum_failures,
            "critical_errors": self.critical_errors,
            "malformed": self.malformed,
            "unknown": self.unknown,
            "rejected_subscriptions": self.rejected_subscriptions,
            "subscriptions": self.subscriptions,
            "liveness_breaches": dict(self.liveness_breaches),
            "errors": dict(self.errors),
            "exchange_status": self.exchange_status,
            "last_rtt_ms": self.last_rtt_ms,
            "symbols": {s: dict(vars(v)) for s, v in self.symbols.items()},
        }
        if latency is not None:
            out["latency_ms"] = latency.percentiles_ms()
            out["latency_samples"] = latency.count
        return out
