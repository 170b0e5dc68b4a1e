"""Stream configuration: `StreamConfig`, validated on construction, and `config_from_mapping`.

Validation happens before any socket is opened, so a bad setting fails the run at once with a
message naming the field and the value, instead of surfacing as a reconnect loop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ingest_platform.streaming.kraken.book import ALLOWED_DEPTHS

KRAKEN_WS_URL = "wss://ws.kraken.com/v2"
DATA_CHANNELS = ("book", "trade", "ohlc")
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
_PAIR = re.compile(r"^[A-Za-z0-9.]{1,20}/[A-Za-z0-9.]{1,20}$")


class StreamConfigError(ValueError):
    """The stream configuration is invalid; the message names the field and the value."""


@dataclass(frozen=True)
class StreamConfig:
    """Everything the stream needs, validated on construction (fail before connecting).

    Intervals are seconds. The liveness limits must leave room for the exchange's heartbeat
    cadence (at least twice ``heartbeat_interval``), or a quiet market would look dead.
    """

    url: str = KRAKEN_WS_URL
    pairs: tuple[str, ...] = ("BTC/USD",)
    depth: int = 10
    channels: tuple[str, ...] = DATA_CHANNELS
    ohlc_interval: int = 1
    heartbeat_interval: float = 1.0
    """How often the exchange promises a heartbeat (Kraken: about once a second)."""
    max_silence: float = 5.0
    """No message at all for this long: the connection is dead, reconnect."""
    max_heartbeat_interval: float = 5.0
    """No heartbeat for this long (even while data flows): reconnect."""
    ping_interval: float = 30.0
    """Application-level ping (RTT in the stats); 0 disables. No pong within max_silence: dead."""
    connect_timeout: float = 10.0
    snapshot_timeout: float = 15.0
    """A subscribed book (or the instrument channel) without a snapshot this long: reconnect."""
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_mismatches: int = 10
    max_critical_errors: int = 10
    halt_window: float = 300.0
    status_interval: float = 1.0
    """How often the heartbeat file is rewritten and segments are checked for age."""
    report_interval: float = 60.0
    """How often statistics are reported (the Dagster op turns them into observations)."""
    top_interval: float = 30.0
    """How often each verified book's top levels are logged as a ``book_top`` row; 0 disables."""
    top_levels: int = 10
    segment_max_rows: int = 50_000
    segment_max_seconds: float = 300.0
    latency_window: int = 65_536
    """Latency samples kept for percentiles (the most recent ones)."""

    def __post_init__(self) -> None:
        def fail(name: str, problem: str) -> None:
            raise StreamConfigError(f"StreamConfig.{name} {problem}, got {getattr(self, name)!r}")

        if not isinstance(self.url, str) or not self.url.startswith(("ws://", "wss://")):
            fail("url", "must be a ws:// or wss:// URL")
        pairs = self.pairs
        if isinstance(pairs, str) or not isinstance(pairs, Iterable):
            fail("pairs", "must be a list of pairs like 'BTC/USD'")
        pairs = tuple(pairs)
        object.__setattr__(self, "pairs", pairs)
        if not pairs:
            fail("pairs", "must name at least one pair")
        bad = [p for p in pairs if not isinstance(p, str) or not _PAIR.match(p)]
        if bad:
            raise StreamConfigError(
                f"StreamConfig.pairs must look like 'BTC/USD' (BASE/QUOTE), got {bad!r}"
            )
        dupes = sorted({p for p in pairs if pairs.count(p) > 1})
        if dupes:
            raise StreamConfigError(f"StreamConfig.pairs must be unique, got duplicates {dupes!r}")
        if type(self.depth) is not int or self.depth not in ALLOWED_DEPTHS:
            fail("depth", f"must be one of {sorted(ALLOWED_DEPTHS)}")
        channels = tuple(self.channels)
        object.__setattr__(self, "channels", channels)
        if "book" not in channels or any(c not in DATA_CHANNELS for c in channels):
            fail("channels", f"must include 'book' and only use {list(DATA_CHANNELS)}")
        if len(set(channels)) != len(channels):
            fail("channels", "must be unique")
        if type(self.ohlc_interval) is not int or self.ohlc_interval not in OHLC_INTERVALS:
            fail("ohlc_interval", f"must be one of {list(OHLC_INTERVALS)} (minutes)")
        for name in (
            "heartbeat_interval",
            "max_silence",
            "max_heartbeat_interval",
            "connect_timeout",
            "snapshot_timeout",
            "backoff_base",
            "backoff_cap",
            "halt_window",
            "status_interval",
            "report_interval",
            "segment_max_seconds",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                fail(name, "must be a number of seconds")
            if not math.isfinite(value) or value <= 0:
                fail(name, "must be a positive, finite number of seconds")
        for name in ("ping_interval", "top_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                fail(name, "must be a number of seconds (0 disables)")
            if not math.isfinite(value) or value < 0:
                fail(name, "must be >= 0 seconds (0 disables)")
        for name in ("max_silence", "max_heartbeat_interval"):
            if getattr(self, name) < 2 * self.heartbeat_interval:
                fail(
                    name,
                    f"must be at least twice heartbeat_interval ({self.heartbeat_interval} s), "
                    "or a quiet but healthy connection would look dead",
                )
        if self.backoff_base > self.backoff_cap:
            fail("backoff_base", f"must be <= backoff_cap ({self.backoff_cap})")
        for name in (
            "max_mismatches",
            "max_critical_errors",
            "top_levels",
            "segment_max_rows",
            "latency_window",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                fail(name, "must be a positive integer")

    def replace(self, **changes: Any) -> StreamConfig:
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise StreamConfigError(f"StreamConfig has no field(s) {sorted(unknown)}")
        values.update(changes)
        return StreamConfig(**values)


def config_from_mapping(values: Mapping[str, Any]) -> StreamConfig:
    """A `StreamConfig` from a plain mapping (run config, JSON), unknown keys rejected."""
    known = {f.name for f in fields(StreamConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise StreamConfigError(f"unknown stream setting(s) {unknown}; known: {sorted(known)}")
    values = dict(values)
    for key in ("pairs", "channels"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    return StreamConfig(**values)
