"""Stuck prices: the same close for a run of sessions that traded nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest_platform.quality.bars.stuck import stuck_price_rows, stuck_prices
from ingest_platform.quality.shared.finding import Status


def _closes(run: int) -> np.ndarray:
    closes = 100 + np.arange(40, dtype=float)  # every close differs
    closes[10 : 10 + run] = 110.0  # `run` sessions with one close
    return closes


def _flat(helpers, run, symbol="ACME", flat=True):
    closes = _closes(run)
    days = helpers.sessions("2024-01-02", len(closes))
    bars = helpers.bars(symbol, days, closes)
    if flat:
        stuck = slice(11, 10 + run)  # the repeats after the first session of the run
        bars.loc[stuck, ["open", "high", "low"]] = 110.0
    return bars, days


@pytest.mark.parametrize(
    ("run", "status"),
    [
        (2, Status.PASS),  # just below WARN
        (3, Status.WARN),  # exactly at WARN
        (4, Status.WARN),  # just below ERROR
        (5, Status.ERROR),  # exactly at ERROR
    ],
)
def test_stuck_run_boundaries(helpers, run, status):
    bars, days = _flat(helpers, run)
    found = stuck_prices(bars)
    assert found.status is status
    if status is Status.PASS:
        assert found.offending.empty
    else:
        row = found.offending.iloc[0]
        assert (row["symbol"], row["date"]) == ("ACME", pd.Timestamp(days[10]))
        assert row["last_date"] == pd.Timestamp(days[9 + run])
        assert row["value"] == run
        assert row["threshold"] == (5 if status is Status.ERROR else 3)
        assert (
            f"ACME {days[10].isoformat()} stuck price (close 110 for {run} sessions"
            in found.summary
        )


def test_an_equity_repeating_its_close_while_trading_is_not_stuck(helpers):
    bars, _ = _flat(helpers, 6, flat=False)  # normal range and volume
    assert stuck_prices(bars).passed
    silent = bars.copy()
    silent.loc[11:15, "volume"] = 0  # nothing traded on the repeats
    assert stuck_price_rows(silent)["value"].tolist() == [6.0]


def test_fx_reports_no_volume_so_a_repeated_close_alone_counts(helpers):
    bars, _ = _flat(helpers, 3, symbol="EURUSD", flat=False)
    bars["volume"] = 0
    bars[["open", "high", "low", "close"]] /= 100
    found = stuck_prices(bars)
    assert found.status is Status.WARN
    assert found.offending["symbol"].tolist() == ["EURUSD"]


def test_runs_never_span_two_symbols(helpers):
    days = helpers.sessions("2024-01-02", 4)
    a = helpers.bars("AAA", days, [1.0, 2.0, 3.0, 5.0])
    b = helpers.bars("BBB", days, [5.0, 5.0, 6.0, 7.0])  # BBB opens at AAA's last close
    both = pd.concat([a, b], ignore_index=True)
    for column in ("open", "high", "low"):
        both[column] = both["close"]
    assert stuck_price_rows(both).empty
