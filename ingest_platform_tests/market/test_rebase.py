"""A split announced after a backfill: the next daily run puts every stored row of the symbol
on the new basis (Yahoo re-fetched in one request, Polygon divided, market_bars rebuilt)."""

from __future__ import annotations

import pytest
from dagster import EnvVar, materialize

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake
from ingest_platform.market.assets import MARKET_ASSETS
from ingest_platform.market.resources import AlphaVantage, Polygon, YahooFinance
from ingest_platform.reference.assets import index_membership, instruments
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
SYMBOLS = ["NVDA", "AAPL", "MSFT"]


def run(resources, start, end):
    config = {"symbols": SYMBOLS}
    ops = ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars", "market_bars")
    return materialize(
        MARKET_ASSETS,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        run_config={**QUIET, "ops": {op: {"config": config} for op in ops}},
    )


@pytest.fixture
def resources(tmp_path, monkeypatch):
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALPHA_VANTAGE_API_KEY", "rebase-key-1")
    monkeypatch.setenv("POLYGON_API_KEY", "rebase-key-2")
    return {
        "lake": ParquetLake(root=str(tmp_path / "lake")),
        "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
        "yahoo": YahooFinance(backoff_base_seconds=0.01),
        "alpha_vantage": AlphaVantage(api_key=EnvVar("ALPHA_VANTAGE_API_KEY")),
        "polygon": Polygon(api_key=EnvVar("POLYGON_API_KEY")),
    }


@pytest.mark.slow
def test_a_new_split_rebases_every_stored_row_of_the_symbol(resources, monkeypatch):
    lake = resources["lake"]
    # Backfill up to the Friday before NVDA's 10-for-1 split of Monday 2024-06-10.
    with SandboxHTTPServer(MarketSimulator(seed=7, as_of="2024-06-07", large_drifts=())) as sb:
        monkeypatch.setenv(settings.SANDBOX_URL_ENV, sb.url)
        monkeypatch.setenv(settings.NOW_ENV, "2024-06-08T12:00:00+00:00")
        assert materialize(
            [instruments, index_membership], resources=resources, run_config=QUIET
        ).success
        assert run(resources, "2024-05-01", "2024-06-07").success
    before = lake.read("market_bars").query("symbol == 'NVDA'").set_index("date")["close"]

    # The split happens; the next daily run records it.
    truth = MarketSimulator(seed=7, as_of="2024-06-10", large_drifts=())
    with SandboxHTTPServer(truth) as sb:
        monkeypatch.setenv(settings.SANDBOX_URL_ENV, sb.url)
        monkeypatch.setenv(settings.NOW_ENV, "2024-06-11T02:00:00+00:00")
        daily = run(resources, "2024-06-10", "2024-06-10")
        assert daily.success
        yahoo_requests = sb.counters.by_symbol("yahoo.chart")
    assert yahoo_requests["NVDA"] == 2  # the day itself, then its stored range: one request
    assert yahoo_requests["AAPL"] == 1

    expected = truth.daily_bars("NVDA", "2024-05-01", "2024-06-10")["close"]
    assert before.loc["2024-06-07"] == pytest.approx(10 * expected.loc["2024-06-07"])  # old basis
    for dataset in ("yahoo_daily_bars", "market_bars"):
        stored = lake.read(dataset).query("symbol == 'NVDA'").set_index("date")["close"]
        assert stored.index.tolist() == expected.index.tolist(), dataset
        assert stored.tolist() == pytest.approx(expected.tolist(), rel=1e-9), dataset
    polygon = lake.read("polygon_daily_bars").query("symbol == 'NVDA'").set_index("date")["close"]
    assert (polygon / expected.reindex(polygon.index)).between(0.99, 1.01).all()  # new basis
    events = [e.materialization for e in daily.get_asset_materialization_events()]
    meta = next(
        m.metadata
        for m in events
        if m.asset_key.to_user_string() == "yahoo_daily_bars" and m.partition == "2024-06-10"
    )
    assert "| NVDA | 2024-06-10 | 10 |" in meta["rebased"].value
    # Every older partition the split rewrote got a materialization of its own, saying why.
    for dataset in ("yahoo_daily_bars", "polygon_daily_bars", "market_bars"):
        rebased = {
            m.partition: m.metadata
            for m in events
            if m.asset_key.to_user_string() == dataset and m.partition < "2024-06-10"
        }
        holding = lake.read(dataset).query("symbol == 'NVDA' and date < '2024-06-10'")
        expected_keys = sorted({d.strftime("%Y-%m-%d") for d in holding["date"]})
        if dataset == "polygon_daily_bars":  # a rotating sample: only the days it held NVDA
            assert set(rebased) <= set(expected_keys) and rebased, dataset
        else:
            assert sorted(rebased) == expected_keys, (dataset, set(expected_keys) ^ set(rebased))
        assert {m["rewrite_reason"].value for m in rebased.values()} == {
            "rebased_for_split: NVDA 10:1"
        }, dataset
