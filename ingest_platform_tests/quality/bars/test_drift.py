"""Cross-source drift, on one (split-adjusted) basis, with the offending rows named."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ingest_platform.quality.bars.adjustment import split_factors, to_split_adjusted
from ingest_platform.quality.bars.drift import cross_source_drift, drift_rows
from ingest_platform.quality.shared.finding import Status
from ingest_platform.sandbox.data import MarketSimulator

DAYS = pd.bdate_range("2024-06-03", periods=5)


def _frame(symbol, closes, days=DAYS):
    return pd.DataFrame({"symbol": symbol, "date": days[: len(closes)], "close": closes})


@pytest.mark.parametrize(
    ("secondary", "drift", "status"),
    [
        (100.49, 0.0049, Status.PASS),  # just below WARN
        (100.5, 0.005, Status.PASS),  # exactly at WARN
        (100.51, 0.0051, Status.WARN),  # just above WARN
        (101.0, 0.01, Status.WARN),  # exactly at ERROR
        (99.0, 0.01, Status.WARN),  # exactly at ERROR, below the primary
        (101.01, 0.0101, Status.ERROR),  # just above ERROR
    ],
)
def test_drift_boundaries(secondary, drift, status):
    primary = _frame("AAPL", [100.0] * 5)
    other = _frame("AAPL", [100.0, 100.0, secondary, 100.0])
    found = cross_source_drift(primary, {"polygon": other})
    assert found.status is status
    assert found.figures["max_drift"] == pytest.approx(drift, abs=1e-12)
    assert found.figures["overlap"] == 4 and found.figures["polygon_overlap"] == 4
    if status is Status.PASS:
        assert found.offending.empty and "on all 4 overlapping rows" in found.summary
    else:
        row = found.offending.iloc[0]
        assert (row["symbol"], row["date"], row["source"]) == ("AAPL", DAYS[2], "polygon")
        assert (row["primary_close"], row["secondary_close"]) == (100.0, secondary)
        assert row["threshold"] == (0.01 if status is Status.ERROR else 0.005)
        assert found.summary.startswith(f"drift {drift * 100:.2f}% > 0.50% on 1 row")
        assert f"AAPL {DAYS[2].date()} polygon" in found.summary


SPLIT = pd.DataFrame(
    {"symbol": ["NVDA"], "date": [pd.Timestamp("2024-06-05")], "action": ["split"], "value": [10.0]}
)


def test_as_traded_sources_are_split_adjusted_before_comparing():
    primary = _frame("NVDA", [120.0, 121.0, 122.0, 123.0, 124.0])  # Yahoo: split-adjusted
    raw = _frame("NVDA", [1200.0, 1210.0, 122.0, 123.0, 124.0])  # Alpha Vantage: as traded
    adjusted = cross_source_drift(
        primary, {"alpha_vantage": raw}, corporate_actions=SPLIT, as_traded={"alpha_vantage"}
    )
    assert adjusted.passed and adjusted.figures["max_drift"] == 0.0
    unadjusted = cross_source_drift(primary, {"alpha_vantage": raw})
    assert unadjusted.status is Status.ERROR
    assert unadjusted.figures["rows_above_error"] == 2
    with pytest.raises(ValueError, match="need the corporate actions"):
        cross_source_drift(primary, {"alpha_vantage": raw}, as_traded={"alpha_vantage"})
    with pytest.raises(ValueError, match=r"as_traded names sources not given: \['polygon'\]"):
        cross_source_drift(primary, {"alpha_vantage": raw}, as_traded={"polygon"})


def test_split_adjustment_divides_bars_before_each_ex_date():
    raw = _frame("NVDA", [1200.0, 1210.0, 122.0]).assign(volume=[10, 20, 300])
    two_splits = pd.concat(
        [SPLIT, SPLIT.assign(date=pd.Timestamp("2024-06-04"), value=2.0)], ignore_index=True
    )
    assert split_factors(
        raw["symbol"], raw["date"].to_numpy().astype("M8[D]").astype("int64"), two_splits
    ).tolist() == [20.0, 10.0, 1.0]
    adjusted = to_split_adjusted(raw, SPLIT, prices=("close",))
    assert adjusted["close"].tolist() == [120.0, 121.0, 122.0]
    assert adjusted["volume"].tolist() == [100, 200, 300]


def test_only_overlapping_rows_compare_and_a_duplicate_primary_row_counts_once():
    primary = pd.concat([_frame("AAPL", [100.0] * 3), _frame("AAPL", [50.0])], ignore_index=True)
    other = pd.concat(
        [_frame("AAPL", [100.0] * 5), _frame("ZZZZ", [1.0]), _frame("MSFT", [1.0])],
        ignore_index=True,
    )
    rows = drift_rows(primary, {"polygon": other})
    assert len(rows) == 3 and rows["drift"].max() == 0.0
    assert rows.columns.tolist() == [
        "symbol", "date", "source", "primary_close", "secondary_close", "drift",
    ]  # fmt: skip


def test_the_sandbox_drifts_are_found_and_nothing_else(simulator, helpers):
    """The simulator's injected drifts (5% and 3%) are ERRORs naming symbol, date and source;
    NVDA's 10-for-1 split in Alpha Vantage's as-traded rows is not a drift."""
    symbols = ["AAPL", "MSFT", "NVDA", "EURUSD", "WMT"]
    yahoo = helpers.sim_bars(simulator, symbols, start="2024-01-02", end="2024-12-31")
    av = helpers.sim_bars(
        simulator, ["AAPL", "NVDA", "WMT"], "alpha_vantage", "2024-01-02", "2024-12-31"
    )
    polygon = helpers.sim_bars(
        simulator, ["MSFT", "EURUSD", "NVDA"], "polygon", "2024-01-02", "2024-12-31"
    )
    found = cross_source_drift(
        yahoo,
        {"alpha_vantage": av, "polygon": polygon},
        corporate_actions=helpers.sim_actions(simulator, symbols),
        as_traded={"alpha_vantage"},
    )
    assert found.status is Status.ERROR
    named = found.offending[["symbol", "date", "source"]].astype(str).agg(" ".join, axis=1)
    assert sorted(named) == [
        "AAPL 2024-03-15 alpha_vantage",
        "EURUSD 2024-09-16 polygon",
        "MSFT 2024-06-03 polygon",
    ]
    assert found.figures["rows_above_error"] == 3
    assert found.figures["median_drift"] < 0.0002  # the 2 bp everyday noise
    assert "MSFT 2024-06-03 polygon 5.0" in found.summary
    assert "AAPL 2024-03-15 alpha_vantage 5.00%" in found.summary


@pytest.mark.parametrize(("relative", "status"), [(0.012, Status.ERROR), (0.007, Status.WARN)])
def test_an_injected_drift_is_graded(helpers, relative, status):
    sim = MarketSimulator(
        seed=7, as_of="2026-11-20", large_drifts=[("polygon", "JPM", dt.date(2024, 5, 1), relative)]
    )
    yahoo = helpers.sim_bars(sim, ["JPM"], start="2024-04-01", end="2024-05-31")
    polygon = helpers.sim_bars(sim, ["JPM"], "polygon", "2024-04-01", "2024-05-31")
    found = cross_source_drift(yahoo, {"polygon": polygon})
    assert found.status is status
    assert found.offending["date"].tolist() == [pd.Timestamp("2024-05-01")]
    assert found.summary.startswith(f"drift {relative * 100:.1f}")
    assert "JPM 2024-05-01 polygon" in found.summary
