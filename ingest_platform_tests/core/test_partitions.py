"""Daily partitions are NYSE weekdays from 2023-01-02; holidays are partitions that are closed."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import PartitionKeyRange

from ingest_platform.core.partitions import (
    MARKET_START_DATE,
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
