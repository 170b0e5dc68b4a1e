"""Issue 13: a call-budget store lost mid-fetch costs its counts, never the rows fetched."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd

from ingest_platform.core.http import CallBudget
from ingest_platform.market.sources.bars import Instrument, SymbolAnswer, fetch_bars


def _instrument(symbol: str) -> Instrument:
    return Instrument(symbol, symbol, "equity", "XNYS")


def test_a_budget_store_lost_mid_fetch_keeps_the_rows_already_fetched(tmp_path):
    """Issue 13: deleting the budget database mid-run used to fail every later call with
    'no such table: call_budget' and no path. Now the store comes back; and when it cannot
    (its folder replaced by a file), the symbols still to fetch fail naming the path while
    those fetched are kept."""
    folder = tmp_path / "budgets"
    budget = CallBudget("polygon", folder / "call_budgets.sqlite", daily_limit=100)

    def fetch_one(instrument: Instrument, start: dt.date, end: dt.date):
        budget.charge()
        if instrument.symbol == "AAA":
            os.unlink(folder / "call_budgets.sqlite")  # an operator cleaning data/ mid-run
        if instrument.symbol == "BBB":
            _replace_folder_with_a_file(folder)
        bars = pd.DataFrame({"symbol": [instrument.symbol], "date": [pd.Timestamp(start)]})
        return SymbolAnswer(bars)

    symbols = ["AAA", "BBB", "CCC"]
    day = dt.date(2024, 3, 8)
    result = fetch_bars("polygon", [_instrument(s) for s in symbols], day, day, fetch_one, 1)
    assert sorted(result.bars["symbol"]) == ["AAA", "BBB"]  # fetched rows are kept
    assert list(result.failures) == ["CCC"]
    message = str(result.failures["CCC"])
    assert "call budget store" in message and str(folder) in message
    assert "no such table" not in message


def _replace_folder_with_a_file(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.write_text("not a folder")
