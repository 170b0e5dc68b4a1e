"""Volume outliers against the rolling median, split-adjusted, FX skipped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest_platform.quality.bars.volume import volume_outlier_rows, volume_outliers
from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.thresholds import VolumeThresholds

BASE = 1_000_000


def _bars(helpers, spike: int, symbol="ACME", at=25):
    days = helpers.sessions("2024-01-02", 40)
    bars = helpers.bars(symbol, days, 100 + np.arange(40.0))
    bars.loc[at, "volume"] = spike
    return bars, days[at]


@pytest.mark.parametrize(
    ("volume", "status"),
    [
        (10 * BASE, Status.PASS),  # exactly at WARN (10x)
        (10 * BASE + 1, Status.WARN),  # just above WARN
        (100 * BASE, Status.WARN),  # exactly at ERROR (100x)
        (100 * BASE + 1, Status.ERROR),  # just above ERROR
    ],
)
def test_volume_boundaries(helpers, volume, status):
    bars, day = _bars(helpers, volume)
    found = volume_outliers(bars)
    assert found.status is status
    if status is not Status.PASS:
        row = found.offending.iloc[0]
        assert (row["symbol"], row["date"]) == ("ACME", pd.Timestamp(day))
        assert (row["volume"], row["median_volume"]) == (volume, BASE)
        assert row["value"] == volume / BASE
        assert row["threshold"] == (100.0 if status is Status.ERROR else 10.0)
        assert f"ACME {day.isoformat()} volume outlier" in found.summary


def test_the_first_window_is_not_judged_and_fx_volume_is_ignored(helpers):
    early, _ = _bars(helpers, 50 * BASE, at=19)  # only 19 sessions before it
    assert volume_outliers(early).passed
    fx, _ = _bars(helpers, 0, symbol="EURUSD")
    fx["volume"] = 0
    assert volume_outlier_rows(fx).empty


def test_a_recorded_split_in_as_traded_volume_is_no_outlier(helpers):
    days = helpers.sessions("2024-01-02", 60)
    closes = np.where(np.arange(60) < 30, 1000.0, 100.0) + np.arange(60) * 0.01
    bars = helpers.bars("ACME", days, closes)
    bars.loc[30:, "volume"] = 20 * BASE  # ten times the shares after a 10-for-1 split
    split = pd.DataFrame(
        {"symbol": ["ACME"], "date": [pd.Timestamp(days[30])], "action": ["split"], "value": [10.0]}
    )
    assert volume_outliers(bars, split).passed
    assert volume_outliers(bars).status is Status.WARN  # 20x the pre-split median


def test_a_busy_day_is_judged_against_the_sessions_before_it_only(helpers):
    bars, _ = _bars(helpers, 50 * BASE)
    bars.loc[26, "volume"] = 50 * BASE  # two busy days running
    rows = volume_outlier_rows(bars, thresholds=VolumeThresholds(window=3))
    assert rows["value"].tolist() == [50.0, 50.0]
