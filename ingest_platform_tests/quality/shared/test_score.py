"""Quality score = coverage x freshness x anomaly factor, per symbol or variable."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform.quality.bars.anomalies import bar_anomaly_rows
from ingest_platform.quality.bars.coverage import coverage_by_key
from ingest_platform.quality.bars.expected import expected_sessions
from ingest_platform.quality.bars.staleness import bar_staleness_by_symbol
from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.score import quality_score, score_by_key


def _coverage(**ratios):
    return pd.DataFrame({"symbol": list(ratios), "ratio": list(ratios.values())})


@pytest.mark.parametrize(
    ("ratio", "status"),
    [
        (0.86, Status.PASS),  # just above WARN
        (0.85, Status.PASS),  # exactly at WARN
        (0.84, Status.WARN),  # just below WARN
        (0.6, Status.WARN),  # exactly at ERROR
        (0.59, Status.ERROR),  # just below ERROR
    ],
)
def test_score_boundaries(ratio, status):
    found = quality_score(_coverage(AAPL=ratio, MSFT=1.0))
    assert found.status is status
    assert found.figures["score_min"] == ratio
    assert found.figures["score_median"] == pytest.approx((ratio + 1) / 2)
    assert found.figures["below_warn"] == int(ratio < 0.85)
    assert found.figures["below_error"] == int(ratio < 0.6)
    if status is not Status.PASS:
        row = found.offending.iloc[0]
        assert (row["symbol"], row["score"]) == ("AAPL", ratio)
        assert row["threshold"] == (0.6 if status is Status.ERROR else 0.85)
        assert found.summary.startswith(f"score {ratio:.4g} < 0.85 for 1 symbol: AAPL")


def test_the_formula_multiplies_coverage_freshness_and_anomaly_penalties():
    coverage = _coverage(A=1.0, B=0.95, C=1.0, D=1.0, E=1.0, F=None)
    staleness = pd.DataFrame({"symbol": ["C", "D"], "freshness": [0.6, 0.4]})
    anomalies = pd.DataFrame(
        {"symbol": ["B", "B", "E", "A"], "status": ["WARN", "WARN", "ERROR", "PASS"]}
    )
    table = score_by_key(coverage, staleness=staleness, anomalies=anomalies).set_index("symbol")
    assert table.loc["A", "score"] == 1.0
    assert table.loc["B", "score"] == pytest.approx(0.95 * 0.95**2)  # 0.857: still passes
    assert table.loc["C", "score"] == 0.6 and table.loc["C", "status"] == "WARN"
    assert table.loc["D", "status"] == "ERROR"
    assert table.loc["E", ["anomaly_errors", "score", "status"]].tolist() == [1, 0.5, "ERROR"]
    assert table.loc["F", "score"] == 1.0  # nothing expected: nothing missing
    assert table.index[:2].tolist() == ["D", "E"]  # the ERRORs, lowest first


def test_four_warnings_reach_the_warn_band():
    anomalies = pd.DataFrame({"symbol": ["A"] * 4, "status": ["WARN"] * 4})
    found = quality_score(_coverage(A=1.0), anomalies=anomalies)
    assert found.status is Status.WARN and found.figures["score_min"] == pytest.approx(0.95**4)


def test_per_variable_from_the_other_checks_tables(helpers):
    months = pd.date_range("2024-01-01", periods=10, freq="MS")
    expected = pd.DataFrame({"variable": "CPI", "date": months})
    observed = pd.DataFrame({"variable": "CPI", "date": months[:5]})
    table = coverage_by_key(observed, expected, key="variable")
    found = quality_score(table, key="variable")
    assert found.status is Status.ERROR and "CPI 0.5" in found.summary
    assert found.check == "quality_score"


def test_scores_from_real_check_outputs(helpers):
    instruments = pd.DataFrame({"symbol": ["AAPL", "MSFT"], "calendar": ["XNYS", "XNYS"]})
    days = helpers.sessions("2024-07-01", 30)
    bars = pd.concat([helpers.bars("AAPL", days), helpers.bars("MSFT", days[:-3])])
    bars.loc[(bars["symbol"] == "AAPL") & (bars["date"] == pd.Timestamp(days[5])), "high"] = 1.0
    now = pd.Timestamp(days[-1]).tz_localize("UTC") + pd.Timedelta(hours=33)  # settled
    found = quality_score(
        coverage_by_key(bars, expected_sessions(instruments, days[0], days[-1])),
        staleness=bar_staleness_by_symbol(bars, instruments, now),
        anomalies=bar_anomaly_rows(bars),
    )
    table = found.offending.set_index("symbol")
    assert table.loc["AAPL", "score"] == 0.5  # one OHLC violation
    assert table.loc["MSFT", "score"] == pytest.approx(0.9 * 0.4)  # 27/30, 3 sessions behind
    assert found.status is Status.ERROR


@pytest.mark.parametrize(("behind", "status"), [(2, Status.WARN), (3, Status.ERROR)])
def test_staleness_at_its_error_limit_is_a_warn_in_the_score_too(helpers, behind, status):
    instruments = pd.DataFrame({"symbol": ["AAPL"], "calendar": ["XNYS"]})
    days = helpers.sessions("2024-07-01", 30)
    bars = helpers.bars("AAPL", days[: len(days) - behind])
    now = pd.Timestamp(days[-1]).tz_localize("UTC") + pd.Timedelta(hours=33)
    staleness = bar_staleness_by_symbol(bars, instruments, now)
    assert staleness["status"].tolist() == [status.value]
    coverage = pd.DataFrame({"symbol": ["AAPL"], "ratio": [1.0]})
    assert quality_score(coverage, staleness=staleness).status is status
