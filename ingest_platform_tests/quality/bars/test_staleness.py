"""Staleness of bars and indicators: the newest observation against the latest that should
exist by `now`."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ingest_platform.quality.bars.staleness import (
    bar_staleness,
    bar_staleness_by_symbol,
    indicator_staleness,
    indicator_staleness_by_variable,
)
from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.thresholds import BarStalenessThresholds

INSTRUMENTS = pd.DataFrame({"symbol": ["AAPL", "EURUSD"], "calendar": ["XNYS", "24/5"]})
# 2024-07-12 is a Friday: NYSE closes 20:00 UTC, 24/5 at midnight UTC; settle is 12 hours.
NYSE_DONE = pd.Timestamp("2024-07-13 08:00", tz="UTC")
FX_DONE = pd.Timestamp("2024-07-13 12:00", tz="UTC")
SECOND = pd.Timedelta(seconds=1)


def _bars(helpers, last_aapl="2024-07-12", last_fx="2024-07-12"):
    aapl = helpers.bars("AAPL", helpers.sessions("2024-07-01", 30))
    fx = helpers.bars("EURUSD", pd.bdate_range("2024-07-01", "2024-08-10"))
    aapl = aapl[aapl["date"] <= last_aapl]
    fx = fx[fx["date"] <= last_fx]
    return pd.concat([aapl, fx], ignore_index=True)


@pytest.mark.parametrize(
    ("last", "lag", "status"),
    [
        ("2024-07-12", 0, Status.PASS),  # exactly at WARN (0 behind)
        ("2024-07-11", 1, Status.WARN),  # just above WARN
        ("2024-07-10", 2, Status.WARN),  # exactly at ERROR
        ("2024-07-09", 3, Status.ERROR),  # just above ERROR
    ],
)
def test_bar_staleness_boundaries_in_sessions(helpers, last, lag, status):
    found = bar_staleness(_bars(helpers, last_aapl=last), INSTRUMENTS, FX_DONE)
    assert found.status is status
    assert found.figures["max_lag_sessions"] == lag
    assert found.figures["stale_warn"] == int(status is Status.WARN)
    assert found.figures["stale_error"] == int(status is Status.ERROR)
    if status is Status.PASS:
        assert found.offending.empty
        assert found.summary == (
            "all 2 symbols up to their last completed session as of 2024-07-13 12:00 UTC"
        )
    else:
        row = found.offending.iloc[0]
        assert (row["symbol"], row["date"], row["expected_date"]) == (
            "AAPL", pd.Timestamp(last), pd.Timestamp("2024-07-12"),
        )  # fmt: skip
        assert row["lag_sessions"] == lag
        assert row["threshold"] == (2 if status is Status.ERROR else 0)
        assert f"AAPL ({last}, {lag} behind)" in found.summary


def test_a_session_is_complete_only_after_its_close_plus_the_settle_delay(helpers):
    bars = _bars(helpers, last_aapl="2024-07-11", last_fx="2024-07-11")
    before = bar_staleness_by_symbol(bars, INSTRUMENTS, NYSE_DONE - SECOND).set_index("symbol")
    assert before["expected_date"].tolist() == [pd.Timestamp("2024-07-11")] * 2
    assert before["lag_sessions"].tolist() == [0, 0]
    at_nyse = bar_staleness_by_symbol(bars, INSTRUMENTS, NYSE_DONE).set_index("symbol")
    assert at_nyse.loc["AAPL", "lag_sessions"] == 1  # NYSE's 07-12 is due ...
    assert at_nyse.loc["EURUSD", "lag_sessions"] == 0  # ... FX's closes at midnight UTC
    at_fx = bar_staleness_by_symbol(bars, INSTRUMENTS, FX_DONE).set_index("symbol")
    assert at_fx.loc["EURUSD", "lag_sessions"] == 1
    quick = BarStalenessThresholds(settle_hours=0)
    early = bar_staleness_by_symbol(
        bars, INSTRUMENTS, pd.Timestamp("2024-07-12 20:00", tz="UTC"), thresholds=quick
    )
    assert early.set_index("symbol").loc["AAPL", "lag_sessions"] == 1


def test_weekends_and_holidays_are_not_sessions_behind(helpers):
    # Friday 2024-07-05 follows the 07-04 holiday; on Monday morning nothing is missing.
    bars = _bars(helpers, last_aapl="2024-07-05", last_fx="2024-07-05")
    monday = pd.Timestamp("2024-07-08 09:00", tz="UTC")
    assert bar_staleness(bars, INSTRUMENTS, monday).passed
    holiday = _bars(helpers, last_aapl="2024-07-03", last_fx="2024-07-04")
    assert bar_staleness(holiday, INSTRUMENTS, pd.Timestamp("2024-07-05 13:00", tz="UTC")).passed


def test_never_observed_is_an_error_and_listings_bound_what_is_expected(helpers):
    bars = _bars(helpers)
    instruments = pd.DataFrame(
        {"symbol": ["AAPL", "EURUSD", "GONE", "SOON", "NEVER"], "calendar": ["XNYS"] * 5}
    )
    gone = helpers.bars("GONE", ["2024-07-01", "2024-07-02"])
    listings = pd.DataFrame(
        {
            "symbol": ["GONE", "SOON"],
            "first_date": [None, "2024-08-01"],
            "last_date": ["2024-07-02", None],
        }
    )
    table = bar_staleness_by_symbol(
        pd.concat([bars, gone]), instruments, FX_DONE, listings=listings
    ).set_index("symbol")
    assert "SOON" not in table.index  # not listed yet
    assert table.loc["GONE", ["expected_date", "lag_sessions"]].tolist() == [
        pd.Timestamp("2024-07-02"), 0,
    ]  # fmt: skip
    assert table.loc["NEVER", "status"] == "ERROR" and pd.isna(table.loc["NEVER", "lag_sessions"])
    assert table.loc["NEVER", "freshness"] == 0.0
    found = bar_staleness(pd.concat([bars, gone]), instruments, FX_DONE, listings=listings)
    assert found.status is Status.ERROR
    assert found.offending.iloc[0]["symbol"] == "NEVER"
    assert "NEVER (never)" in found.summary
    assert found.figures["never_observed"] == 1


def test_now_must_be_timezone_aware_and_is_the_only_clock(helpers):
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        bar_staleness(_bars(helpers), INSTRUMENTS, dt.datetime(2024, 7, 13, 12))
    later = bar_staleness(_bars(helpers), INSTRUMENTS, pd.Timestamp("2024-07-20", tz="UTC"))
    assert later.status is Status.ERROR  # the same bars, judged a week later
    again = bar_staleness(_bars(helpers), INSTRUMENTS, FX_DONE)
    assert again.passed


RELEASES = pd.DataFrame(
    {
        "variable": ["CPI", "CPI", "CPI", "UNRATE"],
        "date": pd.to_datetime(["2024-04-01", "2024-05-01", "2024-06-01", "2024-06-01"]),
        "release_date": pd.to_datetime(["2024-05-15", "2024-06-12", "2024-07-11", "2024-07-05"]),
    }
)
OBSERVED = pd.DataFrame(
    {
        "variable": ["CPI", "CPI", "CPI", "UNRATE"],
        "date": pd.to_datetime(["2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"]),
        "value": [310.0, 311.0, None, 4.1],  # May's CPI came through as "."
    }
)
# May's CPI release (2024-06-12, naive = midnight UTC) is due 24 hours later.
CPI_DUE = pd.Timestamp("2024-06-13 00:00", tz="UTC")


@pytest.mark.parametrize(
    ("now", "status"),
    [
        (CPI_DUE, Status.PASS),  # exactly at WARN (0 h late)
        (CPI_DUE + SECOND, Status.WARN),  # just above WARN
        (CPI_DUE + pd.Timedelta(hours=72), Status.WARN),  # exactly at ERROR
        (CPI_DUE + pd.Timedelta(hours=72) + SECOND, Status.ERROR),  # just above ERROR
    ],
)
def test_indicator_staleness_boundaries_in_hours(now, status):
    found = indicator_staleness(OBSERVED, RELEASES, now)
    assert found.status is status
    late = (now - CPI_DUE) / pd.Timedelta(hours=1)
    assert found.figures["max_lag_hours"] == pytest.approx(late)
    if status is not Status.PASS:
        row = found.offending.iloc[0]
        assert row["variable"] == "CPI"
        assert row["date"] == pd.Timestamp("2024-04-01")  # newest with a value
        assert row["expected_date"] == pd.Timestamp("2024-05-01")
        assert row["due_at"] == CPI_DUE
        assert row["threshold"] == (72.0 if status is Status.ERROR else 0.0)
        assert "CPI (2024-05-01 due, last 2024-04-01" in found.summary
    else:
        assert found.summary.startswith("all 2 variables have every due release")


def test_a_release_is_due_from_exactly_its_due_time():
    table = indicator_staleness_by_variable(OBSERVED, RELEASES, CPI_DUE).set_index("variable")
    assert table.loc["CPI", "expected_date"] == pd.Timestamp("2024-05-01")
    assert table.loc["CPI", "due_at"] == CPI_DUE and table.loc["CPI", "late_hours"] == 0.0
    earlier = indicator_staleness_by_variable(OBSERVED, RELEASES, CPI_DUE - SECOND)
    assert earlier.set_index("variable").loc["CPI", "expected_date"] == pd.Timestamp("2024-04-01")


def test_the_oldest_unmet_release_sets_the_lateness_and_a_met_one_clears_it():
    now = pd.Timestamp("2024-07-15", tz="UTC")
    table = indicator_staleness_by_variable(OBSERVED, RELEASES, now).set_index("variable")
    assert table.loc["CPI", "due_at"] == CPI_DUE  # not June's, released later
    assert table.loc["CPI", "expected_date"] == pd.Timestamp("2024-06-01")
    assert table.loc["UNRATE", "late_hours"] == 0.0
    filled = OBSERVED.fillna({"value": 312.0})
    assert indicator_staleness_by_variable(filled, RELEASES, now).set_index("variable").loc[
        "CPI", "due_at"
    ] == pd.Timestamp("2024-07-12", tz="UTC")


def test_release_times_may_be_timezone_aware():
    aware = RELEASES.assign(
        release_date=pd.to_datetime(RELEASES["release_date"]).dt.tz_localize("America/New_York")
        + pd.Timedelta(hours=8, minutes=30)
    )
    due = pd.Timestamp("2024-06-12 08:30", tz="America/New_York") + pd.Timedelta(hours=24)
    assert indicator_staleness(OBSERVED, aware, due).passed
    assert indicator_staleness(OBSERVED, aware, due + SECOND).status is Status.WARN


def test_indicator_frames_may_carry_iso_strings_as_dates():
    as_text = OBSERVED.assign(date=OBSERVED["date"].dt.strftime("%Y-%m-%d"))
    releases = RELEASES.assign(
        date=RELEASES["date"].dt.strftime("%Y-%m-%d"),
        release_date=RELEASES["release_date"].dt.strftime("%Y-%m-%d"),
    )
    found = indicator_staleness(as_text, releases, CPI_DUE + SECOND)
    assert found.status is Status.WARN and "CPI (2024-05-01 due" in found.summary
