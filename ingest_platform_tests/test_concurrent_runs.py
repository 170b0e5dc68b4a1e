"""A backfill and a scheduled-style run side by side, in two processes, on one PostgreSQL instance.

Both runs fetch Polygon bars from the sandbox with a low per-second limit and overlap the same
day (the backfill's last partition is the scheduled run's only one). The limit is shared through
the instance's database, so the sandbox, counting arrivals as a provider would, never sees more
than the limit in any one-second window; the lake and the warehouse end with one row per
(symbol, date). The Polygon pool is opened to two steps, as a deployment trusting the shared
limit would: otherwise Dagster would serialise the two fetches and the limit would prove little.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance, materialize

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake
from ingest_platform.market.assets import yahoo_daily_bars
from ingest_platform.market.resources import YahooFinance
from ingest_platform.market.schema import MARKET_BARS, POLYGON_DAILY_BARS
from ingest_platform.reference.assets import index_membership, instruments
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer
from ingest_platform_tests.postgres import PG_HOST, PG_PORT, PG_USER, instance_yaml

LIMIT = 2  # Polygon requests per second, for both runs together
SYMBOLS = ["AAPL", "MSFT", "NVDA", "JNJ", "IBM", "XOM", "JPM", "KO", "SPY", "QQQ"]
BACKFILL = ("2024-06-03", "2024-07-12")
SCHEDULED = "2024-07-12"  # the backfill's last partition: both runs write and publish it

#: One Dagster run, in a process of its own: the code location's own resources, Polygon's
#: limit set through resource config as a deployment would.
WORKER = textwrap.dedent(
    """
    import json, pathlib, sys, time
    from dagster import DagsterInstance, EnvVar, materialize
    from ingest_platform.definitions import build_definitions
    from ingest_platform.market.assets import market_bars, polygon_daily_bars
    from ingest_platform.market.resources import Polygon
    from ingest_platform.market.schema import MARKET_BARS
    from ingest_platform.publish.assets import warehouse_asset

    kind, start, end, limit, symbols = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), \\
        json.loads(sys.argv[5])
    barrier = pathlib.Path(sys.argv[6])
    defs = build_definitions()
    # Both processes start their runs together, whichever imported faster.
    (barrier / f"ready-{kind}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.05)
    resources = {
        **defs.resources,
        "polygon": Polygon(api_key=EnvVar("POLYGON_API_KEY"), calls_per_second=limit),
    }
    bars = {"symbols": symbols}
    tags = (
        {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        if kind == "backfill"
        else {"dagster/schedule_name": "market_bars_daily", "dagster/run_key": f"test:{end}"}
    )
    with DagsterInstance.get() as instance:
        result = materialize(
            [polygon_daily_bars, market_bars, warehouse_asset(MARKET_BARS)],
            resources=resources,
            instance=instance,
            partition_key=None if kind == "backfill" else end,
            tags=tags,
            run_config={"ops": {
                "polygon_daily_bars": {"config": bars},
                "market_bars": {"config": {"symbols": symbols}},
            }},
            raise_on_error=False,
        )
    print(json.dumps({"run_id": result.run_id, "success": result.success}))
    """
)


@pytest.fixture
def sandbox():
    with SandboxHTTPServer(MarketSimulator(seed=7, as_of="2026-11-20")) as server:
        yield server


def _env(tmp_path, sandbox_url: str, database: str) -> dict[str, str]:
    pg = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
    return {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        settings.SANDBOX_URL_ENV: sandbox_url,
        "INGEST_PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "INGEST_PLATFORM_LAKE_ROOT": str(tmp_path / "lake"),
        "INGEST_PLATFORM_WAREHOUSE_URL": pg,
        "ALPHA_VANTAGE_API_KEY": "av-test-key",
        "POLYGON_API_KEY": "pg-test-key",
        "FRED_API_KEY": "fred-test-key",
    }


def _polygon_step_span(instance: DagsterInstance, run_id: str) -> tuple[float, float]:
    """When the run's polygon_daily_bars step started and ended (epoch seconds)."""
    stamps = {}
    for kind in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS):
        [event] = [
            e for e in instance.all_logs(run_id, of_type=kind) if e.step_key == "polygon_daily_bars"
        ]
        stamps[kind] = event.timestamp
    return stamps[DagsterEventType.STEP_START], stamps[DagsterEventType.STEP_SUCCESS]


@pytest.mark.slow
def test_a_backfill_and_a_scheduled_run_share_one_rate_limit_and_write_no_duplicates(
    tmp_path, sandbox, postgres_database, monkeypatch
):
    env = _env(tmp_path, sandbox.url, postgres_database)
    for name in (settings.SANDBOX_URL_ENV, "INGEST_PLATFORM_DATA_DIR"):
        monkeypatch.setenv(name, env[name])
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(postgres_database))
    lake = ParquetLake(root=env["INGEST_PLATFORM_LAKE_ROOT"])
    reference = ReferenceFiles(directory=str(settings.reference_dir()))
    assert materialize(
        [instruments, index_membership], resources={"lake": lake, "reference_files": reference}
    ).success
    # Yahoo's bars are in the lake already (an earlier run): the runs start with their Polygon
    # step (Dagster orders ready steps arbitrarily), so the two fetches overlap.
    assert materialize(
        [yahoo_daily_bars],
        resources={"lake": lake, "yahoo": YahooFinance()},
        tags={
            "dagster/asset_partition_range_start": BACKFILL[0],
            "dagster/asset_partition_range_end": BACKFILL[1],
        },
        run_config={"ops": {"yahoo_daily_bars": {"config": {"symbols": SYMBOLS}}}},
    ).success

    with DagsterInstance.from_config(str(home)) as instance:
        # Pools get their rows before two runs race to create them: Dagster 1.13 on PostgreSQL
        # fails one run when both insert a pool's default limit at once (a unique violation,
        # then an UPDATE in the aborted transaction). A deployment sets its pools up front.
        for pool in ("lake", "yahoo", "alpha_vantage", "warehouse"):
            instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
        instance.event_log_storage.set_concurrency_slots("polygon", 2)  # both fetches at once
        sandbox.counters.reset()
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        began = time.monotonic()
        runs = {
            kind: subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER,
                    *(kind, start, end, str(LIMIT), json.dumps(SYMBOLS), str(barrier)),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for kind, start, end in [("backfill", *BACKFILL), ("scheduled", SCHEDULED, SCHEDULED)]
        }
        try:
            while len(list(barrier.glob("ready-*"))) < len(runs):
                assert all(p.poll() is None for p in runs.values()), "a run process died early"
                assert time.monotonic() - began < 60, "the run processes did not start"
                time.sleep(0.05)
            (barrier / "go").touch()
            outcomes = {}
            for kind, process in runs.items():
                out, err = process.communicate(timeout=120)
                assert process.returncode == 0, f"{kind} run process failed:\n{err[-3000:]}"
                outcomes[kind] = _last_json(out)
        finally:
            for process in runs.values():  # only ours, by handle
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        failures = {
            kind: _failures(instance, o["run_id"])
            for kind, o in outcomes.items()
            if not o["success"]
        }
        assert not failures, "\n".join(str(f) for f in failures.values())

        # The two Polygon fetches really ran side by side (the pool let them)…
        spans = [_polygon_step_span(instance, o["run_id"]) for o in outcomes.values()]
        assert max(s for s, _ in spans) < min(e for _, e in spans), spans

    # …and yet the provider never saw more than the limit in any one-second window.
    requests = sandbox.counters.get("polygon.aggs")
    busiest = sandbox.counters.busiest("polygon.aggs", seconds=1.0)
    stamps = sandbox.counters.arrivals("polygon.aggs")
    tightest = min(b - a for a, b in zip(stamps, stamps[LIMIT:], strict=False))
    print(
        f"polygon: {requests} requests, busiest second {busiest} (limit {LIMIT}/s); "
        f"the tightest {LIMIT + 1} requests spanned {tightest:.3f} s"
    )
    assert requests == 2 * len(SYMBOLS)
    assert 1 <= busiest <= LIMIT

    # The lake holds one row per (symbol, date), read through its own API…
    for dataset in (POLYGON_DAILY_BARS, MARKET_BARS):
        frame = dataset.read(lake)
        assert len(frame) > 0
        assert not frame.duplicated(["symbol", "date"]).any(), dataset.name
        assert set(frame["symbol"]) == set(SYMBOLS)
    # …and so does the warehouse.
    engine = sa.create_engine(env["INGEST_PLATFORM_WAREHOUSE_URL"])
    try:
        with engine.connect() as conn:
            rows, distinct = conn.execute(
                sa.text("SELECT count(*), count(DISTINCT (symbol, date)) FROM market_bars")
            ).one()
            # The window was kept in the instance's database, found from the runs' instance.
            granted = conn.execute(
                sa.text("SELECT grants FROM rate_limit_source WHERE source = 'polygon'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert rows == distinct == len(MARKET_BARS.read(lake))
    assert granted == requests


def _failures(instance: DagsterInstance, run_id: str) -> list[str]:
    """Why a run failed: each failed step's error, as Dagster recorded it."""
    reasons = [
        f"{e.step_key}: {e.dagster_event.event_specific_data.error.message}"
        for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    ]
    for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = e.dagster_event.event_specific_data
        if not evaluation.passed:
            reasons.append(f"check {evaluation.check_name} failed: {evaluation.description}")
    for e in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        error = e.dagster_event.event_specific_data.error
        reasons.append(f"run: {e.message} {error.to_string() if error else ''}")
    return reasons


def _last_json(out: str) -> dict:
    """The worker's verdict: the last line it printed."""
    return json.loads(out.strip().splitlines()[-1])
