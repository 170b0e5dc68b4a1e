"""The stream's settings as Dagster sees them: `StreamConfig`, a Dagster `Config` (pydantic).

It is the one place where each setting has its description and its validation for Dagster.
The ``kraken_stream`` resource (`resources.KrakenStream`) *is* a `StreamConfig` plus the log
root and the sensor's limits, so run config, the launchpad and Python code all go through the
same pydantic validation. An invalid value fails before any socket opens, with pydantic's
message naming the field and the value (at resource initialisation in a run, at construction in
code).

At the edge, `StreamConfig.stream_settings` maps it onto the plain frozen settings the
connection and the protocol take (`io.settings.StreamSettings`, holding the
`protocol.settings.ProtocolSettings`). Their defaults and their rules (`check_pairs`...) are
read from there, so the launchpad and a settings object built in code cannot disagree.

Where the stream connects is not a setting: the environment decides (`stream_url`), so a
launchpad override of the resource (which rebuilds it from its defaults) cannot switch a
sandbox deployment to production, or the other way round.

(No ``from __future__ import annotations``: Dagster and pydantic read these annotations.)
"""

from dataclasses import fields
from typing import Any, Self

from dagster import Config
from pydantic import ConfigDict, Field, field_validator, model_validator

from ingest_platform.core import settings
from ingest_platform.streaming.kraken.io.settings import StreamSettings
from ingest_platform.streaming.kraken.protocol.settings import (
    ProtocolSettings,
    check_channels,
    check_consistent,
    check_depth,
    check_ohlc_interval,
    check_pairs,
)

KRAKEN_WS_URL = "wss://ws.kraken.com/v2"
_P = ProtocolSettings()
_S = StreamSettings()
_PROTOCOL_FIELDS = tuple(f.name for f in fields(ProtocolSettings))
_DRIVER_FIELDS = tuple(f.name for f in fields(StreamSettings) if f.name != "protocol")


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
        default=list(_P.pairs), description="Pairs to stream, as 'BASE/QUOTE'."
    )
    depth: int = Field(
        default=_P.depth, strict=True, description="Book depth: 10, 25, 100, 500, 1000."
    )
    channels: list[str] = Field(
        default=list(_P.channels), description="Data channels: 'book' plus 'trade', 'ohlc'."
    )
    ohlc_interval: int = Field(
        default=_P.ohlc_interval, strict=True, description="OHLC bar minutes."
    )
    heartbeat_interval: float = _seconds(
        _P.heartbeat_interval, "The exchange's heartbeat cadence (Kraken: 1 s)."
    )
    max_silence: float = _seconds(_P.max_silence, "No message at all for this long: reconnect.")
    max_heartbeat_interval: float = _seconds(
        _P.max_heartbeat_interval, "No heartbeat for this long: reconnect."
    )
    ping_interval: float = _seconds_or_off(
        _P.ping_interval,
        "Application ping (RTT in the stats); no pong within max_silence: reconnect.",
    )
    connect_timeout: float = _seconds(
        _S.connect_timeout, "Longest wait for the WebSocket handshake."
    )
    snapshot_timeout: float = _seconds(
        _P.snapshot_timeout,
        "A subscribed book (or instruments) without a snapshot this long: reconnect.",
    )
    backoff_base: float = _seconds(
        _P.backoff_base, "Reconnect backoff base (full jitter, doubling)."
    )
    backoff_cap: float = _seconds(_P.backoff_cap, "Longest reconnect backoff.")
    max_mismatches: int = _count(
        _P.max_mismatches, "Checksum mismatches within halt_window that halt."
    )
    max_critical_errors: int = _count(
        _P.max_critical_errors, "Critical errors within halt_window that halt."
    )
    halt_window: float = _seconds(_P.halt_window, "The halt policy's sliding window.")
    status_interval: float = _seconds(
        _S.status_interval, "How often the heartbeat file is rewritten."
    )
    report_interval: float = _seconds(
        _S.report_interval, "How often statistics reach Dagster as observations."
    )
    top_interval: float = _seconds_or_off(
        _S.top_interval, "How often each verified book's top is logged."
    )
    top_levels: int = _count(_P.top_levels, "Levels per side in those top-of-book rows.")
    segment_max_rows: int = _count(_S.segment_max_rows, "Roll a log segment at this many rows.")
    segment_max_seconds: float = _seconds(_S.segment_max_seconds, "Roll a log segment at this age.")
    latency_window: int = _count(_P.latency_window, "Latency samples kept for percentiles.")

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, pairs: list[str]) -> list[str]:
        check_pairs(pairs)
        return pairs

    @field_validator("depth")
    @classmethod
    def _depth(cls, depth: int) -> int:
        check_depth(depth)
        return depth

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: list[str]) -> list[str]:
        check_channels(channels)
        return channels

    @field_validator("ohlc_interval")
    @classmethod
    def _ohlc_interval(cls, minutes: int) -> int:
        check_ohlc_interval(minutes)
        return minutes

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_consistent(
            self.heartbeat_interval,
            self.max_silence,
            self.max_heartbeat_interval,
            self.backoff_base,
            self.backoff_cap,
        )
        return self

    def stream_settings(self) -> StreamSettings:
        """The plain frozen settings the connection and the protocol take (every field here
        maps onto one of theirs by name; `KrakenStream`'s own fields are Dagster's)."""
        protocol = ProtocolSettings(**{name: getattr(self, name) for name in _PROTOCOL_FIELDS})
        return StreamSettings(protocol, **{name: getattr(self, name) for name in _DRIVER_FIELDS})
