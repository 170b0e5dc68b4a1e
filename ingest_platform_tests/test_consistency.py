"""The copies of the data agree across a life cycle of runs: lake, Dagster, warehouse,
metadata.json. Driven through the code location's own jobs, schedules and automation."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest_platform_tests.lifecycle import Platform

UNIVERSE = {
    "sp500_constituents.csv": ["NVDA", "AAPL", "MSFT"],
    "etfs.csv": ["SPY"],
    "fx_pairs.csv": ["EURUSD"],
    "indices.csv": ["^GSPC"],
}


@pytest.fixture
def platform(tmp_path, monkeypatch):
    p = Platform(tmp_path, monkeypatch, UNIVERSE, clock="2024-06-08T02:00:00+00:00")
    yield p
    p.close()


def test_after_a_split_the_warehouse_equals_the_lake_through_the_publish_automation(platform):
    platform.reference_data()
    assert platform.market("2024-05-01", "2024-06-07").success
    platform.publish_tick()
    assert platform.audit().consistent, platform.audit().disagreements

    # NVDA's 10-for-1 split of Monday 2024-06-10 becomes known to the next daily run.
    platform.set_clock("2024-06-11T02:00:00+00:00")
    assert platform.daily().success
    runs = platform.publish_tick()
    assert all(r.success for r in runs)
    published = {
        (r.dagster_run.tags.get("dagster/asset_partition_range_start"), r.dagster_run.job_name)
        for r in runs
    }
    assert ("2024-05-01", "lifecycle_warehouse_market_bars") in published  # older days too

    truth = platform.truth.daily_bars("NVDA", "2024-05-01", "2024-06-10")["close"]
    lake = platform.lake.read("market_bars").query("symbol == 'NVDA'").set_index("date")["close"]
    table = platform.warehouse_frame("market_bars").query("symbol == 'NVDA'")
    table = table.set_index(pd.to_datetime(table["date"]))["close"].sort_index()
    assert lake.index.tolist() == table.index.tolist() == truth.index.tolist()
    assert table.tolist() == pytest.approx(lake.tolist(), rel=1e-12)  # the warehouse = the lake
    assert table.tolist() == pytest.approx(truth.tolist(), rel=1e-9)  # on the new basis
    report = platform.audit()
    assert report.consistent, [d.line() for d in report.disagreements]
