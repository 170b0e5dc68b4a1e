"""FRED stages on crafted payloads: request guard, error interpretation, payloads to frames."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, quote_plus

import numpy as np
import pandas as pd
import pytest

from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import (
    AuthenticationFailed,
    MalformedPayload,
    SourceError,
    SourceUnavailable,
    UnknownSymbol,
)
from ingest_platform.economic.sources import fred_frames
from ingest_platform.economic.sources.fred import (
    FredSource,
    NoVintages,
    TooManyVintages,
    request_params,
    split_realtime,
)

KEY = "Ab+cd/EF=gh-0123456789abcdefXYZ"  # URL-unsafe characters on purpose


def source() -> FredSource:
    return FredSource(HttpClient("fred", secrets=[KEY]), KEY)


def row(date: str, value: str, start: str, end: str) -> dict[str, str]:
    return {"date": date, "value": value, "realtime_start": start, "realtime_end": end}


# ---- the request guard -----------------------------------------------------------------------


def test_the_singular_vintage_date_cannot_be_sent():
    with pytest.raises(ValueError, match="ignores 'vintage_date' and serves revised values"):
        request_params("series/observations", {"series_id": "GDP", "vintage_date": "2020-01-01"})
    with pytest.raises(ValueError, match=r"does not take \['units'\]"):
        request_params("series/observations", {"series_id": "GDP", "units": "pch"})
    with pytest.raises(ValueError, match="unknown FRED endpoint"):
        request_params("series/search", {})
    query = request_params("series/observations", {"series_id": "GDP", "observation_end": None})
    assert query == {"series_id": "GDP"}  # None means "not sent"


def test_a_client_that_would_not_redact_the_key_is_refused():
    with pytest.raises(ValueError, match=r"secrets=\[api_key\]"):
        FredSource(HttpClient("fred"), KEY)
    with pytest.raises(AuthenticationFailed, match="FRED_API_KEY"):
        FredSource(HttpClient("fred", secrets=[KEY]), "")


# ---- error bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (400, "Bad Request.  The series does not exist.", UnknownSymbol),
        (400, "Bad Request.  Variable api_key is not set.", AuthenticationFailed),
        (400, "Bad Request.  The value for variable api_key is not registered.",
         AuthenticationFailed),
        (400, "Bad Request.  The series does not exist in ALFRED but may exist in FRED.",
         NoVintages),
        (404, "Not Found.  The requested resource does not exist.", UnknownSymbol),
        (423, "Locked.  The resource is locked.", SourceError),
        (500, "Internal Server Error", SourceUnavailable),
    ],
)  # fmt: skip
def test_fred_error_bodies_become_typed_errors(status, message, error):
    body = {"error_code": status, "error_message": message}
    with pytest.raises(error) as raised:
        source().interpret("GDP")(status, body)
    assert type(raised.value) is error and raised.value.symbol == "GDP"
    assert message in str(raised.value)


def test_the_vintage_cap_refusal_carries_the_cap():
    message = (
        "Bad Request.  There are 2004 vintage dates in the specified real-time period: "
        "1776-07-04 to 9999-12-31.  This exceeds the maximum number of vintage dates allowed "
        "(2000)."
    )
    with pytest.raises(TooManyVintages) as raised:
        source().interpret("T10Y2Y")(400, {"error_code": 400, "error_message": message})
    assert raised.value.cap == 2000


def test_an_error_message_that_echoes_the_key_is_redacted():
    spellings = (KEY, quote(KEY, safe=""), quote_plus(KEY))
    for spelling in spellings:
        body = {
            "error_code": 400,
            "error_message": f"Bad Request.  The value for variable api_key ({spelling}) is "
            f"not registered. Request: /fred/series?api_key={spelling}&series_id=GDP",
        }
        with pytest.raises(AuthenticationFailed) as raised:
            source().interpret("GDP")(400, body)
        text = str(raised.value)
        assert "api_key" in text and "***" in text
        assert not any(s in text for s in spellings), text


def test_a_non_object_answer_is_malformed():
    with pytest.raises(MalformedPayload, match="expected a JSON object, got list"):
        source().interpret("GDP")(200, [1, 2])


# ---- payloads to frames ----------------------------------------------------------------------


def test_observations_become_canonical_rows_with_open_ends_and_missing_values(tmp_path):
    rows = [
        row("2024-07-03", "4.36", "2024-07-05", "2024-08-04"),
        row("2024-07-03", "4.35", "2024-08-05", "9999-12-31"),
        row("2024-07-04", ".", "2024-07-05", "9999-12-31"),
    ]
    frame = fred_frames.observations_frame(rows, "DGS10")
    assert list(frame.columns) == fred_frames.OBSERVATION_COLUMNS
    assert frame.dtypes.astype(str).to_dict() == {
        "series_id": "object",
        "date": "datetime64[ns]",
        "value": "float64",
        "realtime_start": "datetime64[ns]",
        "realtime_end": "datetime64[ns]",
    }
    assert frame["value"].tolist()[:2] == [4.36, 4.35] and np.isnan(frame["value"].iloc[2])
    assert frame["realtime_end"].tolist() == [pd.Timestamp("2024-08-04"), pd.NaT, pd.NaT]

    path = tmp_path / "observations.parquet"
    frame.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)  # NaT survives the lake


def test_periods_cut_by_a_split_request_are_joined_again():
    rows = [  # chunk 1 ends 2020-03-31, chunk 2 starts 2020-04-01
        row("2020-01-01", "1.5", "2020-02-03", "2020-03-31"),
        row("2020-01-01", "1.5", "2020-04-01", "2020-05-03"),
        row("2020-01-01", "1.6", "2020-05-04", "9999-12-31"),
        row("2020-02-01", ".", "2020-03-02", "2020-03-31"),
        row("2020-02-01", ".", "2020-04-01", "9999-12-31"),
        row("2020-03-01", "2.0", "2020-04-01", "2020-04-01"),
        row("2020-03-01", "2.0", "2020-04-03", "9999-12-31"),  # a gap: stays two periods
    ]
    frame = fred_frames.observations_frame(rows, "X")
    periods = [
        (str(r.date.date()), r.realtime_start.strftime("%m-%d"), r.realtime_end)
        for r in frame.itertuples()
    ]
    assert periods == [
        ("2020-01-01", "02-03", pd.Timestamp("2020-05-03")),
        ("2020-01-01", "05-04", pd.NaT),
        ("2020-02-01", "03-02", pd.NaT),
        ("2020-03-01", "04-01", pd.Timestamp("2020-04-01")),
        ("2020-03-01", "04-03", pd.NaT),
    ]


def test_duplicates_are_dropped_and_conflicting_rows_refused():
    same = row("2024-01-01", "3.1", "2024-02-02", "9999-12-31")
    assert len(fred_frames.observations_frame([same, same], "UNRATE")) == 1
    other = row("2024-01-01", "3.2", "2024-02-02", "9999-12-31")
    with pytest.raises(MalformedPayload, match="two values for 2024-01-01 from 2024-02-02"):
        fred_frames.observations_frame([same, other], "UNRATE")
    with pytest.raises(MalformedPayload, match="unreadable observation row"):
        fred_frames.observations_frame([row("2024-01-01", "n/a", "2024-02-02", "2024-03-01")], "U")
    with pytest.raises(MalformedPayload, match="unreadable observation row"):
        fred_frames.observations_frame([{"date": "2024-01-01"}], "U")
    assert fred_frames.observations_frame([], "U").columns.tolist() == (
        fred_frames.OBSERVATION_COLUMNS
    )


def test_split_realtime_covers_the_period_with_at_most_cap_vintages_each():
    dates = [dt.date(2020, 1, d) for d in (2, 3, 6, 7, 8, 9, 10)]
    chunks = split_realtime(("2020-01-01", "9999-12-31"), dates, 3)
    assert chunks == [
        ("2020-01-01", "2020-01-06"),
        ("2020-01-07", "2020-01-09"),
        ("2020-01-10", "9999-12-31"),
    ]
    for lo, hi in chunks:
        assert sum(lo <= d.isoformat() <= hi for d in dates) <= 3
    assert split_realtime(("2020-01-01", "2020-12-31"), dates, 2000) == [
        ("2020-01-01", "2020-12-31")
    ]


def test_series_metadata_and_release_payloads():
    payload = {
        "seriess": [
            {
                "id": "GDP",
                "title": "Gross Domestic Product",
                "frequency": "Quarterly",
                "frequency_short": "Q",
                "units": "Billions of Dollars",
                "seasonal_adjustment": "Seasonally Adjusted Annual Rate",
                "last_updated": "2024-05-30 07:54:02-05",
                "observation_start": "1947-01-01",
                "observation_end": "2024-01-01",
            }
        ]
    }
    info = fred_frames.series_info(payload, "GDP")
    assert info.last_updated == pd.Timestamp("2024-05-30 12:54:02", tz="UTC")
    assert info.observation_end == pd.Timestamp("2024-01-01")
    table = fred_frames.series_table([info])
    assert table.columns.tolist() == fred_frames.SERIES_COLUMNS and len(table) == 1
    with pytest.raises(MalformedPayload, match="exactly one entry"):
        fred_frames.series_info({"seriess": []}, "GDP")
    release = {"releases": [{"id": 53, "name": "Gross Domestic Product"}]}
    assert fred_frames.release_of(release, "GDP") == (53, "Gross Domestic Product")


def test_release_calendar_marks_dates_after_today_as_scheduled():
    calendar = fred_frames.release_calendar(
        {"CPIAUCSL": (10, "Consumer Price Index"), "CPILFESL": (10, "Consumer Price Index")},
        {10: [dt.date(2026, 10, 13), dt.date(2026, 11, 12), dt.date(2026, 12, 10)]},
        today=dt.date(2026, 11, 20),
    )
    assert calendar.columns.tolist() == fred_frames.CALENDAR_COLUMNS
    assert len(calendar) == 6 and calendar["release_id"].dtype == "int64"
    scheduled = calendar[calendar.scheduled]
    assert scheduled["date"].unique().tolist() == [pd.Timestamp("2026-12-10")]
    assert sorted(scheduled["series_id"]) == ["CPIAUCSL", "CPILFESL"]
