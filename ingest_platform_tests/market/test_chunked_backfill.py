"""A chunked market backfill on a PostgreSQL instance: two runs at once, the lake of one run.

`INGEST_PLATFORM_BACKFILL_CHUNK` splits a backfill into runs of at most that many days. Here a
quarter of market bars (Yahoo with its corporate actions, Alpha Vantage, Polygon, market_bars)
is registered as one asset backfill on a PostgreSQL instance and run as the two chunks its
backfill policy makes, each in a process of its own, started together, as a cluster's backfill
daemon would launch them (each run tagged with the backfill and its chunk's range). The same
quarter is also run as one run in a separate home.

The two lakes must be equal, partition file by partition file: including the budget-limited
sources, whose rotating sample is drawn over the whole backfill, not per chunk. And the two
chunks together must keep Alpha Vantage's and Polygon's limits (calls a day, calls a second),
which they share only through the instance's database: the sandbox counts what arrived, and
the budget table what was charged.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import AssetKey, BackfillPolicy, DagsterInstance, materialize
from dagster._core.execution.backfill import PartitionBackfill

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake
from ingest_platform.domains import build_definitions
from ingest_platform.market.schema import MARKET_BARS
from ingest_platform.reference.assets import index_membership, instruments
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer
from ingest_platform_tests.postgres import PG_HOST, PG_PORT, PG_USER, instance_yaml

SYMBOLS = ["AAPL", "MSFT", "NVDA", "JNJ", "IBM", "XOM", "JPM", "KO", "SPY"]
RANGE = ("2024-06-03", "2024-08-30")
NOW = "2026-11-20T12:00:00+00:00"  # pinned: ingested_at is the same in both homes
SAMPLE = 3  # symbols each budget-limited source reconciles, of the 9
PER_SECOND = 1  # Alpha Vantage's and Polygon's limit, both runs together
CHUNKS = 2
DAILY_LIMIT = CHUNKS * SAMPLE  # exactly what two chunks need: one call more would be refused
MARKET = ["yahoo_daily_bars", "corporate_actions", "alpha_vantage_daily_bars",
          "polygon_daily_bars", "market_bars"]  # fmt: skip

#: One run of the market assets over [start, end], in a process of its own, with the code
#: location's own (chunked) assets and resources; the limited sources' limits set through
#: resource config, as a deployment would.
WORKER = textwrap.dedent(
    """
    import json, pathlib, sys, time
    from dagster import DagsterInstance, EnvVar, materialize
    from ingest_platform.definitions import build_definitions
    from ingest_platform.market.resources import AlphaVantage, Polygon

    start, end, backfill, barrier, knobs = sys.argv[1:6]
    knobs = json.loads(knobs)
    defs = build_definitions()
    assets = [defs.get_assets_def(n) for n in
              ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars", "market_bars")]
    limits = {"calls_per_second": knobs["per_second"], "daily_call_limit": knobs["daily"],
              "sample_size": knobs["sample"]}
    resources = {
        **defs.resources,
        "alpha_vantage": AlphaVantage(api_key=EnvVar("ALPHA_VANTAGE_API_KEY"), **limits),
        "polygon": Polygon(api_key=EnvVar("POLYGON_API_KEY"), **limits),
    }
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    if backfill:
        tags["dagster/backfill"] = backfill
    bars = {"config": {"symbols": knobs["symbols"]}}
    barrier = pathlib.Path(barrier)
    (barrier / f"ready-{start}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.05)
    began = time.monotonic()
    with DagsterInstance.get() as instance:
        result = materialize(
            assets, resources=resources, instance=instance, tags=tags,
            run_config={"ops": {n: bars for n in (
                "yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars",
                "market_bars")}},
            raise_on_error=False,
        )
    print(json.dumps({"run_id": result.run_id, "success": result.success,
                      "seconds": time.monotonic() - began}))
    """
)


def _policies(monkeypatch: pytest.MonkeyPatch, chunk: str | None) -> dict[str, object]:
    """Each partitioned asset's backfill policy in the market and economic domains, as the
    definitions load with $INGEST_PLATFORM_BACKFILL_CHUNK at `chunk` (None: unset)."""
    if chunk is None:
        monkeypatch.delenv(settings.BACKFILL_CHUNK_ENV, raising=False)
    else:
        monkeypatch.setenv(settings.BACKFILL_CHUNK_ENV, chunk)
    graph = build_definitions(["market", "economic"]).resolve_asset_graph()
    return {
        key.to_user_string(): graph.get(key).backfill_policy
        for key in graph.materializable_asset_keys
        if graph.get(key).is_partitioned
    }


def test_unset_a_market_range_runs_as_one_run(monkeypatch):
    policies = _policies(monkeypatch, None)
    assert set(MARKET) <= set(policies)
    assert set(policies.values()) == {BackfillPolicy.single_run()}


def test_a_chunk_size_splits_market_backfills_and_leaves_the_monthly_datasets_whole(monkeypatch):
    policies = _policies(monkeypatch, "30")
    assert {name: policies[name] for name in MARKET} == dict.fromkeys(
        MARKET, BackfillPolicy.multi_run(30)
    )
    assert policies["economic_indicators"] == BackfillPolicy.single_run()


@pytest.mark.parametrize("value", ["0", "-3", "ten", "2.5", "1e3"])
def test_a_chunk_size_that_is_not_a_whole_number_of_days_is_refused_by_name(monkeypatch, value):
    with pytest.raises(ValueError, match=rf"INGEST_PLATFORM_BACKFILL_CHUNK='{value}': expected"):
        _policies(monkeypatch, value)


@pytest.fixture
def sandbox():
    with SandboxHTTPServer(MarketSimulator(seed=7, as_of="2026-11-20")) as server:
        yield server


class Home:
    """One deployment's folders: its Dagster home, data folder (budgets) and lake."""

    def __init__(self, root: Path, sandbox_url: str, chunk: int | None = None) -> None:
        self.root = root
        self.dagster_home = root / "dagster_home"
        self.dagster_home.mkdir(parents=True)
        self.lake = ParquetLake(root=str(root / "lake"))
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.dagster_home),
            settings.SANDBOX_URL_ENV: sandbox_url,
            settings.NOW_ENV: NOW,
            "INGEST_PLATFORM_DATA_DIR": str(root / "data"),
            "INGEST_PLATFORM_LAKE_ROOT": str(root / "lake"),
            "ALPHA_VANTAGE_API_KEY": "av-test-key",
            "POLYGON_API_KEY": "pg-test-key",
            "FRED_API_KEY": "fred-test-key",
        }
        self.env.pop(settings.BACKFILL_CHUNK_ENV, None)
        if chunk is not None:
            self.env[settings.BACKFILL_CHUNK_ENV] = str(chunk)

    def seed_reference(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """instruments and index_membership, which every market run reads."""
        with monkeypatch.context() as env:
            env.setenv(settings.NOW_ENV, NOW)
            reference = ReferenceFiles(directory=str(settings.reference_dir()))
            assert materialize(
                [instruments, index_membership],
                resources={"lake": self.lake, "reference_files": reference},
            ).success

    def start_runs(self, ranges: list[tuple[str, str]], backfill: str = "") -> list[dict]:
        """Run each range in a process of its own, all started together; their verdicts."""
        barrier = self.root / "barrier"
        barrier.mkdir()
        knobs = json.dumps(
            {"per_second": PER_SECOND, "daily": DAILY_LIMIT, "sample": SAMPLE, "symbols": SYMBOLS}
        )
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, start, end, backfill, str(barrier), knobs],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for start, end in ranges
        ]
        began = time.monotonic()
        try:
            while len(list(barrier.glob("ready-*"))) < len(processes):
                assert all(p.poll() is None for p in processes), "a run process died early"
                assert time.monotonic() - began < 120, "the run processes did not start"
                time.sleep(0.05)
            (barrier / "go").touch()
            verdicts = []
            for process in processes:
                out, err = process.communicate(timeout=600)
                assert process.returncode == 0, f"run process failed:\n{err[-3000:]}"
                verdicts.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for process in processes:  # only ours, by handle
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        return verdicts


def _lake_files(lake: ParquetLake) -> dict[str, Path]:
    root = Path(lake.root)
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _rows(path: Path) -> pd.DataFrame:
    """A partition file's rows in a canonical order (row order in a file is not content)."""
    frame = pd.read_parquet(path)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _chunks(keys: list[str], size: int) -> list[tuple[str, str]]:
    return [(keys[i], keys[min(i + size, len(keys)) - 1]) for i in range(0, len(keys), size)]


def _budget_rows(database: str) -> dict[str, int]:
    engine = sa.create_engine(f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT source, calls FROM call_budget")).all()
    finally:
        engine.dispose()
    return {source: calls for source, calls in rows}


@pytest.mark.slow
def test_a_chunked_backfill_in_two_concurrent_runs_writes_the_lake_of_one_run_within_limits(
    tmp_path, sandbox, postgres_database, monkeypatch
):
    keys = MARKET_BARS.scheme.keys_between(
        pd.Timestamp(RANGE[0]).date(), pd.Timestamp(RANGE[1]).date()
    )
    chunk = math.ceil(len(keys) / CHUNKS)

    # The reference: the quarter as one run, in a home of its own (SQLite instance, its own
    # budget file), on the same sandbox.
    single = Home(tmp_path / "single", sandbox.url)
    single.seed_reference(monkeypatch)
    sandbox.counters.reset()
    [one] = single.start_runs([RANGE])
    assert one["success"], one
    single_requests = {
        source: len(sandbox.counters.arrivals(source))
        for source in ("yahoo.chart", "alpha_vantage", "polygon")
    }

    # The chunked backfill, on a PostgreSQL instance.
    chunked = Home(tmp_path / "chunked", sandbox.url, chunk=chunk)
    chunked.seed_reference(monkeypatch)
    (chunked.dagster_home / "dagster.yaml").write_text(instance_yaml(postgres_database))
    with monkeypatch.context() as env:
        for name, value in chunked.env.items():
            if name.startswith(("INGEST_PLATFORM_", "DAGSTER_HOME")):
                env.setenv(name, value)
        defs = build_definitions()
    policy = defs.get_assets_def("market_bars").backfill_policy
    assert policy is not None and policy.max_partitions_per_run == chunk
    ranges = _chunks(keys, policy.max_partitions_per_run)
    assert len(ranges) == CHUNKS, ranges

    with DagsterInstance.from_config(str(chunked.dagster_home)) as instance:
        # A deployment sets its pools up front (Dagster 1.13 on PostgreSQL fails a run when two
        # insert a pool's default at once). Yahoo and the lake stay one step at a time, as
        # deploy/dagster-postgres.yaml has them; the limited sources are opened to both runs,
        # so only their shared limits keep them in bounds (safe here: current members only,
        # so their unavailable-symbol records stay empty, and no new split to rebase).
        for pool in ("yahoo", "lake", "warehouse"):
            instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
        for pool in ("alpha_vantage", "polygon"):
            instance.event_log_storage.set_concurrency_slots(pool, CHUNKS)
        backfill_id = uuid.uuid4().hex[:8]
        instance.add_backfill(
            PartitionBackfill.from_asset_partitions(
                backfill_id=backfill_id,
                asset_graph=defs.resolve_asset_graph(),
                partition_names=keys,
                asset_selection=[AssetKey(name) for name in MARKET],
                backfill_timestamp=time.time(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title="chunked market backfill",
                description=None,
                run_config=None,
            )
        )
        sandbox.counters.reset()
        runs = chunked.start_runs(ranges, backfill=backfill_id)
        assert all(r["success"] for r in runs), runs
        records = [instance.get_run_record_by_id(r["run_id"]) for r in runs]
        # The two runs executed at the same time.
        assert max(r.start_time for r in records) < min(r.end_time for r in records)

    # (a) The lake of one run, file by file.
    files = _lake_files(single.lake)
    assert set(_lake_files(chunked.lake)) == set(files)
    datasets = {name.split("/")[0] for name in files}
    assert set(MARKET) <= datasets, datasets
    for name, path in sorted(files.items()):
        other = Path(chunked.lake.root) / name
        if path.suffix == ".parquet":
            pd.testing.assert_frame_equal(_rows(other), _rows(path), obj=name)
        else:
            assert other.read_bytes() == path.read_bytes(), name
    for name in ("alpha_vantage_daily_bars", "polygon_daily_bars"):
        stored = set(pd.read_parquet(Path(single.lake.root) / name)["symbol"])
        assert len(stored) == SAMPLE, (name, stored)  # a sample, not everyone

    # (b) Neither limited source's limit was exceeded, by both runs together: what arrived at
    # the provider, and what the shared budget charged.
    charged = _budget_rows(postgres_database)
    for source in ("alpha_vantage", "polygon"):
        arrived = len(sandbox.counters.arrivals(source))
        busiest = sandbox.counters.busiest(source, seconds=1.0)
        print(
            f"{source}: single run {single_requests[source]} requests; chunked "
            f"{arrived} (budget charged {charged.get(source)}, limit {DAILY_LIMIT}/day), "
            f"busiest second {busiest} (limit {PER_SECOND}/s)"
        )
        assert arrived == charged[source] == CHUNKS * SAMPLE <= DAILY_LIMIT
        assert 1 <= busiest <= PER_SECOND
    chunk_seconds = max(r["seconds"] for r in runs)
    print(
        f"yahoo.chart: single run {single_requests['yahoo.chart']} requests, chunked "
        f"{len(sandbox.counters.arrivals('yahoo.chart'))}; wall time: single run "
        f"{one['seconds']:.1f} s, two chunks side by side {chunk_seconds:.1f} s "
        f"({len(keys)} days, chunks of {chunk})"
    )
