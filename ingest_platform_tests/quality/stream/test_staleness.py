"""Stream staleness: hours since the last heartbeat, per stream or symbol."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.stream.staleness import stream_staleness

SECOND = pd.Timedelta(seconds=1)

NOW = pd.Timestamp("2026-11-20 12:00", tz="UTC")


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (pd.Timedelta(minutes=15), Status.PASS),  # exactly at WARN (0.25 h)
        (pd.Timedelta(minutes=15) + SECOND, Status.WARN),
        (pd.Timedelta(hours=1), Status.WARN),  # exactly at ERROR
        (pd.Timedelta(hours=1) + SECOND, Status.ERROR),
    ],
)
def test_stream_staleness_boundaries_in_hours(age, status):
    heartbeats = pd.DataFrame(
        {
            "symbol": ["BTC/USD", "BTC/USD", "ETH/USD"],
            "time": [NOW - pd.Timedelta(hours=3), NOW - age, NOW],
        }
    )
    found = stream_staleness(heartbeats, NOW)
    assert found.status is status
    assert found.figures["max_lag_hours"] == pytest.approx(age / pd.Timedelta(hours=1))
    if status is not Status.PASS:
        assert found.offending.iloc[0]["symbol"] == "BTC/USD"
        assert "BTC/USD (last 2026-11-20" in found.summary


def test_a_subscribed_stream_never_heard_from_is_an_error():
    heartbeats = pd.DataFrame({"symbol": ["BTC/USD"], "minute": [NOW]})
    found = stream_staleness(heartbeats, NOW, time_column="minute", expected_keys=["SOL/USD"])
    assert found.status is Status.ERROR
    assert found.offending.iloc[0]["symbol"] == "SOL/USD"
    assert "SOL/USD (never)" in found.summary
