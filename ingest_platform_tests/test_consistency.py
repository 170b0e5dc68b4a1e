"""The copies of the data agree across a life cycle of runs: lake, Dagster, warehouse,
metadata.json. Driven through the code location's own jobs, schedules and automation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ingest_platform.cli import main as cli
from ingest_platform_tests.lifecycle import Platform

pytestmark = pytest.mark.slow

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


def test_an_early_evening_run_and_its_checks_agree_on_what_is_expected(
    tmp_path, monkeypatch, capsys
):
    """Launched from the UI at 21:00 UTC in summer (17:00 New York): NYSE has settled, FX and
    futures have not. The run leaves their bars out, and its checks do not call them missing:
    both ask `core.settlement`. `ingest-platform status` says all is well."""
    universe = {**UNIVERSE, "commodities.csv": ["CL=F"]}
    p = Platform(tmp_path, monkeypatch, universe, clock="2024-07-10T21:00:00+00:00")
    try:
        p.reference_data()
        result = p.market("2024-07-08", "2024-07-10")
        assert result.success
        stored = set(p.lake.read("market_bars", ["2024-07-10"])["symbol"])
        assert stored == {"NVDA", "AAPL", "MSFT", "SPY", "^GSPC"}  # not EURUSD, not CL=F
        checks = {
            f"{e.asset_key.to_user_string()}:{e.check_name}": e
            for e in result.get_asset_check_evaluations()
        }
        for key in (
            "yahoo_daily_bars:bar_coverage",
            "market_bars:bar_coverage",
            "market_bars:quality_score",
            "market_bars:partitions_present",
        ):
            assert checks[key].passed, (key, checks[key].description)
        assert cli(["status"]) == 0, capsys.readouterr().out
    finally:
        p.close()


def test_a_provider_stamp_before_the_close_keeps_a_bar_out_whatever_the_clock(
    tmp_path, monkeypatch
):
    """A stale cached answer made at 14:07 reaches a run at 22:00, after every close and settle:
    the providers' own stamps (Alpha Vantage's Last Refreshed, Yahoo's last regular trade before
    the session's end) say the last bar is that session so far. It is not stored as the day's
    bar; the same answer made after the close is."""
    p = Platform(tmp_path, monkeypatch, UNIVERSE, clock="2024-07-11T02:00:00+00:00")
    try:
        p.reference_data()
        assert p.sandbox is not None
        for endpoint in ("yahoo.chart", "alpha_vantage.daily"):
            p.sandbox.faults.add("intraday", endpoint=endpoint, at="14:07:03")
        result = p.market("2024-07-08", "2024-07-10")
        assert result.success
        for dataset in ("yahoo_daily_bars", "alpha_vantage_daily_bars"):
            stored = p.lake.read(dataset)
            assert stored["date"].max() == pd.Timestamp("2024-07-09"), dataset
            meta = {
                m.partition: m.metadata
                for m in (e.materialization for e in result.get_asset_materialization_events())
                if m.asset_key.to_user_string() == dataset
            }
            assert meta["2024-07-10"]["unsettled_rows_dropped"].value > 0, dataset
        p.sandbox.faults.clear()
        assert p.market("2024-07-10", "2024-07-10").success
        assert set(p.lake.read("yahoo_daily_bars", ["2024-07-10"])["symbol"]) == {
            "NVDA",
            "AAPL",
            "MSFT",
            "SPY",
            "EURUSD",
            "^GSPC",
        }
    finally:
        p.close()


def test_a_split_inside_a_gap_before_the_range_is_still_seen(platform):
    """History up to the Friday before NVDA's split; the daily runs of the split's week never
    happened; someone backfills Wednesday and Thursday only. The split (Monday) is outside the
    range, but the stored history must not stay on the old basis beside new-basis days."""
    platform.reference_data()
    assert platform.market("2024-05-20", "2024-06-07").success
    platform.set_clock("2024-06-14T02:00:00+00:00")
    assert platform.market("2024-06-12", "2024-06-13").success
    truth = platform.truth.daily_bars("NVDA", "2024-05-20", "2024-06-13")["close"]
    for dataset in ("yahoo_daily_bars", "market_bars"):
        stored = platform.lake.read(dataset).query("symbol == 'NVDA'").set_index("date")["close"]
        ratio = stored / truth.reindex(stored.index)
        assert ratio.max() / ratio.min() == pytest.approx(1.0, rel=1e-9), (dataset, ratio)
    actions = platform.lake.read("corporate_actions").query("symbol == 'NVDA'")
    pairs = set(zip(actions["action"], actions["date"], strict=True))
    assert ("split", pd.Timestamp("2024-06-10")) in pairs
    platform.publish_tick()
    report = platform.audit()
    assert report.consistent, [d.line() for d in report.disagreements]


@pytest.mark.parametrize("dataset", ["market_bars", "corporate_actions", "yahoo_daily_bars"])
def test_a_torn_partition_is_repaired_by_a_refresh_run(platform, dataset):
    """A file torn by a full disk (found by the life-cycle state machine for market_bars,
    which had no way to repair it): the market job with `refresh: true` rewrites it whole,
    every symbol, and the audit agrees again."""
    platform.reference_data()
    # Past NVDA's split of 2024-06-10: the rebase reads the partitions before it, the torn one
    # among them (the state machine's second finding).
    platform.set_clock("2024-06-13T02:00:00+00:00")
    assert platform.market("2024-06-03", "2024-06-12").success
    platform.publish_tick()
    before = platform.lake.read(dataset, ["2024-06-05"])
    path = Path(str(platform.lake.partition_path(dataset, "2024-06-05")))
    path.write_bytes(path.read_bytes()[:100])
    report = platform.audit()
    assert any(d.partition == "2024-06-05" and d.dataset == dataset for d in report.disagreements)
    assert platform.market("2024-06-05", "2024-06-05", refresh=True).success
    after = platform.lake.read(dataset, ["2024-06-05"])
    assert len(after) == len(before) and set(after.get("symbol", [])) == set(
        before.get("symbol", [])
    )
    platform.publish_tick()
    report = platform.audit()
    assert report.consistent, [d.line() for d in report.disagreements]


def test_an_old_day_fetched_after_a_later_split_learns_its_basis(platform):
    """May bars stored before NVDA's split; after it, an older May day is fetched for the first
    time. Yahoo answers on today's basis and reports only the splits in the range asked for,
    so the request reaches forward to today: the split is recorded, the stored May rows are
    rebased, and the drift check compares one basis (the state machine's third finding: a
    false 900% drift that blocked the run, over a lake that would have held two bases)."""
    platform.set_clock("2024-05-18T02:00:00+00:00")
    platform.reference_data()
    assert platform.market("2024-05-14", "2024-05-17").success
    platform.set_clock("2024-06-11T21:00:00+00:00")
    result = platform.market("2024-05-02", "2024-05-02", refresh=True)
    assert result.success
    truth = platform.truth.daily_bars("NVDA", "2024-05-02", "2024-05-17")["close"]
    for dataset in ("yahoo_daily_bars", "market_bars"):
        stored = platform.lake.read(dataset).query("symbol == 'NVDA'").set_index("date")["close"]
        assert stored.tolist() == pytest.approx(truth.reindex(stored.index).tolist(), rel=1e-9)
    splits = platform.lake.read("corporate_actions").query("action == 'split'")
    assert ("NVDA", pd.Timestamp("2024-06-10")) in set(
        zip(splits["symbol"], splits["date"], strict=True)
    )
    platform.publish_tick()
    report = platform.audit()
    assert report.consistent, [d.line() for d in report.disagreements]
