"""Finding: the contract every check returns, and how findings combine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    Status,
    combine,
    status_where,
    worst,
)


def finding(check="c", status=Status.PASS, figures=None, offending=None, summary="ok"):
    return Finding(
        check,
        status,
        figures or {},
        offending if offending is not None else pd.DataFrame(),
        summary,
    )


def test_statuses_order_by_severity_and_the_worst_wins():
    assert Status.PASS < Status.WARN < Status.ERROR
    assert max([Status.WARN, Status.PASS, Status.ERROR]) is Status.ERROR
    assert worst([]) is Status.PASS
    assert sorted([Status.ERROR, Status.PASS, Status.WARN]) == [
        Status.PASS,
        Status.WARN,
        Status.ERROR,
    ]


def test_only_pass_passes_and_severity_ranks():
    assert finding(status=Status.PASS).passed
    assert not finding(status=Status.WARN).passed
    assert not finding(status=Status.ERROR).passed
    assert [finding(status=s).severity for s in Status] == [0, 1, 2]


def test_figures_become_plain_python_numbers():
    f = finding(figures={"count": np.int64(3), "ratio": np.float32(0.5), "flag": np.bool_(True)})
    assert f.figures == {"count": 3, "ratio": 0.5, "flag": 1}
    assert type(f.figures["count"]) is int and type(f.figures["ratio"]) is float


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", None])
def test_figures_must_be_finite_numbers(bad):
    with pytest.raises((ValueError, TypeError), match="figure 'x'"):
        finding(figures={"x": bad})


def test_summary_is_one_line_and_check_is_named():
    with pytest.raises(ValueError, match="one line"):
        finding(summary="a\nb")
    with pytest.raises(ValueError, match="check name"):
        finding(check="")
    with pytest.raises(TypeError, match="status"):
        Finding("c", "PASS", {}, pd.DataFrame(), "x")  # type: ignore[arg-type]


def test_a_value_exactly_at_a_threshold_passes_it():
    above = status_where(np.array([0.5, 0.50001, 1.0, 1.00001]), 0.5, 1.0)
    assert above.tolist() == ["PASS", "WARN", "WARN", "ERROR"]
    below = status_where(np.array([0.9, 0.89999, 0.75, 0.74999]), 0.9, 0.75, below=True)
    assert below.tolist() == ["PASS", "WARN", "WARN", "ERROR"]


def test_combine_keeps_the_worst_status_prefixed_figures_and_worst_rows_first():
    warn = finding(
        "drift", Status.WARN, {"max": 0.006},
        pd.DataFrame({"symbol": ["AAPL"], "status": ["WARN"]}), "AAPL drifts",
    )  # fmt: skip
    error = finding(
        "stale", Status.ERROR, {"max": 4},
        pd.DataFrame({"symbol": ["MSFT"], "status": ["ERROR"]}), "MSFT is stale",
    )  # fmt: skip
    ok = finding("coverage", Status.PASS, {"min": 1.0})
    combined = combine([warn, ok, error], "market_bars")
    assert combined.status is Status.ERROR
    assert combined.figures == {"drift.max": 0.006, "coverage.min": 1.0, "stale.max": 4}
    assert combined.offending["check"].tolist() == ["stale", "drift"]
    assert combined.offending["symbol"].tolist() == ["MSFT", "AAPL"]
    assert combined.summary == "stale: MSFT is stale | drift: AAPL drifts"


def test_combine_of_passing_findings_names_them_and_caps_rows():
    rows = pd.DataFrame({"status": ["WARN"] * (MAX_OFFENDING_ROWS + 5)})
    many = combine([finding("a", Status.WARN, offending=rows, summary="x")], "all")
    assert len(many.offending) == MAX_OFFENDING_ROWS
    passing = combine([finding("a"), finding("b")], "all")
    assert passing.passed and passing.summary == "all 2 checks passed: a, b"
    assert combine([], "none").passed
