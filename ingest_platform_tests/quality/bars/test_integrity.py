"""OHLC bounds and duplicate keys on frames that never met the schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest_platform.quality.bars.integrity import (
    duplicate_key_rows,
    duplicate_keys,
    ohlc_bounds,
    ohlc_violation_rows,
)
from ingest_platform.quality.shared.finding import Status


def _bar(helpers, **values):
    bars = helpers.bars("ACME", helpers.sessions("2024-01-02", 3))
    for column, value in values.items():
        bars.loc[1, column] = value
    return bars


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"high": 100.0}, None),  # exactly at max(open, close)
        ({"high": 100.0 * (1 - 1e-10)}, None),  # within the schema's float tolerance
        ({"high": 99.99}, "high below max(open, close)"),  # just below it
        ({"low": 100.0}, None),  # exactly at min(open, close)
        ({"low": 100.01}, "low above min(open, close)"),
        ({"low": 0.0}, "price missing or not positive"),
        ({"close": np.nan}, "price missing or not positive"),
        ({"volume": -1}, "volume missing or negative"),
        ({"volume": np.nan}, "volume missing or negative"),
    ],
)
def test_ohlc_bounds(helpers, values, rule):
    found = ohlc_bounds(_bar(helpers, **values))
    if rule is None:
        assert found.passed and found.offending.empty
        return
    assert found.status is Status.ERROR
    row = found.offending.iloc[0]
    assert (row["symbol"], row["date"], row["rule"]) == ("ACME", pd.Timestamp("2024-01-03"), rule)
    assert f"ACME 2024-01-03 ohlc bounds ({rule}" in found.summary


def test_ohlc_rows_are_ordered_worst_first(helpers):
    bars = _bar(helpers, high=99.0)
    bars.loc[2, "high"] = 90.0
    assert ohlc_violation_rows(bars)["date"].tolist() == [
        pd.Timestamp("2024-01-04"),
        pd.Timestamp("2024-01-03"),
    ]


def test_a_duplicated_row_is_an_error_naming_key_and_copies(helpers):
    bars = helpers.bars("ACME", helpers.sessions("2024-01-02", 3))
    bars["ingested_at"] = pd.Timestamp("2024-01-05", tz="UTC")
    again = bars.iloc[[1]].assign(ingested_at=pd.Timestamp("2024-01-06", tz="UTC"))
    found = duplicate_keys(pd.concat([bars, again]))
    assert found.status is Status.ERROR
    assert found.figures == {
        "rows_checked": 4,
        "duplicated_keys": 1,
        "surplus_rows": 1,
        "conflicting_keys": 0,
    }
    row = found.offending.iloc[0]
    assert (row["symbol"], row["date"], row["value"], row["conflicting"]) == (
        "ACME", pd.Timestamp("2024-01-03"), 2.0, False,
    )  # fmt: skip
    assert found.summary == "1 duplicated key (symbol/date): ACME 2024-01-03 (2 copies, identical)"
    conflicting = pd.concat([bars, again.assign(close=101.0)])
    assert duplicate_key_rows(conflicting)["conflicting"].tolist() == [True]
    assert duplicate_keys(bars).passed


def test_duplicate_keys_take_any_key():
    observations = pd.DataFrame(
        {"variable": ["CPI", "CPI", "GDP"], "date": ["2024-01-01"] * 3, "value": [1.0, 2.0, 3.0]}
    )
    found = duplicate_keys(observations, key=("variable", "date"))
    assert found.offending[["variable", "date"]].values.tolist() == [["CPI", "2024-01-01"]]
    assert "CPI 2024-01-01 (2 copies, conflicting)" in found.summary
