"""`ingest_bars` as a plain function: no Dagster context in, a typed report out.

The asset tests run it through Dagster; here a fetch function stands in for a source, so what
the report says about each dropped, quarantined or written row is checked directly.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

from ingest_platform.core import settings
from ingest_platform.market.ingest import ingest_bars
from ingest_platform.market.schema import YAHOO_DAILY_BARS
from ingest_platform.market.sources.bars import BarsFetch, Instrument, empty_actions

INSTRUMENTS = [
    Instrument("AAA", "AAA", "equity", "XNYS"),
    Instrument("BBB", "BBB", "equity", "XNYS"),
]
KEYS = ["2025-06-02", "2025-06-03", "2025-06-04"]  # Monday..Wednesday, all sessions


def bar(symbol: str, day: str, close: float = 10.0) -> dict:
    return {
        "symbol": symbol,
        "date": pd.Timestamp(day),
        "open": close,
        "high": close + 1,
        "low": close - 1,
        "close": close,
        "adj_close": close,
        "volume": 1000,
        "source": "yahoo",
        "ingested_at": pd.Timestamp("2025-06-06T12:00:00Z"),
    }


def fetch_of(rows: list[dict]):
    asked: list[tuple[list[str], dt.date, dt.date]] = []

    def fetch(instruments: list[Instrument], start: dt.date, end: dt.date) -> BarsFetch:
        asked.append(([i.symbol for i in instruments], start, end))
        return BarsFetch(
            "yahoo",
            start,
            end,
            pd.DataFrame(rows),
            empty_actions(),
            requested=[i.symbol for i in instruments],
        )

    return fetch, asked


@pytest.fixture(autouse=True)
def _clock(monkeypatch):
    monkeypatch.setenv(settings.NOW_ENV, "2025-06-06T12:00:00+00:00")


def test_the_report_says_what_was_written_dropped_and_quarantined(lake, caplog):
    rows = [bar(s, d) for s in ("AAA", "BBB") for d in KEYS]
    rows[1] = {**rows[1], "high": 5.0}  # AAA 06-03: high below close, fails the schema
    rows.append(bar("AAA", "2025-06-07"))  # a Saturday: outside the range
    rows.append(bar("BBB", "2025-06-04"))  # sent twice, same values
    fetch, asked = fetch_of(rows)
    log = logging.getLogger("test_ingest")
    with caplog.at_level(logging.INFO, logger="test_ingest"):
        report = ingest_bars(lake, YAHOO_DAILY_BARS, "yahoo", INSTRUMENTS, KEYS, fetch, False, log)

    assert asked == [(["AAA", "BBB"], dt.date(2025, 6, 2), dt.date(2025, 6, 4))]
    assert report.keys == KEYS and report.written_keys == set(KEYS)
    assert report.expected == {k: {"AAA", "BBB"} for k in KEYS}
    assert report.rows_outside_range == 1
    assert report.quarantine.rejected_rows == 1 and list(report.quarantine.reasons) == ["AAA"]
    assert report.duplicates[["symbol", "copies"]].values.tolist() == [["BBB", 2]]
    assert report.unstored_keys == []
    stored = lake.read(YAHOO_DAILY_BARS.name, KEYS)
    assert len(stored) == 5 and report.write.rows == 5 and report.write.rewritten == 3
    assert "fetching 2 symbols over 2025-06-02..2025-06-04" in caplog.text
    assert "AAA: quarantined" in caplog.text


def test_a_second_run_fetches_nothing_and_changes_nothing(lake):
    fetch, asked = fetch_of([bar(s, d) for s in ("AAA", "BBB") for d in KEYS])
    log = logging.getLogger("test_ingest")
    ingest_bars(lake, YAHOO_DAILY_BARS, "yahoo", INSTRUMENTS, KEYS, fetch, False, log)
    again = ingest_bars(lake, YAHOO_DAILY_BARS, "yahoo", INSTRUMENTS, KEYS, fetch, False, log)
    assert len(asked) == 1 and again.plan.empty
    assert again.write.rewritten == 0 and again.write.unchanged == 3


def test_without_store_nothing_is_written_and_nothing_counts_as_left_missing(lake):
    fetch, _ = fetch_of([bar("AAA", KEYS[0])])
    log = logging.getLogger("test_ingest")
    report = ingest_bars(
        lake, YAHOO_DAILY_BARS, "yahoo", INSTRUMENTS, KEYS, fetch, True, log, store=False
    )
    assert report.write.partitions == {} and report.unstored_keys == []
    assert lake.partition_keys(YAHOO_DAILY_BARS.name) == []
