"""Market-bar rules, called directly on crafted frames."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ingest_platform.core import schema
from ingest_platform.core.dataset import same_rows
from ingest_platform.core.partitions import market_day
from ingest_platform.market import rules as market
from ingest_platform.market.schema import MARKET_BARS, DailyBars
from ingest_platform.market.sources.bars import Instrument

AAPL = Instrument("AAPL", "AAPL", "equity", "XNYS")
MSFT = Instrument("MSFT", "MSFT", "equity", "XNYS")
EURUSD = Instrument("EURUSD", "EURUSD=X", "fx", "24/5")
T0 = pd.Timestamp("2024-07-10 22:00", tz="UTC")


def bar(symbol, day, close=100.0, source="yahoo", ingested_at=T0, **overrides):
    row = {
        "symbol": symbol,
        "date": pd.Timestamp(day),
        "open": close,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "adj_close": close,
        "volume": 1000,
        "source": source,
        "ingested_at": ingested_at,
    }
    row.update(overrides)
    return row


def frame(*rows):
    return pd.DataFrame(list(rows))


def test_expected_symbols_follow_each_calendar():
    assert market.expected_symbols([AAPL, EURUSD], market_day("2024-07-04")) == {"EURUSD"}
    assert market.expected_symbols([AAPL, EURUSD], market_day("2024-07-05")) == {"AAPL", "EURUSD"}


def test_days_with_the_same_calendars_open_share_one_expected_set():
    # Memory (issue 20): a year of thousands of instruments holds one set per calendar
    # pattern, not one per day. The sets are read-only.
    keys = ["2024-07-03", "2024-07-04", "2024-07-05"]
    expected = market.expected_by_partition([AAPL, EURUSD], keys)
    assert expected == {
        "2024-07-03": {"AAPL", "EURUSD"},
        "2024-07-04": {"EURUSD"},  # Independence Day: NYSE closed
        "2024-07-05": {"AAPL", "EURUSD"},
    }
    assert expected["2024-07-03"] is expected["2024-07-05"]


def test_plan_fetches_only_what_is_missing_unless_refreshing():
    keys = ["2024-07-08", "2024-07-09", "2024-07-10"]
    expected = market.expected_by_partition([AAPL, MSFT], keys)
    present = {
        "2024-07-08": {"AAPL", "MSFT"},
        "2024-07-09": {"AAPL", "MSFT"},
        "2024-07-10": {"AAPL"},
    }

    plan = market.plan_fetch([AAPL, MSFT], expected, present, refresh=False)
    assert [i.symbol for i in plan.instruments] == ["MSFT"]
    assert (plan.start, plan.end) == (dt.date(2024, 7, 10), dt.date(2024, 7, 10))

    full = market.plan_fetch([AAPL, MSFT], expected, present, refresh=True)
    assert {i.symbol for i in full.instruments} == {"AAPL", "MSFT"}
    assert (full.start, full.end) == (dt.date(2024, 7, 8), dt.date(2024, 7, 10))

    complete = {k: {"AAPL", "MSFT"} for k in keys}
    assert market.plan_fetch([AAPL, MSFT], expected, complete, refresh=False).empty


def test_rows_split_into_daily_partitions_and_empty_days_stay_empty():
    rows = frame(bar("AAPL", "2024-07-03"), bar("AAPL", "2024-07-05"), bar("MSFT", "2024-07-05"))
    parts = MARKET_BARS.split(rows, ["2024-07-03", "2024-07-04", "2024-07-05"])
    assert [len(parts[k]) for k in sorted(parts)] == [1, 0, 2]


def test_invalid_rows_are_quarantined_and_named_while_the_rest_survive():
    rows = frame(
        bar("AAPL", "2024-07-08"),
        bar("MSFT", "2024-07-08", high=90.0),  # high below close
        bar("MSFT", "2024-07-09", close=-1.0, open=1.0, high=2.0, low=-2.0),  # negative prices
        bar("AAPL", "2024-07-09"),
    )
    quarantine = market.quarantine_invalid(rows, DailyBars)
    assert sorted(quarantine.valid["symbol"]) == ["AAPL", "AAPL"]
    assert quarantine.rejected_rows == 2
    assert set(quarantine.reasons) == {"MSFT"}
    assert "2 row(s) failed" in quarantine.reasons["MSFT"]
    assert "high_is_highest" in quarantine.reasons["MSFT"]
    assert "greater_than(0)" in quarantine.reasons["MSFT"]
    assert "2024-07-08" in quarantine.reasons["MSFT"]


def test_merge_keeps_ingested_at_of_unchanged_rows_so_reruns_change_nothing():
    existing = schema.validate(
        DailyBars, frame(bar("AAPL", "2024-07-08"), bar("MSFT", "2024-07-08"))
    )
    later = pd.Timestamp("2024-07-11 22:00", tz="UTC")
    refetched = schema.validate(
        DailyBars,
        frame(
            bar("AAPL", "2024-07-08", ingested_at=later),
            bar("MSFT", "2024-07-08", close=101.0, ingested_at=later),
        ),
    )
    merged = market.merge_partition(existing, refetched, refresh=True)
    by_symbol = merged.set_index("symbol")
    assert by_symbol.loc["AAPL", "ingested_at"] == T0  # same values: original fetch time kept
    assert by_symbol.loc["MSFT", "ingested_at"] == later  # changed: new row wins
    assert by_symbol.loc["MSFT", "close"] == 101.0

    unchanged = market.merge_partition(existing, refetched.iloc[:1], refresh=True)
    assert same_rows(existing, unchanged, ("symbol", "date"))


def test_missing_mode_only_fills_gaps():
    existing = schema.validate(DailyBars, frame(bar("AAPL", "2024-07-08")))
    fetched = schema.validate(
        DailyBars, frame(bar("AAPL", "2024-07-08", close=50.0), bar("MSFT", "2024-07-08"))
    )
    merged = market.merge_partition(existing, fetched, refresh=False)
    assert merged.set_index("symbol").loc["AAPL", "close"] == 100.0
    assert sorted(merged["symbol"]) == ["AAPL", "MSFT"]


def test_rotating_sample_covers_everything_within_a_cycle():
    instruments = [Instrument(f"S{i:03d}", f"S{i:03d}", "equity", "XNYS") for i in range(534)]
    seen: set[str] = set()
    day = dt.date(2024, 1, 1)
    for offset in range(27):
        sample = market.rotating_sample(instruments, 20, day + dt.timedelta(days=offset))
        assert len(sample) == 20 and len({i.symbol for i in sample}) == 20
        seen |= {i.symbol for i in sample}
    assert len(seen) == 534
    assert market.rotating_sample(instruments, 20, day) == market.rotating_sample(
        instruments, 20, day
    )


def test_split_adjust_puts_as_traded_prices_on_the_split_basis():
    raw = frame(
        bar("NVDA", "2024-06-07", close=1200.0, source="alpha_vantage", volume=1_000),
        bar("NVDA", "2024-06-10", close=121.0, source="alpha_vantage", volume=10_000),
    )
    splits = pd.DataFrame(
        {
            "symbol": ["NVDA"],
            "date": [pd.Timestamp("2024-06-10")],
            "action": ["split"],
            "value": [10.0],
        }
    )
    adjusted = market.split_adjust(raw, splits)
    assert adjusted["close"].tolist() == pytest.approx([120.0, 121.0])
    assert adjusted["volume"].tolist() == [10_000, 10_000]


def test_consolidation_takes_the_first_source_in_priority_and_names_it():
    yahoo = frame(bar("AAPL", "2024-07-08", source="yahoo"))
    polygon = frame(
        bar("AAPL", "2024-07-08", source="polygon", close=99.0),
        bar("MSFT", "2024-07-08", source="polygon"),
    )
    av = frame(
        bar("MSFT", "2024-07-08", source="alpha_vantage"),
        bar("IBM", "2024-07-08", source="alpha_vantage"),
    )
    out = market.consolidate({"alpha_vantage": av, "polygon": polygon, "yahoo": yahoo})
    assert dict(zip(out["symbol"], out["source"], strict=True)) == {
        "AAPL": "yahoo",
        "IBM": "alpha_vantage",
        "MSFT": "polygon",
    }


def test_on_calendar_drops_bars_on_closed_days_and_outside_the_run():
    rows = frame(
        bar("AAPL", "2024-07-04"),  # NYSE closed on Independence Day: an echoed bar, not data
        bar("EURUSD", "2024-07-04"),  # FX trades that day
        bar("AAPL", "2024-07-05"),
        bar("AAPL", "2024-07-08"),  # outside the run's partitions
    )
    keep = market.on_calendar(rows, [AAPL, EURUSD], ["2024-07-04", "2024-07-05"])
    assert keep.tolist() == [False, True, True, False]
