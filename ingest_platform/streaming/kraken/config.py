"""The stream's settings, described once: `StreamConfig`, a Dagster `Config` (pydantic).

It is the one place where each setting has its default, its description and its validation.
The ``kraken_stream`` resource (`resources.KrakenStream`) *is* a `StreamConfig` plus the log
root and the sensor's limits, so run config, the launchpad and Python code all go through the
same pydantic validation, and the session and connection take the resource as it is. An
invalid value fails before any socket opens, with pydantic's message naming the field and
the value (at resource initialisation in a run, at construction in code).

Where the stream connects is not a setting: the environment decides (`stream_url`), so a
launchpad override of the resource (which rebuilds it from its defaults) cannot switch a
sandbox deployment to production, or the other way round.

(No ``from __future__ import annotations``: Dagster and pydantic read these annotations.)
"""

import re
from typing import Any, Self

from dagster import Config
from pydantic import ConfigDict, Field, field_validator, model_validator

from ingest_platform.core import settings
from ingest_platform.streaming.kraken.book import ALLOWED_DEPTHS

KRAKEN_WS_URL = "wss://ws.kraken.com/v2"
DATA_CHANNELS = ("book", "trade", "ohlc")
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
_PAIR = re.compile(r"^[A-Za-z0-9.]{1,20}/[A-Za-z0-9.]{1,20}$")


def stream_url() -> str:
    """Kraken's WebSocket v2, or the sandbox's when $INGEST_PLATFORM_SANDBOX_KRAKEN_URL is set."""
    return settings.sandbox_kraken_url() or KRAKEN_WS_URL


def _seconds(default: float, description: str) -> Any:
    """A positive, finite number of seconds."""
    return Field(default=default, gt=0, allow_inf_nan=False, strict=True, description=description)


def _seconds_or_off(default: float, description: str) -> Any:
    """A number of seconds, 0 switching the feature off."""
    return Field(default=default, ge=0, allow_inf_nan=False, strict=True, description=description)


def _count(default: int, description: str) -> Any:
    return Field(default=default, ge=1, strict=True, description=description)


class StreamConfig(Config):
    """What the stream subscribes to, how it judges liveness, when it halts, how it logs.

    Intervals are seconds. The liveness limits must leave room for the exchange's heartbeat
    cadence (at least twice ``heartbeat_interval``), or a quiet market would look dead.
    """

    model_config = ConfigDict(extra="forbid")

    pairs: list[str] = Field(
        default=["BTC/USD", "ETH/USD"], description="Pairs to stream, as 'BASE/QUOTE'."
    )
    depth: int = Field(default=10, strict=True, description="Book depth: 10, 25, 100, 500, 1000.")
    channels: list[str] = Field(
        default=list(DATA_CHANNELS), description="Data channels: 'book' plus 'trade', 'ohlc'."
    )
    ohlc_interval: int = Field(default=1, strict=True, description="OHLC bar minutes.")
    heartbeat_interval: float = _seconds(1.0, "The exchange's heartbeat cadence (Kraken: 1 s).")
    max_silence: float = _seconds(5.0, "No message at all for this long: reconnect.")
    max_heartbeat_interval: float = _seconds(5.0, "No heartbeat for this long: reconnect.")
    ping_interval: float = _seconds_or_off(
        30.0, "Application ping (RTT in the stats); no pong within max_silence: reconnect."
    )
    connect_timeout: float = _seconds(10.0, "Longest wait for the WebSocket handshake.")
    snapshot_timeout: float = _seconds(
        15.0, "A subscribed book (or instruments) without a snapshot this long: reconnect."
    )
    backoff_base: float = _seconds(0.5, "Reconnect backoff base (full jitter, doubling).")
    backoff_cap: float = _seconds(30.0, "Longest reconnect backoff.")
    max_mismatches: int = _count(10, "Checksum mismatches within halt_window that halt.")
    max_critical_errors: int = _count(10, "Critical errors within halt_window that halt.")
    halt_window: float = _seconds(300.0, "The halt policy's sliding window.")
    status_interval: float = _seconds(1.0, "How often the heartbeat file is rewritten.")
    report_interval: float = _seconds(60.0, "How often statistics reach Dagster as observations.")
    top_interval: float = _seconds_or_off(30.0, "How often each verified book's top is logged.")
    top_levels: int = _count(10, "Levels per side in those top-of-book rows.")
    segment_max_rows: int = _count(50_000, "Roll a log segment at this many rows.")
    segment_max_seconds: float = _seconds(300.0, "Roll a log segment at this age.")
    latency_window: int = _count(65_536, "Latency samples kept for percentiles.")

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, pairs: list[str]) -> list[str]:
        if not pairs:
            raise ValueError("must name at least one pair")
        bad = [p for p in pairs if not _PAIR.match(p)]
        if bad:
            raise ValueError(f"must look like 'BTC/USD' (BASE/QUOTE), got {bad}")
        dupes = sorted({p for p in pairs if pairs.count(p) > 1})
        if dupes:
            raise ValueError(f"must be unique, got duplicates {dupes}")
        return pairs

    @field_validator("depth")
    @classmethod
    def _depth(cls, depth: int) -> int:
        if depth not in ALLOWED_DEPTHS:
            raise ValueError(f"must be one of {sorted(ALLOWED_DEPTHS)}")
        return depth

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: list[str]) -> list[str]:
        if "book" not in channels or any(c not in DATA_CHANNELS for c in channels):
            raise ValueError(f"must include 'book' and only use {list(DATA_CHANNELS)}")
        if len(set(channels)) != len(channels):
            raise ValueError("must be unique")
        return channels

    @field_validator("ohlc_interval")
    @classmethod
    def _ohlc_interval(cls, minutes: int) -> int:
        if minutes not in OHLC_INTERVALS:
            raise ValueError(f"must be one of {list(OHLC_INTERVALS)} (minutes)")
        return minutes

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in ("max_silence", "max_heartbeat_interval"):
            if getattr(self, name) < 2 * self.heartbeat_interval:
                raise ValueError(
                    f"{name} ({getattr(self, name)} s) must be at least twice "
                    f"heartbeat_interval ({self.heartbeat_interval} s), or a quiet but healthy "
                    "connection would look dead"
                )
        if self.backoff_base > self.backoff_cap:
            raise ValueError(
                f"backoff_base ({self.backoff_base}) must be <= backoff_cap ({self.backoff_cap})"
            )
        return self
