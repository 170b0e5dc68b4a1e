"""The `index_membership` asset and its checks in a Dagster run, and `asof.universe` over it."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetSelection, materialize

from ingest_platform import asof
from ingest_platform.core import settings
from ingest_platform.reference.assets import index_membership, instruments
from ingest_platform.reference.checks import membership_quality
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.schema import INDEX_MEMBERSHIP
from ingest_platform.reference.universe import select


def _run(lake, *assets):
    return materialize(
        [*assets, membership_quality],
        resources={
            "lake": lake,
            "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
        },
    )


def _checks(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_the_asset_writes_the_intervals_and_its_checks_pass(lake):
    result = _run(lake, instruments, index_membership)
    assert result.success
    checks = _checks(result)
    assert set(checks) == {
        "member_counts",
        "one_instrument_per_ticker",
        "members_match_instruments",
    }
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items()}
    assert checks["member_counts"].metadata["min_members"].value == 503

    intervals = INDEX_MEMBERSHIP.read(lake)
    meta = intervals[intervals["instrument_id"] == "FB@2018-01-01"].sort_values("added")
    assert meta["symbol"].tolist() == ["FB", "META"]
    assert meta["removed_via"].tolist() == ["rename", None]
    events = result.get_asset_materialization_events()
    written = {e.asset_key.path[-1]: e.materialization.metadata for e in events}
    assert written["index_membership"]["members_today"].value == 503

    listed = lake.read("instruments").set_index("symbol")
    assert not listed.loc["SIVB", "active"] and listed.loc["SIVB", "calendar"] == "XNYS"
    assert listed.loc["META", "instrument_id"] == "FB@2018-01-01"
    # The market universe is today's: former members are listed but not selected.
    chosen = select(lake.read("instruments"), ("equity",))
    assert len(chosen) == 503 and "SIVB" not in set(chosen["symbol"])


def test_a_damaged_dataset_fails_its_checks(lake):
    assert _run(lake, instruments, index_membership).success
    intervals = INDEX_MEMBERSHIP.read(lake)
    # A second instrument holding META's ticker over the same days, and a member gone today.
    clash = intervals[intervals["symbol"] == "META"].assign(instrument_id="META@2022-06-09")
    damaged = pd.concat([intervals[intervals["symbol"] != "AAPL"], clash], ignore_index=True)
    INDEX_MEMBERSHIP.write_all(lake, damaged)

    result = materialize(  # the checks alone, against what is in the lake
        [instruments, index_membership, membership_quality],
        resources={"lake": lake, "reference_files": ReferenceFiles(directory="unused")},
        selection=AssetSelection.checks_for_assets(index_membership),
        raise_on_error=False,  # blocking checks fail the run: that is the point here
    )
    checks = _checks(result)
    assert not checks["one_instrument_per_ticker"].passed
    assert (
        "META (META@2022-06-09, from 2022-06-09)" in checks["one_instrument_per_ticker"].description
    )
    assert not checks["members_match_instruments"].passed
    assert "only in instruments AAPL" in checks["members_match_instruments"].description


def test_asof_universe_gives_the_members_and_tickers_in_force(lake):
    assert _run(lake, instruments, index_membership).success
    before = asof.universe("sp500", "2022-06-08", lake=lake).set_index("symbol")
    after = asof.universe("sp500", "2022-06-09", lake=lake).set_index("symbol")
    assert "FB" in before.index and "META" not in before.index
    assert after.loc["META", "instrument_id"] == before.loc["FB", "instrument_id"]
    assert after.loc["META", "added"] == pd.Timestamp("2022-06-09")
    # Survivors and look-ahead: SIVB there before its failure, PODD only from its day.
    march_14 = set(asof.universe("sp500", "2023-03-14", lake=lake)["symbol"])
    march_15 = set(
        asof.universe(as_of=pd.Timestamp("2023-03-15 15:00", tz="UTC"), lake=lake)["symbol"]
    )
    assert "SIVB" in march_14 and "SIVB" not in march_15
    assert "PODD" in march_15 and "PODD" not in march_14
    assert len(asof.universe(lake=lake)) == 503  # today


def test_asof_universe_refuses_what_it_cannot_know(lake, tmp_path):
    with pytest.raises(Exception, match="materialize the `index_membership` asset first"):
        asof.universe("sp500", "2024-01-02", lake=lake)
    assert _run(lake, instruments, index_membership).success
    with pytest.raises(ValueError, match="sp500 membership is known from 2018-01-01 on"):
        asof.universe("sp500", "2017-06-30", lake=lake)
    with pytest.raises(ValueError, match="unknown index 'nasdaq100'"):
        asof.universe("nasdaq100", "2024-01-02", lake=lake)


def test_member_counts_fails_on_a_day_outside_the_band():
    from ingest_platform.reference import membership, membership_checks

    intervals = membership.load_history(settings.reference_dir()).intervals
    # Twenty members "removed" on one day without replacements: 483 members from 2024-06-03.
    gone = intervals[intervals["removed"].isna()].head(20).index
    damaged = intervals.copy()
    damaged.loc[gone, "removed"] = pd.Timestamp("2024-06-03")
    finding = membership_checks.member_counts(damaged)
    assert not finding.passed and finding.status.value == "ERROR"
    assert finding.figures["min_members"] == 483
    assert "member count outside 495..510 on 2024-06-03 (483)" in finding.summary
    assert membership_checks.member_counts(intervals).passed
