"""False ticks and unadjusted splits, against the recorded corporate actions.

The z-score boundaries are tested a hundredth of a sigma either side: a log return is never an
exact binary number, so "exactly 8 sigma" cannot be built from prices. The split-ratio
boundary is built exactly (a jump of 2.125 against a tolerance of 1/16).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest_platform.quality.bars.ticks import (
    MAD_TO_SIGMA,
    false_tick_rows,
    false_ticks,
    unadjusted_split_rows,
    unadjusted_splits,
)
from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.thresholds import SplitThresholds

STEP = 0.01  # every ordinary return is +-1%: median 0, MAD 0.01
SIGMA = MAD_TO_SIGMA * STEP
AT = 101  # the return replaced by the move under test (an up step, so median and MAD hold)


def _returns(move: float, after: float | None = None) -> list[float]:
    returns = [-STEP if i % 2 == 0 else STEP for i in range(200)] + [0.0]
    returns[AT] = move
    if after is not None:
        returns[AT + 1] = after
    return returns


def _bars(helpers, returns, symbol="ACME"):
    closes = 100 * np.exp(np.cumsum([0.0, *returns]))
    days = helpers.sessions("2023-01-03", len(closes))
    return helpers.bars(symbol, days, closes), days


def _action(symbol, day, action, value):
    return pd.DataFrame(
        {"symbol": [symbol], "date": [pd.Timestamp(day)], "action": [action], "value": [value]}
    )


@pytest.mark.parametrize(
    ("sigmas", "status"),
    [
        (7.99, Status.PASS),  # just below WARN
        (8.01, Status.WARN),  # just above WARN
        (24.99, Status.WARN),  # just below ERROR
        (25.01, Status.ERROR),  # just above ERROR
    ],
)
def test_false_tick_boundaries(helpers, sigmas, status):
    bars, days = _bars(helpers, _returns(sigmas * SIGMA))
    found = false_ticks(bars)
    assert found.status is status
    assert found.figures["flagged"] == int(status is not Status.PASS)
    if status is not Status.PASS:
        row = found.offending.iloc[0]
        assert (row["symbol"], row["date"]) == ("ACME", pd.Timestamp(days[AT + 1]))
        assert row["value"] == pytest.approx(sigmas, abs=1e-6)
        assert row["threshold"] == (25.0 if status is Status.ERROR else 8.0)
        assert f"ACME {days[AT + 1].isoformat()} false tick" in found.summary


def test_a_spike_that_reverts_is_an_error_on_its_own_bar_only(helpers):
    bars, days = _bars(helpers, _returns(10 * SIGMA, after=-10 * SIGMA))
    rows = false_tick_rows(bars)
    assert rows["date"].tolist() == [pd.Timestamp(days[AT + 1])]
    assert rows["status"].tolist() == ["ERROR"] and bool(rows["spike"].iloc[0])
    assert "reverts the next session" in false_ticks(bars).summary


def test_a_recorded_dividend_explains_its_ex_date_drop(helpers):
    # A special dividend of a fifth of the price: a -22% day, 15 sigma for this stock.
    bars, days = _bars(helpers, _returns(np.log(0.8)))
    ex_date = days[AT + 1]
    previous = bars["close"].iloc[AT]
    assert false_ticks(bars).status is Status.WARN
    dividend = _action("ACME", ex_date, "dividend", 0.2 * previous)
    assert false_ticks(bars, dividend).passed
    elsewhere = _action("ACME", days[AT + 5], "dividend", 0.2 * previous)
    assert false_ticks(bars, elsewhere).status is Status.WARN


def test_a_recorded_split_explains_the_jump_on_either_basis(helpers):
    raw, days = _bars(helpers, _returns(np.log(0.1)))  # as traded: a 10-for-1 split
    split = _action("ACME", days[AT + 1], "split", 10.0)
    assert false_ticks(raw, split).passed
    assert unadjusted_splits(raw, split).passed
    adjusted, _ = _bars(helpers, _returns(STEP))  # already adjusted: no jump at all
    assert false_ticks(adjusted, split).passed and unadjusted_splits(adjusted, split).passed


def test_an_unadjusted_split_is_an_error_naming_symbol_date_and_ratio(helpers):
    raw, days = _bars(helpers, _returns(np.log(0.1)))
    found = unadjusted_splits(raw)
    assert found.status is Status.ERROR
    row = found.offending.iloc[0]
    assert (row["symbol"], row["date"], row["split_ratio"]) == (
        "ACME",
        pd.Timestamp(days[AT + 1]),
        10.0,
    )
    assert row["value"] == pytest.approx(10.0)
    assert f"ACME {days[AT + 1].isoformat()} unadjusted split" in found.summary
    assert "matches a 10-for-1 split, none recorded" in found.summary
    reverse, _ = _bars(helpers, _returns(np.log(10.0)))  # a 1-for-10 reverse split
    assert unadjusted_split_rows(reverse)["split_ratio"].tolist() == [0.1]


def _jump_bars(helpers, previous, close):
    """Flat at `previous`, then `close` from the jump on (it lasts)."""
    closes = [previous] * 30 + [close] * 30
    days = helpers.sessions("2024-01-02", len(closes))
    return helpers.bars("ACME", days, closes), days[30]


@pytest.mark.parametrize(
    ("previous", "tolerance", "flagged"),
    [
        (212.5, 1 / 16, True),  # 2.125 = 2 (1 + 1/16): exactly at the tolerance
        (213.0, 1 / 16, False),  # just outside it
        (209.0, 0.05, True),  # default tolerance: just inside (4.5%)
        (211.0, 0.05, False),  # default tolerance: just outside (5.5%)
    ],
)
def test_split_ratio_tolerance_boundaries(helpers, previous, tolerance, flagged):
    bars, day = _jump_bars(helpers, previous, 100.0)
    rows = unadjusted_split_rows(bars, thresholds=SplitThresholds(tolerance=tolerance))
    assert rows["date"].tolist() == ([pd.Timestamp(day)] if flagged else [])
    if flagged:
        assert rows["split_ratio"].tolist() == [2.0]
        assert rows["threshold"].tolist() == [tolerance]


def test_a_jump_that_reverts_is_not_a_split(helpers):
    bars, _ = _bars(helpers, _returns(np.log(0.5), after=np.log(2.0)))
    assert unadjusted_split_rows(bars).empty
    assert false_tick_rows(bars)["spike"].tolist() == [True]


def test_a_recorded_split_of_the_wrong_ratio_is_a_false_tick_not_an_unadjusted_split(helpers):
    raw, days = _bars(helpers, _returns(np.log(0.1)))  # traded 10-for-1 ...
    wrong = _action("ACME", days[AT + 1], "split", 2.0)  # ... recorded as 2-for-1
    assert unadjusted_split_rows(raw, wrong).empty  # a split is recorded on that date
    rows = false_tick_rows(raw, wrong)  # but it does not explain a 5x residual jump
    assert rows["date"].tolist() == [pd.Timestamp(days[AT + 1])]
    assert rows["status"].tolist() == ["ERROR"]


def test_a_short_history_is_not_judged_by_its_own_tiny_spread():
    """A week of bars has almost no spread: its ordinary moves must not read as false ticks,
    while the same move in a long, calm history does."""
    from ingest_platform.quality.bars.ticks import false_ticks
    from ingest_platform.quality.shared.thresholds import FalseTickThresholds

    days = pd.bdate_range("2024-01-01", periods=60)
    steps = [0.0005 if i % 2 else -0.0005 for i in range(59)]
    steps[-1] = 0.03  # a 3% move after sixty quiet sessions
    closes = [100.0]
    for step in steps:
        closes.append(closes[-1] * float(np.exp(step)))
    bars = pd.DataFrame(
        {
            "symbol": "QUIET",
            "date": days,
            "open": closes,
            "high": [c * 1.001 for c in closes],
            "low": [c * 0.999 for c in closes],
            "close": closes,
            "volume": 1000,
        }
    )
    assert not false_ticks(bars).passed
    week = bars.tail(5).reset_index(drop=True)
    assert false_ticks(week).passed
    assert not false_ticks(week, thresholds=FalseTickThresholds(min_returns=2)).passed
