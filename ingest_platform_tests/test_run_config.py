"""Run config a person types in the launchpad is validated before any source is called."""

from __future__ import annotations

import pytest
from dagster import materialize

from ingest_platform.core import settings
from ingest_platform.definitions import build_definitions
from ingest_platform.economic.assets import economic_indicators
from ingest_platform.market.assets import MARKET_ASSETS, yahoo_daily_bars
from ingest_platform.reference.assets import index_membership, instruments


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    """The code location's environment, pointed at a sandbox nobody runs: a run that got as far
    as calling a source would fail on that, not on its config."""
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
    monkeypatch.setenv(settings.SANDBOX_URL_ENV, "http://127.0.0.1:9")
    for name in ("ALPHA_VANTAGE_API_KEY", "POLYGON_API_KEY", "FRED_API_KEY"):
        monkeypatch.setenv(name, "unused-key")


def _failure_text(result, step: str) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure and e.step_key == step]
    error, message = failure.step_failure_data.error, ""
    while error is not None:  # the cause is the error our code raised
        message, error = message + error.message, error.cause
    return message


@pytest.mark.parametrize("rate", [-0.1, 1.5])
@pytest.mark.parametrize(
    ("assets", "op"),
    [(MARKET_ASSETS, "yahoo_daily_bars"), ([economic_indicators], "economic_indicators")],
)
@pytest.mark.slow
def test_a_max_failure_rate_outside_0_to_1_fails_naming_the_field(offline_env, assets, op, rate):
    """A rate of 1.5 would let every symbol fail and the run still succeed."""
    result = materialize(
        assets,
        resources=build_definitions().resources,
        run_config={"ops": {op: {"config": {"max_failure_rate": rate}}}},
        partition_key="2024-07-08" if op != "economic_indicators" else "2024-07-01",
        raise_on_error=False,
    )
    assert not result.success
    message = _failure_text(result, op)
    assert "max_failure_rate" in message and str(rate) in message


@pytest.mark.slow
def test_ten_thousand_unknown_symbols_fail_the_run_with_a_short_message(offline_env):
    resources = build_definitions().resources
    assert materialize([instruments, index_membership], resources=resources).success
    unknown = [f"ZZ{i:05d}" for i in range(10_000)]
    result = materialize(
        [yahoo_daily_bars],
        resources=resources,
        run_config={"ops": {"yahoo_daily_bars": {"config": {"symbols": ["AAPL", *unknown]}}}},
        partition_key="2024-07-08",
        raise_on_error=False,
    )
    assert not result.success
    message = _failure_text(result, "yahoo_daily_bars")
    assert "10000 symbol(s) not in the instrument universe: ZZ00000, ZZ00001" in message
    assert "(+9995 more, 10000 in all)" in message and len(message) < 600
