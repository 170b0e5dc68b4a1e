"""Run config a person types in the launchpad is validated before any source is called."""

from __future__ import annotations

import pytest
from dagster import materialize

from ingest_platform.core import settings
from ingest_platform.definitions import build_definitions
from ingest_platform.economic.assets import economic_indicators
from ingest_platform.market.assets import MARKET_ASSETS


@pytest.mark.parametrize("rate", [-0.1, 1.5])
@pytest.mark.parametrize(
    ("assets", "op"),
    [(MARKET_ASSETS, "yahoo_daily_bars"), ([economic_indicators], "economic_indicators")],
)
def test_a_max_failure_rate_outside_0_to_1_fails_naming_the_field(
    tmp_path, monkeypatch, assets, op, rate
):
    """A rate of 1.5 would let every symbol fail and the run still succeed."""
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(settings.SANDBOX_URL_ENV, "http://127.0.0.1:9")  # nobody listens
    monkeypatch.setenv("ALPHA_VANTAGE_API_KEY", "unused-key")
    monkeypatch.setenv("POLYGON_API_KEY", "unused-key")
    monkeypatch.setenv("FRED_API_KEY", "unused-key")
    result = materialize(
        assets,
        resources=build_definitions().resources,
        run_config={"ops": {op: {"config": {"max_failure_rate": rate}}}},
        partition_key="2024-07-08" if op != "economic_indicators" else "2024-07-01",
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure and e.step_key == op]
    error, message = failure.step_failure_data.error, ""
    while error is not None:  # the pydantic error is the cause of Dagster's step error
        message, error = message + error.message, error.cause
    assert "max_failure_rate" in message and str(rate) in message
