"""`ingest_platform.asof.known_at` on crafted vintages: boundaries, missing values, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform.asof import known_at

UTC = "UTC"


def vintage(series, date, value, start, end=None):
    return {
        "series_id": series,
        "date": pd.Timestamp(date),
        "value": value,
        "realtime_start": pd.Timestamp(start),
        "realtime_end": pd.Timestamp(end) if end else pd.NaT,
        "known_at": pd.Timestamp(start, tz=UTC),
    }


#: March's value: first 3.9 (released 2024-04-05), revised to 4.0 on 2024-05-03, then
#: withdrawn ("." = missing) on 2024-06-07. April's first release is 2024-05-03.
FRAME = pd.DataFrame(
    [
        vintage("UNRATE", "2024-03-01", 3.9, "2024-04-05", "2024-05-02"),
        vintage("UNRATE", "2024-03-01", 4.0, "2024-05-03", "2024-06-06"),
        vintage("UNRATE", "2024-03-01", None, "2024-06-07"),
        vintage("UNRATE", "2024-04-01", 3.8, "2024-05-03"),
    ]
)


def value(as_of, date="2024-03-01"):
    rows = known_at(FRAME, as_of)
    match = rows[rows["date"] == pd.Timestamp(date)]
    return match["value"].tolist()


def test_the_day_before_on_and_after_a_revision():
    assert value("2024-05-02") == [3.9]
    assert value("2024-05-03") == [4.0]  # a release counts as known on its day (ALFRED)
    assert value("2024-05-04") == [4.0]


def test_an_observation_not_yet_released_is_absent_not_guessed():
    assert value("2024-04-04") == []
    assert value("2024-05-02", "2024-04-01") == []
    assert value("2024-05-03", "2024-04-01") == [3.8]


def test_a_vintage_that_says_missing_stays_null_and_never_falls_back():
    (after_withdrawal,) = value("2024-07-01")
    assert pd.isna(after_withdrawal)


def test_a_timestamp_is_judged_to_the_instant():
    at_release = pd.Timestamp("2024-05-03 00:00", tz=UTC)
    assert value(at_release - pd.Timedelta(seconds=1)) == [3.9]
    assert value(at_release) == [4.0]


def test_rows_open_in_their_partition_are_superseded_by_newer_ones():
    sealed = FRAME.assign(realtime_end=pd.NaT)  # as partitions store them: ends not yet known
    rows = known_at(sealed, "2024-05-10")
    assert rows.loc[rows["date"] == pd.Timestamp("2024-03-01"), "value"].tolist() == [4.0]


def test_a_frame_without_the_long_columns_is_refused_by_name():
    with pytest.raises(ValueError, match=r"known_at: the frame lacks column\(s\) \['known_at'\]"):
        known_at(FRAME.drop(columns="known_at"), "2024-05-03")
