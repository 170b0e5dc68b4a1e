"""Coverage: expected observations present, per symbol or variable, missing and extra named."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform.quality.bars.coverage import (
    bar_coverage,
    coverage,
    coverage_by_key,
    indicator_coverage,
    stream_coverage,
)
from ingest_platform.quality.bars.expected import expected_sessions, expected_stream_days
from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.thresholds import CoverageThresholds

INSTRUMENTS = pd.DataFrame(
    {"symbol": ["AAPL", "MSFT", "EURUSD"], "calendar": ["XNYS", "XNYS", "24/5"]}
)


def _window(helpers, count=40):
    days = helpers.sessions("2024-07-01", count)
    return days, days[0], days[-1]


@pytest.mark.parametrize(
    ("missing", "ratio", "status"),
    [
        (3, 0.925, Status.PASS),  # just above WARN
        (4, 0.9, Status.PASS),  # exactly at WARN
        (5, 0.875, Status.WARN),  # just below WARN
        (10, 0.75, Status.WARN),  # exactly at ERROR
        (11, 0.725, Status.ERROR),  # just below ERROR
    ],
)
def test_bar_coverage_boundaries(helpers, missing, ratio, status):
    days, start, end = _window(helpers)  # 40 XNYS sessions: one missing is 0.025
    aapl = helpers.bars("AAPL", days[missing:])
    msft = helpers.bars("MSFT", days)
    instruments = INSTRUMENTS[INSTRUMENTS["symbol"] != "EURUSD"]
    found = bar_coverage(pd.concat([aapl, msft]), instruments, start, end)
    assert found.status is status
    assert found.check == "bar_coverage"
    assert found.figures["coverage_min"] == ratio
    assert found.figures["keys_below_warn"] == int(ratio < 0.9)
    assert found.figures["keys_below_error"] == int(ratio < 0.75)
    assert found.figures["missing"] == missing
    if status is Status.PASS:
        assert found.offending.empty
        assert "for all 2 symbols" in found.summary
    else:
        first, last = days[0].isoformat(), days[missing - 1].isoformat()
        assert found.offending["symbol"].tolist() == ["AAPL"]
        row = found.offending.iloc[0]
        assert row["date"] == pd.Timestamp(first)
        assert row["coverage"] == ratio
        assert row["threshold"] == (0.75 if status is Status.ERROR else 0.9)
        assert row["missing_dates"] == f"{first}..{last}"
        assert f"AAPL {ratio:.4g} ({first}..{last} missing)" in found.summary
        assert found.summary.startswith(f"coverage {ratio:.4g} < 0.9 for 1 symbol")


def test_fx_follows_its_own_calendar_and_a_bar_on_a_holiday_is_extra(helpers):
    # 2024-07-04: NYSE closed, FX (24/5) open.
    weekdays = pd.bdate_range("2024-07-01", "2024-07-12")
    nyse = [d for d in weekdays if d != pd.Timestamp("2024-07-04")]
    bars = pd.concat(
        [
            helpers.bars("AAPL", weekdays),  # a row on the holiday
            helpers.bars("MSFT", nyse),
            helpers.bars("EURUSD", nyse),  # missing the holiday it trades on
        ]
    )
    table = coverage_by_key(
        bars, expected_sessions(INSTRUMENTS, "2024-07-01", "2024-07-12")
    ).set_index("symbol")
    assert table.loc["AAPL", ["present", "expected", "extra"]].tolist() == [9, 9, 1]
    assert table.loc["AAPL", "first_extra"] == pd.Timestamp("2024-07-04")
    assert table.loc["EURUSD", ["present", "expected", "missing"]].tolist() == [9, 10, 1]
    assert table.loc["EURUSD", "first_missing"] == pd.Timestamp("2024-07-04")
    found = bar_coverage(bars, INSTRUMENTS, "2024-07-01", "2024-07-12")
    assert found.status is Status.WARN  # EURUSD 0.9 passes; AAPL's extra row warns
    assert found.figures["extra"] == 1 and found.figures["keys_with_extra"] == 1
    assert "AAPL (2024-07-04 extra)" in found.summary
    ignored = bar_coverage(
        bars, INSTRUMENTS, "2024-07-01", "2024-07-12",
        thresholds=CoverageThresholds(on_extra=Status.PASS),
    )  # fmt: skip
    assert ignored.passed and "1 extra row ignored" in ignored.summary
    strict = bar_coverage(
        bars, INSTRUMENTS, "2024-07-01", "2024-07-12",
        thresholds=CoverageThresholds(on_extra=Status.ERROR),
    )  # fmt: skip
    assert strict.status is Status.ERROR


def test_missing_runs_span_holidays_because_they_are_consecutive_sessions(helpers):
    days = helpers.sessions("2024-07-01", 10)  # 07-04 is not among them
    present = [d for d in days if d.isoformat() not in ("2024-07-03", "2024-07-05", "2024-07-10")]
    found = bar_coverage(helpers.bars("AAPL", present), INSTRUMENTS.iloc[:1], days[0], days[-1])
    assert found.status is Status.ERROR  # 7 / 10
    assert found.offending.iloc[0]["missing_dates"] == "2024-07-03..2024-07-05, 2024-07-10"


def test_a_symbol_is_expected_only_between_its_listing_days(helpers):
    days, start, end = _window(helpers, 20)
    listings = pd.DataFrame(
        {
            "symbol": ["AAPL", "MSFT"],
            "first_date": [pd.Timestamp(days[10]), None],
            "last_date": [None, pd.Timestamp(days[14])],
        }
    )
    bars = pd.concat(
        [helpers.bars("AAPL", days[8:]), helpers.bars("MSFT", days[:15])], ignore_index=True
    )
    expected = expected_sessions(INSTRUMENTS.iloc[:2], start, end, listings=listings)
    assert expected.groupby("symbol").size().to_dict() == {"AAPL": 10, "MSFT": 15}
    table = coverage_by_key(bars, expected, start=start, end=end).set_index("symbol")
    assert table["ratio"].tolist() == [1.0, 1.0]
    assert table.loc["AAPL", "extra"] == 2  # two bars before its first listing day
    found = bar_coverage(bars, INSTRUMENTS.iloc[:2], start, end, listings=listings)
    assert found.status is Status.WARN
    assert f"AAPL ({days[8].isoformat()}..{days[9].isoformat()} extra)" in found.summary


def test_unknown_symbols_duplicates_and_rows_outside_the_window(helpers):
    days, start, end = _window(helpers, 10)
    bars = pd.concat(
        [
            helpers.bars("AAPL", days),
            helpers.bars("AAPL", days[:3]),  # duplicates count once
            helpers.bars("AAPL", ["2024-06-28"]),  # before the window: ignored
            helpers.bars("ZZZZ", days[:2]),  # not an instrument: extra
        ]
    )
    table = coverage_by_key(
        bars, expected_sessions(INSTRUMENTS.iloc[:1], start, end), start=start, end=end
    )
    assert table.columns.tolist() == [
        "symbol", "ratio", "present", "expected", "missing", "extra",
        "first_missing", "last_missing", "first_extra",
    ]  # fmt: skip
    rows = table.set_index("symbol")
    assert rows.loc["AAPL", ["present", "expected", "extra"]].tolist() == [10, 10, 0]
    assert pd.isna(rows.loc["ZZZZ", "ratio"]) and rows.loc["ZZZZ", "extra"] == 2


def test_indicator_coverage_counts_only_values_against_the_release_calendar():
    months = pd.date_range("2024-01-01", periods=10, freq="MS")
    expected = pd.DataFrame({"variable": "CPI", "date": months})
    values = [1.0] * 7 + [None, None, None]  # three months released as "."
    observed = pd.DataFrame({"variable": "CPI", "date": months, "value": values})
    found = indicator_coverage(observed, expected)
    assert found.status is Status.ERROR  # 0.7
    assert found.figures["coverage_min"] == 0.7
    assert found.offending.iloc[0]["variable"] == "CPI"
    assert "CPI 0.7 (2024-08-01..2024-10-01 missing)" in found.summary
    assert found.summary.startswith("coverage 0.7 < 0.9 for 1 variable")
    nine = pd.DataFrame({"variable": "CPI", "date": months[:9], "value": 1.0})
    assert indicator_coverage(nine, expected).passed  # exactly 0.9


def test_stream_coverage_by_utc_day_of_each_subscription():
    minutes = pd.date_range("2026-11-01", "2026-11-10 23:59", freq="6h", tz="UTC")
    btc = pd.DataFrame({"symbol": "BTC/USD", "minute": minutes})
    eth = pd.DataFrame({"symbol": "ETH/USD", "minute": minutes[minutes.day != 5]})
    subscriptions = pd.DataFrame(
        {"symbol": ["BTC/USD", "ETH/USD"], "first_date": [None, "2026-11-02"], "last_date": None}
    )
    assert len(expected_stream_days(subscriptions, "2026-11-01", "2026-11-10")) == 19
    found = stream_coverage(pd.concat([btc, eth]), subscriptions, "2026-11-01", "2026-11-10")
    # ETH: 8 of 9 subscribed days (0.889 < 0.9); its 11-01 rows precede the subscription.
    assert found.status is Status.WARN
    assert "ETH/USD 0.8889 (2026-11-05 missing)" in found.summary
    assert "ETH/USD (2026-11-01 extra)" in found.summary


def test_generic_coverage_names_the_check_and_needs_its_columns():
    expected = pd.DataFrame({"variable": ["A"], "date": ["2024-01-01"]})
    with pytest.raises(ValueError, match=r"observed frame lacks column\(s\) \['variable'\]"):
        coverage(pd.DataFrame({"date": []}), expected, key="variable")
    empty = coverage(
        pd.DataFrame({"symbol": [], "date": []}), pd.DataFrame({"symbol": [], "date": []})
    )
    assert empty.passed and "nothing expected" in empty.summary
