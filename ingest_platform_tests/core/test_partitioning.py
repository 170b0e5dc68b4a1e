"""Every partition scheme, held against itself and against Dagster's definition of it.

The round trip is the promise the rest of the platform leans on: a value's key is a partition
whose window holds the value, a key's window maps back to the key, and the scheme agrees with
the Dagster partitions definition the assets declare.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ingest_platform.core.partitioning import (
    BEGINNING,
    PartitionScheme,
    PartitionSchemeError,
    map_keys,
)
from ingest_platform.core.partitions import KNOWN_MONTHS, MARKET_DAYS, STREAM_DAYS, definition

SCHEMES = [MARKET_DAYS, KNOWN_MONTHS, STREAM_DAYS]
schemes = st.sampled_from(SCHEMES)
instants = st.datetimes(
    min_value=dt.datetime(2022, 6, 1),
    max_value=dt.datetime(2029, 12, 31),
    timezones=st.just(dt.UTC),
)
dates = st.dates(min_value=dt.date(2022, 6, 1), max_value=dt.date(2029, 12, 31))


def _value(scheme: PartitionScheme, instant: dt.datetime, day: dt.date) -> object:
    """A partition-column value of the scheme's kind (a weekday for weekday schemes)."""
    if scheme.column_kind == "instant":
        return pd.Timestamp(instant)
    while scheme.weekdays_only and day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return pd.Timestamp(day)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(scheme=schemes, instant=instants, day=dates)
def test_a_value_lies_in_the_window_of_its_key(scheme, instant, day):
    value = _value(scheme, instant, day)
    key = scheme.key_of(value)
    assert scheme.is_key(key)
    lo, hi = scheme.bounds([key])
    naive = value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value
    assert lo <= naive <= hi
    if key != scheme.first_key:
        start, end = scheme.window(key)
        local = (
            value.tz_convert(scheme.timezone)
            if value.tzinfo
            else value.tz_localize(scheme.timezone)
        )
        assert start <= local < end
    else:  # the first partition holds whatever came before it
        assert lo == BEGINNING


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(scheme=schemes, instant=instants, day=dates)
def test_a_key_window_maps_back_to_the_key(scheme, instant, day):
    key = scheme.key_of(_value(scheme, instant, day))
    start, end = scheme.window(key)
    assert scheme.key_of(start) == key
    assert scheme.key_of(end - pd.Timedelta(1, "ns")) == key
    assert scheme.keys_overlapping(start, end) == [key]


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(scheme=schemes, instants=st.lists(instants, min_size=1, max_size=40), day=dates)
def test_keys_of_a_column_equals_the_key_of_each_value(scheme, instants, day):
    values = pd.Series(
        [_value(scheme, i, day + dt.timedelta(days=n)) for n, i in enumerate(instants)]
    )
    if scheme.column_kind == "instant":
        values = pd.to_datetime(values, utc=True)
    assert scheme.keys_of(values).tolist() == [scheme.key_of(v) for v in values]


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(scheme=schemes, now=instants)
def test_the_scheme_agrees_with_its_dagster_definition(scheme, now):
    # Before its first window has closed, Dagster counts `end_offset` back from the first key's
    # start instead of from the last closed window; no run ever asks then.
    assume(now >= scheme.window(scheme.first_key)[1])
    dagster_def = definition(scheme)
    keys = dagster_def.get_partition_keys(current_time=now)
    assert scheme.current_keys(now) == keys
    for key in keys[-3:]:
        window = dagster_def.time_window_for_partition_key(key)
        assert scheme.window(key) == (pd.Timestamp(window.start), pd.Timestamp(window.end))
    closed = [k for k in keys if dagster_def.time_window_for_partition_key(k).end <= now]
    assert scheme.closed_keys(now) == closed


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(scheme=schemes, a=dates, b=dates)
def test_keys_between_are_the_definitions_keys_in_that_span(scheme, a, b):
    lo, hi = sorted((a, b))
    keys = scheme.keys_between(lo, hi)
    everything = definition(scheme).get_partition_keys(
        current_time=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    expected = [
        k
        for k in everything
        if scheme.window(k)[0].date() <= hi and scheme.window(k)[1].date() > lo
    ]
    assert keys == expected


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(day=dates)
def test_market_days_map_to_the_utc_months_their_hours_fall_in(day):
    while day.weekday() >= 5 or day < dt.date(2023, 1, 2):
        day += dt.timedelta(days=1)
    months = map_keys(MARKET_DAYS, [day.isoformat()], KNOWN_MONTHS)
    start, end = MARKET_DAYS.window(day.isoformat())
    expected = sorted(
        {KNOWN_MONTHS.key_of(start), KNOWN_MONTHS.key_of(end - pd.Timedelta(1, "ns"))}
    )
    assert months == expected
    # A New York day ends at 04:00 or 05:00 UTC the next day: the last of a month touches two.
    if (day + dt.timedelta(days=1)).month != day.month:
        assert len(months) == 2


def test_a_weekend_date_has_no_market_partition():
    with pytest.raises(PartitionSchemeError, match=r"2024-06-08.*weekend"):
        MARKET_DAYS.key_of(dt.date(2024, 6, 8))
    assert MARKET_DAYS.keys_between("2024-06-08", "2024-06-09") == []


def test_a_bad_key_names_itself_and_the_scheme():
    with pytest.raises(PartitionSchemeError, match="known_months: '2024-03-14' is not a partition"):
        KNOWN_MONTHS.window("2024-03-14")
    with pytest.raises(
        PartitionSchemeError, match="market_days: '2024-13-01' is not a partition key"
    ):
        MARKET_DAYS.window("2024-13-01")


def test_values_before_the_first_partition_belong_to_it():
    assert KNOWN_MONTHS.key_of(pd.Timestamp("2019-05-04T10:00", tz="UTC")) == "2023-01-01"
    assert MARKET_DAYS.bounds(["2023-01-02", "2023-01-03"]) == (
        BEGINNING,
        pd.Timestamp("2023-01-03"),
    )


def test_an_instant_maps_by_the_schemes_own_zone():
    late = pd.Timestamp("2024-06-30T23:30", tz="America/New_York")  # 03:30 UTC on July 1st
    assert KNOWN_MONTHS.key_of(late) == "2024-07-01"
    assert STREAM_DAYS.bounds(["2026-11-02"]) == (
        pd.Timestamp("2026-11-02"),
        pd.Timestamp("2026-11-03") - pd.Timedelta(1, "ns"),
    )
