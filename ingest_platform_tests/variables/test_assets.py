"""`variable_series`: market closes and economic vintages under the registry's names, one
point-in-time table read through `asof`."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from ingest_platform import asof
from ingest_platform.core import settings
from ingest_platform.definitions import build_definitions
from ingest_platform.economic.assets import economic_indicators
from ingest_platform.market.assets import MARKET_ASSETS
from ingest_platform.reference.assets import index_membership, instruments, trading_sessions
from ingest_platform.registry.assets import variable_mappings
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.mark.slow
def test_market_and_economic_variables_in_one_point_in_time_table(tmp_path, monkeypatch):
    with SandboxHTTPServer(MarketSimulator(seed=7, as_of="2025-07-15", large_drifts=())) as sb:
        monkeypatch.setenv(settings.SANDBOX_URL_ENV, sb.url)
        monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
        monkeypatch.setenv(settings.NOW_ENV, "2025-07-15T12:00:00+00:00")
        for key in ("FRED_API_KEY", "ALPHA_VANTAGE_API_KEY", "POLYGON_API_KEY"):
            monkeypatch.setenv(key, "test-key-1234")
        defs = build_definitions()
        instance = DagsterInstance.ephemeral()  # one instance: the job sees upstream history
        res = dict(defs.resources or {})
        res.pop("warehouse", None)
        setup = [instruments, index_membership, trading_sessions, variable_mappings]
        assert materialize(setup, resources=res, run_config=QUIET, instance=instance).success
        symbols = sorted(
            res["lake"].read("variable_mappings").query("source == 'market'")["series_id"]
        )
        config = {"symbols": symbols}
        market = materialize(
            MARKET_ASSETS,
            resources=res,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "2025-06-02",
                "dagster/asset_partition_range_end": "2025-06-30",
            },
            run_config={
                **QUIET,
                "ops": {
                    op: {"config": config}
                    for op in ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars")
                }
                | {"market_bars": {"config": config}},
            },
        )
        assert market.success
        june = {"dagster/asset_partition_range_start": "2025-06-01",
                "dagster/asset_partition_range_end": "2025-06-01"}  # fmt: skip
        assert materialize(
            [economic_indicators], resources=res, tags=june, run_config=QUIET, instance=instance
        ).success
        # through the code location's own job, so the upstream partition mappings are resolved
        # as a scheduled run resolves them (market days in New York, months in UTC)
        job = defs.resolve_job_def("variable_series_job")
        built = job.execute_in_process(
            tags=june, run_config=QUIET, instance=instance, raise_on_error=False
        )
        assert built.success, [e.message for e in built.all_events if e.is_step_failure]

    lake = res["lake"]
    series = lake.read("variable_series", ["2025-06-01"])
    assert {"sp500_index", "sector_technology", "cpi_headline"} <= set(series["variable"])
    sp500 = series[series["variable"] == "sp500_index"]
    assert (sp500["knowledge_basis"] == "market_close").all()
    # A close is known at 20:00 UTC (16:00 New York in June), not before.
    first = sp500.sort_values("date").iloc[0]
    assert first["known_at"] == pd.Timestamp(f"{first['date'].date()} 20:00", tz="UTC")
    before = asof.read("variable_series", first["known_at"] - pd.Timedelta(minutes=1),
                       variables=["sp500_index"])  # fmt: skip
    after = asof.read("variable_series", first["known_at"], variables=["sp500_index"])
    assert first["date"] not in set(before["date"]) and first["date"] in set(after["date"])
    closes = lake.read("market_bars").query("symbol == '^GSPC'").set_index("date")["close"]
    latest = asof.read("variable_series", variables=["sp500_index"]).set_index("date")["value"]
    assert latest.to_dict() == closes.to_dict()
