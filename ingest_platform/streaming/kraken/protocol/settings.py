"""What the protocol needs to know, as a plain frozen value: `ProtocolSettings`.

The protocol takes this, not the Dagster `Config` (`config.StreamConfig`), so it can be built
and tested without Dagster or pydantic; the Dagster config maps onto it at the edge
(`StreamConfig.stream_settings`). The rules a value must follow live here once, as functions
that raise `ValueError`: `StreamConfig`'s validators call them (so the launchpad shows the same
message), and `ProtocolSettings` checks itself with them, naming the field.

Defaults are the ones the Dagster config shows (it reads them from here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ingest_platform.streaming.kraken.book import ALLOWED_DEPTHS

DATA_CHANNELS = ("book", "trade", "ohlc")
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
_PAIR = re.compile(r"^[A-Za-z0-9.]{1,20}/[A-Za-z0-9.]{1,20}$")


def check_pairs(pairs: Sequence[str]) -> None:
    """At least one pair, each ``BASE/QUOTE``, none twice."""
    if not pairs:
        raise ValueError("must name at least one pair")
    bad = [p for p in pairs if not isinstance(p, str) or not _PAIR.match(p)]
    if bad:
        raise ValueError(f"must look like 'BTC/USD' (BASE/QUOTE), got {bad}")
    dupes = sorted({p for p in pairs if list(pairs).count(p) > 1})
    if dupes:
        raise ValueError(f"must be unique, got duplicates {dupes}")


def check_depth(depth: int) -> None:
    if depth not in ALLOWED_DEPTHS:
        raise ValueError(f"must be one of {sorted(ALLOWED_DEPTHS)}")


def check_channels(channels: Sequence[str]) -> None:
    if "book" not in channels or any(c not in DATA_CHANNELS for c in channels):
        raise ValueError(f"must include 'book' and only use {list(DATA_CHANNELS)}")
    if len(set(channels)) != len(channels):
        raise ValueError("must be unique")


def check_ohlc_interval(minutes: int) -> None:
    if minutes not in OHLC_INTERVALS:
        raise ValueError(f"must be one of {list(OHLC_INTERVALS)} (minutes)")


def check_consistent(
    heartbeat_interval: float,
    max_silence: float,
    max_heartbeat_interval: float,
    backoff_base: float,
    backoff_cap: float,
) -> None:
    """Limits that only make sense together; the message names both fields."""
    for name, value in (
        ("max_silence", max_silence),
        ("max_heartbeat_interval", max_heartbeat_interval),
    ):
        if value < 2 * heartbeat_interval:
            raise ValueError(
                f"{name} ({value} s) must be at least twice heartbeat_interval "
                f"({heartbeat_interval} s), or a quiet but healthy connection would look dead"
            )
    if backoff_base > backoff_cap:
        raise ValueError(f"backoff_base ({backoff_base}) must be <= backoff_cap ({backoff_cap})")


@dataclass(frozen=True)
class ProtocolSettings:
    """What to subscribe to, when a connection counts as dead, when to halt. Intervals are
    seconds; see `config.StreamConfig` for each field's description."""

    pairs: tuple[str, ...] = ("BTC/USD", "ETH/USD")
    depth: int = 10
    channels: tuple[str, ...] = DATA_CHANNELS
    ohlc_interval: int = 1
    heartbeat_interval: float = 1.0
    max_silence: float = 5.0
    max_heartbeat_interval: float = 5.0
    ping_interval: float = 30.0
    snapshot_timeout: float = 15.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_mismatches: int = 10
    max_critical_errors: int = 10
    halt_window: float = 300.0
    top_levels: int = 10
    latency_window: int = 65_536

    def __post_init__(self) -> None:
        # Sequences become tuples, so a settings object is hashable and cannot change.
        object.__setattr__(self, "pairs", tuple(self.pairs))
        object.__setattr__(self, "channels", tuple(self.channels))
        for name, rule in (
            ("pairs", check_pairs),
            ("depth", check_depth),
            ("channels", check_channels),
            ("ohlc_interval", check_ohlc_interval),
        ):
            try:
                rule(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"ProtocolSettings.{name} {exc}") from None
        check_positive(self, _SECONDS, _SECONDS_OR_OFF, _COUNTS)
        try:
            check_consistent(
                self.heartbeat_interval,
                self.max_silence,
                self.max_heartbeat_interval,
                self.backoff_base,
                self.backoff_cap,
            )
        except ValueError as exc:
            raise ValueError(f"ProtocolSettings: {exc}") from None


_SECONDS = (
    "heartbeat_interval",
    "max_silence",
    "max_heartbeat_interval",
    "snapshot_timeout",
    "backoff_base",
    "backoff_cap",
    "halt_window",
)
_SECONDS_OR_OFF = ("ping_interval",)
_COUNTS = ("max_mismatches", "max_critical_errors", "top_levels", "latency_window")


def check_positive(
    settings: object,
    seconds: Sequence[str],
    seconds_or_off: Sequence[str] = (),
    counts: Sequence[str] = (),
) -> None:
    """Durations finite and > 0 (or >= 0 where 0 switches a feature off), counts whole and
    >= 1; the error names the settings class, the field and the value."""
    owner = type(settings).__name__
    for name in (*seconds, *seconds_or_off):
        value = getattr(settings, name)
        off_ok = name in seconds_or_off
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
            or (value == 0 and not off_ok)
        ):
            bound = ">= 0" if off_ok else "> 0"
            raise ValueError(
                f"{owner}.{name} must be a finite number of seconds {bound}, got {value!r}"
            )
    for name in counts:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}.{name} must be a whole number >= 1, got {value!r}")
