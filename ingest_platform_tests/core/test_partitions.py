"""Daily partitions are NYSE weekdays from 2023-01-02; holidays are partitions that are closed."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import PartitionKeyRange

from ingest_platform.core.partitions import (
    MARKET_START_DATE,
    closed_partition_keys,
    economic_month_partitions,
    market_day,
    market_day_partitions,
)


def test_three_years_of_weekday_partitions():
    keys = market_day_partitions.get_partition_keys_in_range(
        PartitionKeyRange("2023-01-02", "2025-12-31")
    )
    assert keys[0] == MARKET_START_DATE == "2023-01-02"
    assert keys[-1] == "2025-12-31"
    assert len(keys) == 783
    assert all(dt.date.fromisoformat(k).weekday() < 5 for k in keys)


def test_a_friday_partition_closes_at_saturday_midnight_in_new_york():
    window = market_day_partitions.time_window_for_partition_key("2024-03-08")
    assert window.start.isoformat() == "2024-03-08T00:00:00-05:00"
    assert window.end.isoformat() == "2024-03-09T00:00:00-05:00"


@pytest.mark.parametrize(
    "key",
    ["2023-01-02", "2024-07-04", "2024-12-25", "2025-01-09"],  # last one: an ad-hoc closure
)
@pytest.mark.slow
def test_holidays_are_partitions_with_the_market_closed(key: str):
    assert key in market_day_partitions.get_partition_keys(
        current_time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    day = market_day(key)
    assert day.market_closed
    assert day.is_open("24/5")  # FX still trades


def test_an_ordinary_session_is_open_everywhere():
    day = market_day("2024-03-08")
    assert not day.market_closed
    assert day.open_calendars == ("XNYS", "XNAS", "24/5", "CMES")


def test_a_bad_key_names_itself():
    with pytest.raises(ValueError, match="'2024-13-01' is not a YYYY-MM-DD date"):
        market_day("2024-13-01")


def test_monthly_partitions_for_economic_data():
    keys = economic_month_partitions.get_partition_keys(
        current_time=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
    )
    assert keys[0] == "2023-01-01"
    assert keys[-1] == "2026-01-01"  # the month in progress exists: releases land the same day
    assert len(keys) == 37


@pytest.mark.parametrize(
    ("now", "newest_closed"),
    [
        # Friday 2026-01-02 23:59:59 in New York: Friday's partition is still open
        (dt.datetime(2026, 1, 3, 4, 59, 59, tzinfo=dt.UTC), "2026-01-01"),
        # Saturday midnight in New York: Friday's window has ended
        (dt.datetime(2026, 1, 3, 5, 0, 0, tzinfo=dt.UTC), "2026-01-02"),
    ],
)
def test_a_partition_is_closed_from_the_end_of_its_window(now, newest_closed):
    closed = closed_partition_keys(market_day_partitions, now)
    assert closed[-1] == newest_closed
    assert "2026-01-02" in market_day_partitions.get_partition_keys(current_time=now)


def test_the_current_month_is_not_closed_until_the_next_begins():
    now = dt.datetime(2026, 1, 31, 23, 59, tzinfo=dt.UTC)
    assert closed_partition_keys(economic_month_partitions, now)[-1] == "2025-12-01"
    next_month = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    assert closed_partition_keys(economic_month_partitions, next_month)[-1] == "2026-01-01"
