"""`ingest-platform audit` through the CLI, on a deployment built by the platform's own runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest_platform.cli import main as cli
from ingest_platform.core import fingerprint
from ingest_platform_tests.lifecycle import CHECKOUT, Platform
from ingest_platform_tests.postgres import PG_HOST, PG_PORT, PG_USER, throwaway_database

pytestmark = pytest.mark.slow

UNIVERSE = {
    "sp500_constituents.csv": ["NVDA", "AAPL", "MSFT"],
    "etfs.csv": ["SPY"],
    "fx_pairs.csv": ["EURUSD"],
    "indices.csv": ["^GSPC"],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A deployment after a backfill and the publish automation: every copy in line. Module
    scoped (the build takes a minute); each test restores what it breaks."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("audit")
    platform = Platform(root, mp, UNIVERSE, clock="2024-07-13T02:00:00+00:00")
    platform.reference_data()
    assert platform.market("2024-07-01", "2024-07-12").success
    platform.publish_tick()
    yield platform
    platform.close()
    mp.undo()


def audit(capsys, *args: str) -> tuple[int, str]:
    code = cli(["audit", *args])
    return code, capsys.readouterr().out


def test_a_clean_deployment_audits_clean_and_says_what_it_compared(built, capsys):
    code, out = audit(capsys)
    assert code == 0, out
    assert "audit: consistent" in out
    line = next(x for x in out.splitlines() if x.startswith("market_bars "))
    assert line.split()[1:3] == ["10", str(10 * 6 - 5)]  # 6 symbols; on July 4th only FX
    assert "dagster, warehouse, metadata.json" in line
    code, out = audit(capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["consistent"] and report["disagreements"] == []
    assert report["datasets"]["market_bars"]["unverified"] == 0  # every partition hashed


def test_a_deleted_warehouse_row_and_lake_file_are_named_and_repaired(built, capsys):
    lake_file = Path(str(built.lake.partition_path("yahoo_daily_bars", "2024-07-09")))
    kept = lake_file.read_bytes()
    lake_file.unlink()
    warehouse = built.root / "data" / "warehouse" / "warehouse.sqlite"
    with sqlite3.connect(warehouse) as db:
        db.execute("DELETE FROM market_bars WHERE symbol = 'AAPL' AND date LIKE '2024-07-10%'")

    code, out = audit(capsys)
    assert code == 2, out
    disagreements = [x for x in out.splitlines() if x.startswith("DISAGREE")]
    assert (
        "DISAGREE yahoo_daily_bars[2024-07-09]: lake vs dagster: Dagster's latest "
        "materialization" in "\n".join(disagreements)
    )
    assert "but the lake has no file" in out
    warehouse_line = next(x for x in disagreements if "market_bars[2024-07-10]" in x)
    assert "lake vs warehouse: lake 6 rows" in warehouse_line
    assert "warehouse 5 rows" in warehouse_line
    assert "DISAGREE yahoo_daily_bars: lake vs metadata.json" in out
    # the exact commands that repair it
    assert (
        "dagster asset materialize -m ingest_platform.definitions --select yahoo_daily_bars "
        "--partition 2024-07-09 --config-json" in out
    )
    assert "--select warehouse_market_bars --partition 2024-07-10" in out

    code, out = audit(capsys, "--json")
    report = json.loads(out)
    assert code == 2 and not report["consistent"]
    named = {(d["dataset"], d["partition"], tuple(d["copies"])) for d in report["disagreements"]}
    assert ("yahoo_daily_bars", "2024-07-09", ("lake", "dagster")) in named
    assert ("market_bars", "2024-07-10", ("lake", "warehouse")) in named

    code, out = audit(capsys, "--repair")
    assert code == 0, out
    assert "repair yahoo_daily_bars 2024-07-09: ok" in out
    assert "repair warehouse_market_bars 2024-07-10: ok" in out
    assert out.rstrip().splitlines()[-1].startswith("audit: consistent")
    restored = built.lake.read("yahoo_daily_bars", ["2024-07-09"])
    assert len(restored) == 6 and kept  # the file is back, fetched again


def test_a_file_changed_behind_dagsters_back_is_caught(built, capsys):
    """A partition rewritten outside the platform (same row count, one value changed) differs
    from what Dagster recorded: the content hash, not the row count, catches it."""
    frame = built.lake.read("market_bars", ["2024-07-11"])
    original = fingerprint.content_hash(frame, built.lake_schema("market_bars"))
    frame.loc[0, "close"] = frame.loc[0, "close"] * 1.0001
    built.lake.write_partitions(
        "market_bars", {"2024-07-11": frame}, built.lake_schema("market_bars")
    )
    code, out = audit(capsys, "--dataset", "market_bars")
    assert code == 2, out
    line = next(x for x in out.splitlines() if "market_bars[2024-07-11]: lake vs dagster" in x)
    assert "lake 6 rows" in line and f"6 rows {original[:12]}" in line
    code, out = audit(capsys, "--dataset", "market_bars", "--repair")
    assert code == 0, out


def test_an_unknown_dataset_cannot_be_audited(built, capsys):
    assert cli(["audit", "--dataset", "no_such_thing"]) == 1
    assert "no_such_thing" in capsys.readouterr().err


@pytest.mark.postgres
def test_on_postgresql_an_instance_and_a_warehouse_audit_alike(tmp_path, monkeypatch, capsys):
    """The production shape: the instance (deploy/dagster-postgres.yaml) and the warehouse on
    PostgreSQL. Their copies agree after the publish automation, and a row deleted from the
    warehouse is named."""
    with (
        throwaway_database("audit_instance") as instance_db,
        throwaway_database("audit_warehouse") as warehouse_db,
    ):
        for name, value in {
            "DAGSTER_PG_HOST": PG_HOST,
            "DAGSTER_PG_PORT": str(PG_PORT),
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": instance_db,
            "INGEST_PLATFORM_WAREHOUSE_URL": (
                f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{warehouse_db}"
            ),
        }.items():
            monkeypatch.setenv(name, value)
        platform = Platform(
            tmp_path,
            monkeypatch,
            UNIVERSE,
            clock="2024-07-13T02:00:00+00:00",
            instance_config=CHECKOUT / "deploy" / "dagster-postgres.yaml",
        )
        try:
            platform.reference_data()
            assert platform.market("2024-07-08", "2024-07-12").success
            platform.publish_tick()
            code, out = audit(capsys)
            assert code == 0, out
            engine = platform.warehouse_engine()
            assert engine.dialect.name == "postgresql"
            with engine.begin() as connection:
                connection.execute(
                    sa.text("DELETE FROM market_bars WHERE symbol = 'SPY' AND date = '2024-07-11'")
                )
            code, out = audit(capsys, "--dataset", "market_bars")
            assert code == 2, out
            assert "market_bars[2024-07-11]: lake vs warehouse: lake 6 rows" in out
        finally:
            platform.close()
