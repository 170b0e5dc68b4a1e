"""dataset_metadata, the warehouse assets and `ingest-platform status`, end to end.

One world per module: the sandbox, the code location's own resources, an instance that keeps
run history. Market bars and economic indicators are backfilled with their checks, published,
described; every figure of ``metadata.json`` is then recomputed here straight from the Parquet
files (pyarrow, not the platform's readers), before and after a partition goes missing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pandas as pd
import pyarrow.dataset as pads
import pytest
import sqlalchemy as sa
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from ingest_platform.core import calendars, settings
from ingest_platform.definitions import build_definitions
from ingest_platform.market.unavailable import read_unavailable
from ingest_platform.publish import metadata, status
from ingest_platform.publish.catalogue import DATASETS
from ingest_platform.reference.universe import traded
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer
from ingest_platform.streaming.kraken.heartbeat import write_heartbeat

pytestmark = pytest.mark.slow

AS_OF = "2025-12-31"
NOW = "2026-01-02T08:00:00+00:00"
START, END = "2025-11-03", "2025-12-31"
ECON_START, ECON_END = "2025-01-01", "2025-12-01"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
FRED_KEY = "fred-meta+key/91=ab"


class World:
    """What the tests share: definitions, resources, instance, the lake folder."""

    def __init__(self, sandbox: SandboxHTTPServer, instance: DagsterInstance, data: Path) -> None:
        self.sandbox = sandbox
        self.instance = instance
        self.data = data
        self.defs = build_definitions()
        self.resources = dict(self.defs.resources or {})
        self.lake = self.resources["lake"]
        self.graph = self.defs.resolve_asset_graph()

    def assets(self, *names: str) -> list:
        return [self.defs.get_assets_def(AssetKey(n)) for n in names]

    def checks(self, *names: str) -> list:
        keys = {AssetKey(n) for n in names}
        checks = self.defs.asset_checks or []
        return [c for c in checks if {k.asset_key for k in c.check_keys} & keys]

    def run(self, names: list[str], start: str | None = None, end: str | None = None, **kw):
        tags = (
            {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
            if start
            else {}
        )
        result = materialize(
            self.assets(*names) + kw.pop("checks", []),
            resources=self.resources,
            instance=self.instance,
            tags=tags,
            run_config={**QUIET, **kw.pop("run_config", {})},
            raise_on_error=False,
        )
        assert result.success, [
            e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure
        ]
        return result

    def market(self, start: str = START, end: str = END, symbols: list[str] | None = None):
        """The market assets over a range, the whole universe unless `symbols`."""
        ops = ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars", "market_bars")
        config = {"ops": {op: {"config": {"symbols": symbols}} for op in ops}} if symbols else {}
        return self.run(
            list(ops),
            start,
            end,
            checks=self.checks("yahoo_daily_bars", "market_bars"),
            run_config=config,
        )

    def publish(self) -> None:
        self.run(["warehouse_market_bars"], START, END)
        self.run(["warehouse_economic_indicators"], ECON_START, ECON_END)
        self.run(["warehouse_variable_mappings", "warehouse_instruments"])
        self.run(["dataset_metadata"])

    def document(self) -> dict:
        return json.loads((Path(self.lake.root) / "metadata.json").read_text())


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("publish")
    data = base / "data"
    (base / "dagster").mkdir()
    with (
        pytest.MonkeyPatch.context() as env,
        SandboxHTTPServer(MarketSimulator(seed=7, as_of=AS_OF, large_drifts=())) as sandbox,
        DagsterInstance.local_temp(str(base / "dagster")) as instance,
    ):
        env.setenv(settings.SANDBOX_URL_ENV, sandbox.url)
        env.setenv("INGEST_PLATFORM_DATA_DIR", str(data))
        env.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
        env.delenv("INGEST_PLATFORM_WAREHOUSE_URL", raising=False)
        env.setenv("FRED_API_KEY", FRED_KEY)
        env.setenv("ALPHA_VANTAGE_API_KEY", "av-meta-key")
        env.setenv("POLYGON_API_KEY", "pg-meta-key")
        env.setenv(settings.NOW_ENV, NOW)
        w = World(sandbox, instance, data)
        w.run(["instruments", "index_membership", "variable_mappings", "economic_release_calendar"])
        w.market()
        w.run(
            ["economic_indicators"],
            ECON_START,
            ECON_END,
            checks=w.checks("economic_indicators"),
        )
        w.publish()
        yield w


# -- an independent reading of the lake: pyarrow over the files, nothing of the platform ------


def files(root: str, dataset: str) -> list[Path]:
    return sorted(Path(root, dataset).glob("**/*.parquet"))


def table(root: str, dataset: str) -> pd.DataFrame:
    found = files(root, dataset)
    if not found:
        return pd.DataFrame()
    return pads.dataset([str(p) for p in found], format="parquet").to_table().to_pandas()


def partition_keys(root: str, dataset: str) -> list[str]:
    """The partition keys stored for `dataset`: one ``<key>.parquet`` file per partition."""
    return sorted(p.stem for p in files(root, dataset))


def expected_figures(root: str, name: str) -> dict:
    frame = table(root, name)
    out: dict = {"rows": len(frame)}
    if "date" in frame.columns and len(frame):
        dates = pd.to_datetime(frame["date"])
        out["date_range"] = [dates.min().date().isoformat(), dates.max().date().isoformat()]
    if "source" in frame.columns and len(frame):
        out["source_mix"] = {str(k): int(v) for k, v in frame["source"].value_counts().items()}
    return out


# -- metadata.json ---------------------------------------------------------------------------


def test_metadata_json_follows_its_versioned_schema(world):
    document = world.document()
    jsonschema.validate(document, metadata.schema())
    assert document["schema_version"] == metadata.SCHEMA_VERSION == 1
    assert set(document["datasets"]) == {d.name for d in DATASETS}


def test_every_figure_matches_the_parquet_files(world):
    document = world.document()
    root = world.lake.root
    for name, entry in document["datasets"].items():
        expected = expected_figures(root, name)
        assert entry["rows"] == expected["rows"], name
        if "date_range" in expected:
            assert [entry["date_range"]["min"], entry["date_range"]["max"]] == expected[
                "date_range"
            ], name
        if "source_mix" in expected:
            assert entry["source_mix"] == expected["source_mix"], name
    bars = document["datasets"]["market_bars"]
    assert bars["rows"] > 0
    weekdays = pd.bdate_range(START, END)  # partitions are weekdays; a holiday's is closed empty
    stored = partition_keys(root, "market_bars")
    assert stored == [day.date().isoformat() for day in weekdays]
    assert bars["partitions"]["present"] == len(stored)
    assert [bars["partitions"]["first"], bars["partitions"]["last"]] == [stored[0], stored[-1]]
    assert (stored[0], stored[-1]) == (START, END)
    # missing: the closed partitions after the backfill (New Year's Day), never the open one
    assert bars["partitions"]["missing"] == ["2026-01-01"]
    econ = document["datasets"]["economic_indicators"]
    assert econ["rows"] > 0 and set(econ["source_mix"]) == {"fred", "worldbank"}


def test_coverage_is_the_share_of_expected_sessions_per_symbol(world):
    coverage = world.document()["datasets"]["market_bars"]["coverage"]
    bars = table(world.lake.root, "market_bars")
    assert coverage["key"] == "symbol" and coverage["keys"] == bars["symbol"].nunique()
    assert coverage["min"] == 1.0 and coverage["below_0_9"] == 0
    # every symbol of the window's universe is expected (the ETFs, FX, indices, futures and the
    # index members of some day of the window): one the sources never served is named apart
    everything = traded(table(world.lake.root, "instruments"))
    spells = table(world.lake.root, "index_membership")
    touching = spells[
        (pd.to_datetime(spells["added"]) <= pd.Timestamp(END))
        & (spells["removed"].isna() | (pd.to_datetime(spells["removed"]) > pd.Timestamp(START)))
    ]
    # ... but not a former member Yahoo has no history for: a known gap, recorded apart
    gaps = read_unavailable(world.lake, ["yahoo"])
    assert len(gaps) > 0
    touching = touching[~touching["instrument_id"].isin(gaps["instrument_id"])]
    universe = set(everything.loc[everything["asset_class"] != "equity", "symbol"]) | set(
        touching["symbol"]
    )
    assert coverage["absent"] == len(universe - set(bars["symbol"]))
    assert set(coverage["absent_keys"]) == universe - set(bars["symbol"])


def test_the_sources_and_the_registry_are_described(world):
    document = world.document()
    assert document["sources"]["fred"]["calls"] >= 1
    assert document["sources"]["fred"]["limit"] is None  # FRED: a rate limit, no daily cap
    registry = document["registry"]
    mappings = table(world.lake.root, "variable_mappings")
    assert registry["variables"] == len(mappings)
    assert registry["mapped"] == int(mappings["source"].notna().sum())
    assert {u["variable"] for u in registry["unmapped"]} == set(
        mappings.loc[mappings["source"].isna(), "variable"]
    )


def test_the_lake_readme_lists_every_dataset(world):
    readme = (Path(world.lake.root) / "README.md").read_text()
    for dataset in DATASETS:
        assert f"`{dataset.name}`" in readme
    assert "market_bars" in readme and "coverage" in readme.lower()


def test_the_checks_latest_results_are_in_the_document(world):
    checks = world.document()["datasets"]["market_bars"]["checks"]
    names = {c["check"] for c in checks}
    assert {"bar_coverage", "bar_staleness", "cross_source_drift"} <= names
    failing = [c for c in checks if c["passed"] is False and c["severity"] == "ERROR"]
    assert failing == []


# -- the warehouse ---------------------------------------------------------------------------


def warehouse_counts(world) -> dict[str, int]:
    engine = sa.create_engine(f"sqlite:///{world.data / 'warehouse' / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one()
            for name in ("market_bars", "economic_indicators", "variable_mappings", "instruments")
        }


def test_the_warehouse_holds_what_the_lake_holds(world):
    counts = warehouse_counts(world)
    for name, count in counts.items():
        assert count == len(table(world.lake.root, name)), name


# -- a partition goes missing: the document, the checks and the status say so ---------------


def test_a_missing_partition_is_counted_everywhere(world):
    root = world.lake.root
    victim = "2025-12-10"
    before = world.document()["datasets"]["market_bars"]
    lost = int((pd.to_datetime(table(root, "market_bars")["date"]) == pd.Timestamp(victim)).sum())
    assert lost > 0
    assert world.lake.delete_partition("market_bars", victim)
    world.run(["dataset_metadata"])

    after = world.document()["datasets"]["market_bars"]
    assert after["rows"] == before["rows"] - lost == len(table(root, "market_bars"))
    assert after["partitions"]["missing"] == sorted([victim, *before["partitions"]["missing"]])
    assert after["partitions"]["missing_count"] == before["partitions"]["missing_count"] + 1
    sessions = len(calendars.sessions(START, END))
    equities = [r for r in after["coverage"]["lowest"] if r["expected"] == sessions]
    assert equities and all(r["present"] == sessions - 1 for r in equities)
    # members of part of the window lose a larger share of theirs
    assert after["coverage"]["min"] <= (sessions - 1) / sessions
    assert after["coverage"]["min"] == pytest.approx(
        min(r["present"] / r["expected"] for r in after["coverage"]["lowest"]), abs=1e-6
    )

    # a subset re-run of one other day merges; it neither loses nor duplicates rows
    world.market("2025-12-11", "2025-12-11", symbols=["AAPL"])
    world.run(["dataset_metadata"])
    assert world.document()["datasets"]["market_bars"]["rows"] == after["rows"]

    # the whole range re-run brings the day back; the republished table has no duplicate
    world.market()
    world.run(["warehouse_market_bars"], START, END)
    world.run(["dataset_metadata"])
    restored = world.document()["datasets"]["market_bars"]
    assert restored["rows"] == before["rows"]
    assert restored["partitions"]["missing"] == before["partitions"]["missing"]
    assert warehouse_counts(world)["market_bars"] == before["rows"]


# -- ingest-platform status --------------------------------------------------------------------


def now() -> dt.datetime:
    return dt.datetime.fromisoformat(NOW)


def test_status_reports_each_dataset_schedule_budget_and_the_stream(world):
    report = status.collect(world.defs, world.instance, world.lake, now())
    by_name = {d.name: d for d in report.datasets}
    bars = by_name["market_bars"]
    # New Year's Day closed at midnight and nothing filled it; today's (2026-01-02) is still open
    assert bars.latest_partition == END and bars.missing == ["2026-01-01"]
    assert not bars.checks_failing_error
    assert by_name["kraken_book_minute_bars"].last_materialized is None
    automation = {a.name: a for a in report.automation}
    daily = automation["market_bars_daily"]
    assert daily.kind == "schedule" and daily.state == "running"
    assert daily.next_tick is not None and daily.next_tick > NOW
    assert report.budgets["fred"]["calls"] >= 1
    assert report.stream["run"] is None
    out = io.StringIO()
    assert status.main(world.defs, world.instance, world.lake, json_out=False, out=out) == 0
    assert "market_bars" in out.getvalue() and "PROBLEM" not in out.getvalue()
    document = io.StringIO()
    status.main(world.defs, world.instance, world.lake, json_out=True, out=document)
    assert json.loads(document.getvalue())["problems"] == []


def test_status_shows_the_fan_outs_health_from_the_heartbeat(world):
    beats = world.defs.resources["kraken_stream"].heartbeat_path()
    bus = {"state": "connected", "buffered": 4, "dropped": 0, "unacked": 0, "gaps": 2}
    path = write_heartbeat(
        beats, {"run_id": None, "state": "streaming", "updated_at": now().timestamp(), "bus": bus}
    )
    try:
        report = status.collect(world.defs, world.instance, world.lake, now())
        assert report.stream["bus"] == "bus connected: 4 buffered, 0 dropped, 0 unacked, 2 gaps"
        out = io.StringIO()
        status.render(report, out)
        assert "state streaming, run none (-); bus connected: 4 buffered" in out.getvalue()
        write_heartbeat(beats, {"state": "streaming", "updated_at": now().timestamp()})
        report = status.collect(world.defs, world.instance, world.lake, now())
        assert report.stream["bus"] == "fan-out off"
    finally:
        path.unlink()


def test_status_exits_1_and_names_a_failing_error_check(world):
    # the newest three sessions go missing: the bars are three sessions stale, an ERROR
    victims = ["2025-12-29", "2025-12-30", "2025-12-31"]
    for victim in victims:
        assert world.lake.delete_partition("market_bars", victim)
    try:
        checks = world.checks("market_bars")
        materialize(
            checks,
            selection=AssetSelection.checks(*[k for c in checks for k in c.check_keys]),
            resources=world.resources,
            instance=world.instance,
            run_config=QUIET,
            raise_on_error=False,
        )
        report = status.collect(world.defs, world.instance, world.lake, now())
        bars = next(d for d in report.datasets if d.name == "market_bars")
        assert set(victims) <= set(bars.missing)
        assert "bar_staleness" in bars.checks_failing_error
        out = io.StringIO()
        assert status.main(world.defs, world.instance, world.lake, json_out=False, out=out) == 1
        assert "PROBLEM market_bars: ERROR check failing: bar_staleness" in out.getvalue()
    finally:
        world.market(victims[0], victims[-1])
