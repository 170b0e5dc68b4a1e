"""`variables.rules.from_market`: a market variable follows its instrument, not its ticker."""

from __future__ import annotations

import pandas as pd

from ingest_platform.variables import rules

T = pd.Timestamp


def test_a_variable_follows_its_instrument_across_a_ticker_change_and_not_a_reused_ticker():
    bars = pd.DataFrame(
        {
            "symbol": ["FB", "META", "FB"],
            "instrument_id": ["FB@2018-01-01", "FB@2018-01-01", "FB@2030-01-02"],
            "date": [T("2022-06-08"), T("2022-06-09"), T("2030-01-02")],
            "close": [190.0, 196.0, 10.0],
            "calendar": "XNYS",
        }
    )
    sessions = pd.DataFrame(
        {
            "calendar": "XNYS",
            "date": [T("2022-06-08"), T("2022-06-09"), T("2030-01-02")],
            "close_utc": [
                T("2022-06-08 20:00", tz="UTC"),
                T("2022-06-09 20:00", tz="UTC"),
                T("2030-01-02 21:00", tz="UTC"),
            ],
        }
    )
    rows = rules.from_market(bars, {"FB@2018-01-01": "meta_close"}, sessions, key="instrument_id")
    assert rows["variable"].tolist() == ["meta_close", "meta_close"]
    assert rows["series_id"].tolist() == ["FB", "META"]  # the ticker in force each day
    assert rows["value"].tolist() == [190.0, 196.0]  # the later FB is another company
    # By ticker, the old way, the rename cuts the series and the reused ticker joins it.
    by_symbol = rules.from_market(bars, {"META": "meta_close"}, sessions)
    assert by_symbol["date"].tolist() == [T("2022-06-09")]
