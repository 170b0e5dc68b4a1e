"""All bar anomalies over the sandbox's real-looking series, and against a Qlib-style rule.

The simulator carries real splits (NVDA 10-for-1 on 2024-06-10, WMT 3-for-1 on 2024-02-26,
AVGO, SMCI, CMG ...) and quarterly dividends; Yahoo's view is split-adjusted, Alpha Vantage's
as traded. Recorded actions must explain every one of them, on either basis.
"""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform.quality.bars.anomalies import KINDS, bar_anomalies, bar_anomaly_rows
from ingest_platform.quality.shared.finding import Status

SPLITTERS = ["NVDA", "WMT", "AVGO", "SMCI", "CMG"]
PAYERS = ["AAPL", "MSFT", "KO", "XOM", "JPM", "SPY"]
FX = ["EURUSD", "USDJPY"]


@pytest.fixture(scope="module")
def yahoo(simulator, helpers):
    return helpers.sim_bars(simulator, SPLITTERS + PAYERS + FX)


@pytest.fixture(scope="module")
def as_traded(simulator, helpers):
    return helpers.sim_bars(simulator, SPLITTERS + PAYERS, provider="alpha_vantage")


@pytest.fixture(scope="module")
def actions(simulator, helpers):
    return helpers.sim_actions(simulator, SPLITTERS + PAYERS + FX)


def qlib_style_alarms(bars: pd.DataFrame) -> pd.DataFrame:
    """The naive health check Qlib's scripts/check_data_health.py runs, per instrument:
    nulls in OHLCV, and any step |pct_change| above 0.5 in a price or above 3 in volume."""
    alarms = []
    for symbol, frame in bars.sort_values(["symbol", "date"]).groupby("symbol"):
        frame = frame.set_index("date")
        for column in ("open", "high", "low", "close", "volume"):
            if frame[column].isna().any():
                alarms.append((symbol, frame.index[frame[column].isna()][0], column))
            step = frame[column].pct_change(fill_method=None).abs()
            limit = 3.0 if column == "volume" else 0.5
            for day in step.index[step > limit]:
                alarms.append((symbol, day, column))
    return pd.DataFrame(alarms, columns=["symbol", "date", "column"])


def test_real_splits_and_dividends_raise_no_anomaly_on_either_basis(yahoo, as_traded, actions):
    adjusted = bar_anomalies(yahoo, actions)
    assert adjusted.passed, adjusted.summary
    assert adjusted.figures["rows_checked"] == len(yahoo)
    assert adjusted.summary.startswith(f"no anomalies in {len(yahoo):,} bars of 13 symbols")
    traded = bar_anomalies(as_traded, actions)
    assert traded.passed, traded.summary
    ex_dates = actions.loc[actions["action"] == "dividend", "date"]
    assert ex_dates.between("2023-01-02", "2025-12-31").sum() > 50  # there were dividends
    assert (actions["date"] == "2024-06-10").any()  # and NVDA's split


def test_ours_raises_no_alarm_where_the_qlib_style_rule_does(yahoo, as_traded, actions):
    frames = pd.concat([yahoo, as_traded.assign(symbol=as_traded["symbol"] + ".AV")])
    relabelled = pd.concat([actions, actions.assign(symbol=actions["symbol"] + ".AV")])
    naive = qlib_style_alarms(frames)
    ours = bar_anomaly_rows(frames, relabelled)
    split_days = {("NVDA.AV", "2024-06-10"), ("WMT.AV", "2024-02-26"), ("CMG.AV", "2024-06-26")}
    naive_days = set(zip(naive["symbol"], naive["date"].dt.strftime("%Y-%m-%d"), strict=True))
    assert split_days <= naive_days  # the naive rule calls every real split an alarm ...
    assert len(naive) > 100  # ... and day-over-day volume noise a few hundred more
    assert ours.empty  # the recorded actions explain them all; nothing else is wrong


def test_an_unadjusted_split_is_flagged_when_no_split_is_recorded(as_traded, actions):
    no_nvda_split = actions[~((actions["symbol"] == "NVDA") & (actions["action"] == "split"))]
    found = bar_anomalies(as_traded, no_nvda_split)
    assert found.status is Status.ERROR
    first = found.offending.iloc[0]
    assert (first["symbol"], first["date"], first["kind"]) == (
        "NVDA",
        pd.Timestamp("2024-06-10"),
        "unadjusted_split",
    )
    assert first["split_ratio"] == 10.0
    assert found.summary.startswith("1 anomaly in 1 symbol: NVDA 2024-06-10 unadjusted split")
    assert found.figures["unadjusted_split"] == 1 and found.figures["false_tick"] == 0


def test_an_instrument_that_cannot_split_has_its_jumps_read_as_moves(yahoo, actions):
    # An index or an FX pair has no shares: a jump at a split ratio is a market move (the
    # sandbox's ^VIX fell 31% against its last bar in a lake with a three-week gap).
    jumped = yahoo.copy()
    eur = jumped["symbol"] == "EURUSD"
    later = eur & (jumped["date"] >= "2024-05-01")
    jumped.loc[later, ["open", "high", "low", "close"]] /= 1.5
    flagged = bar_anomaly_rows(jumped, actions)
    assert ("EURUSD", "unadjusted_split") in set(
        zip(flagged["symbol"], flagged["kind"], strict=True)
    )
    kept = bar_anomaly_rows(jumped, actions, never_split=["EURUSD", "USDJPY"])
    assert "unadjusted_split" not in set(kept.loc[kept["symbol"] == "EURUSD", "kind"])
    # an equity still is judged
    ko = bar_anomaly_rows(
        jumped.assign(
            close=jumped["close"].where(
                ~(jumped["symbol"] == "KO") | (jumped["date"] < "2024-05-01"), jumped["close"] / 2
            )
        ),
        actions,
        never_split=["EURUSD"],
    )
    assert ("KO", "unadjusted_split") in set(zip(ko["symbol"], ko["kind"], strict=True))


def test_a_duplicated_row_and_a_stuck_price_are_flagged(yahoo, actions):
    broken = yahoo.copy()
    msft = broken.index[broken["symbol"] == "MSFT"]
    stuck = msft[100:106]  # six sessions frozen at one flat price, nothing traded
    broken.loc[stuck, ["open", "high", "low", "close"]] = broken.loc[stuck[0], "close"]
    broken.loc[stuck, "volume"] = 0
    duplicated = broken[(broken["symbol"] == "KO") & (broken["date"] == "2024-03-14")]
    found = bar_anomalies(pd.concat([broken, duplicated], ignore_index=True), actions)
    assert found.status is Status.ERROR
    kinds = found.offending.set_index("kind")
    assert (kinds.loc["duplicate_key", "symbol"], kinds.loc["duplicate_key", "date"]) == (
        "KO", pd.Timestamp("2024-03-14"),
    )  # fmt: skip
    assert kinds.loc["stuck_price", "symbol"] == "MSFT"
    assert kinds.loc["stuck_price", "date"] == yahoo.loc[stuck[0], "date"]
    assert kinds.loc["stuck_price", "value"] == 6
    assert found.figures["duplicate_key"] == 1 and found.figures["stuck_price"] == 1
    assert "KO 2024-03-14 duplicate key (2 copies, identical)" in found.summary
    assert set(KINDS) <= set(found.figures)


def test_a_false_tick_in_real_data_is_an_error_naming_symbol_and_date(yahoo, actions):
    ticked = yahoo.copy()
    row = ticked.index[(ticked["symbol"] == "KO") & (ticked["date"] == "2025-05-06")][0]
    ticked.loc[row, ["close", "high"]] = ticked.loc[row, "close"] * 100  # a 100x unit error
    found = bar_anomalies(ticked, actions)
    assert found.status is Status.ERROR
    assert found.offending.iloc[0][["symbol", "date", "kind"]].tolist() == [
        "KO", pd.Timestamp("2025-05-06"), "false_tick",
    ]  # fmt: skip
