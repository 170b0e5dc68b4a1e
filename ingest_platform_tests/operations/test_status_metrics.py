"""`ingest-platform status --format prometheus` over a real lake and instance.

Reference data and three sessions of market bars (with their checks) are materialized from the
sandbox into an instance of the test's own, a stream heartbeat is left where the stream writes
it, then the command's output is parsed with prometheus-client's own parser and every family is
checked against what the lake, the instance and the sandbox's request counters say.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from prometheus_client.parser import text_string_to_metric_families

from ingest_platform import cli
from ingest_platform.core import settings
from ingest_platform.definitions import build_definitions
from ingest_platform.operations.status_metrics import STATUS_METRICS, STREAM_STATES
from ingest_platform.publish import state
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer
from ingest_platform.streaming.kraken.heartbeat import write_heartbeat

pytestmark = pytest.mark.slow

NOW = "2026-01-02T08:00:00+00:00"
START, END = "2025-12-29", "2025-12-31"
SYMBOLS = ["AAPL", "MSFT", "SPY"]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("status-metrics")
    home, data = base / "dagster_home", base / "data"
    home.mkdir()
    with (
        pytest.MonkeyPatch.context() as env,
        SandboxHTTPServer(MarketSimulator(seed=7, as_of="2025-12-31")) as sandbox,
    ):
        env.setenv(settings.SANDBOX_URL_ENV, sandbox.url)
        env.setenv("INGEST_PLATFORM_DATA_DIR", str(data))
        env.setenv("DAGSTER_HOME", str(home))
        env.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
        env.delenv(settings.STREAM_ROOT_ENV, raising=False)
        for key in ("FRED_API_KEY", "ALPHA_VANTAGE_API_KEY", "POLYGON_API_KEY"):
            env.setenv(key, "status-metrics-key")
        env.setenv(settings.NOW_ENV, NOW)
        defs = build_definitions()
        resources = dict(defs.resources or {})
        with DagsterInstance.get() as instance:
            materialize(
                [defs.get_assets_def(AssetKey(n)) for n in ("instruments", "index_membership")],
                resources=resources,
                instance=instance,
                run_config=QUIET,
            )
            market = ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars")
            checks = [
                c
                for c in defs.asset_checks or []
                if {k.asset_key for k in c.check_keys} & {AssetKey("market_bars")}
            ]
            result = materialize(
                [defs.get_assets_def(AssetKey(n)) for n in (*market, "market_bars")] + checks,
                resources=resources,
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": START,
                    "dagster/asset_partition_range_end": END,
                },
                run_config={
                    **QUIET,
                    "ops": {
                        op: {"config": {"symbols": SYMBOLS}} for op in (*market, "market_bars")
                    },
                },
                raise_on_error=False,
            )
            assert result.success
        now = dt.datetime.fromisoformat(NOW).timestamp()
        write_heartbeat(
            data / "stream" / "kraken",
            {"run_id": "r1", "state": "streaming", "updated_at": now - 12.0},
        )
        yield {"home": home, "data": data, "sandbox": sandbox, "defs": defs}


def _families(text: str) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label items: value}, from prometheus-client's parser."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name, {})  # a family may have no sample (no limit configured)
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _status(capsys, *extra: str) -> tuple[int, str]:
    code = cli.main(["status", "--format", "prometheus", *extra])
    return code, capsys.readouterr().out


def test_the_prometheus_status_matches_the_lake_the_instance_and_the_sandbox(
    world, capsys, monkeypatch
):
    monkeypatch.chdir(world["home"])  # the command moves to its instance's folder
    code, text = _status(capsys)
    assert code == 0
    metrics = _families(text)
    assert set(metrics) == {spec.name for spec in STATUS_METRICS}  # every family, no other

    now = dt.datetime.fromisoformat(NOW).timestamp()
    assert metrics["ingest_platform_status_generated_timestamp_seconds"] == {(): now}

    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("market_bars"))
        check_keys = world["defs"].resolve_asset_graph().asset_check_keys
        checks = state.latest_checks(instance, check_keys)
    last = metrics["ingest_platform_dataset_last_materialization_timestamp_seconds"]
    assert last[(("dataset", "market_bars"),)] == pytest.approx(event.timestamp)
    assert (("dataset", "variable_series"),) not in last  # never materialized: no sample

    days = sorted(p.name for p in (world["data"] / "lake" / "market_bars").iterdir())
    newest = dt.datetime.fromisoformat(days[-1][: len("2025-12-31")]).replace(tzinfo=dt.UTC)
    latest = metrics["ingest_platform_dataset_latest_partition_timestamp_seconds"]
    assert latest[(("dataset", "market_bars"),)] == newest.timestamp()
    # New Year's Day closed at midnight and nothing filled it.
    missing = metrics["ingest_platform_dataset_missing_partitions"]
    assert missing[(("dataset", "market_bars"),)] == 1.0

    freshness = metrics["ingest_platform_dataset_freshness"]
    for dataset in ("market_bars", "instruments", "variable_series", "kraken_book_minute_bars"):
        states = {
            dict(k)["state"]: v for k, v in freshness.items() if dict(k)["dataset"] == dataset
        }
        assert sum(states.values()) == 1.0, dataset  # a state set: exactly one state holds
    assert freshness[(("dataset", "variable_series"), ("state", "never"))] == 1.0
    assert freshness[(("dataset", "kraken_book_minute_bars"), ("state", "no_policy"))] == 1.0

    passed = metrics["ingest_platform_check_passed"]
    market_checks = [c for c in checks if c.asset == "market_bars"]
    assert market_checks
    for c in market_checks:
        labels = (("asset", "market_bars"), ("check", c.check), ("severity", c.severity))
        assert passed[labels] == (1.0 if c.passed else 0.0)
    evaluated = metrics["ingest_platform_check_evaluation_timestamp_seconds"]
    assert len(evaluated) == len(passed) == len(checks)

    # One charged call per symbol per secondary source; the sandbox counted every request.
    counters = world["sandbox"].counters.snapshot()
    calls = metrics["ingest_platform_source_calls_today"]
    assert calls[(("source", "alpha_vantage"),)] == sum(counters["alpha_vantage.daily"].values())
    assert calls[(("source", "polygon"),)] == sum(counters["polygon.aggs"].values())
    assert calls[(("source", "fred"),)] == 0.0
    assert not metrics["ingest_platform_source_call_limit"]  # the sandbox imposes no limit

    assert metrics["ingest_platform_stream_heartbeat_age_seconds"] == {(): 12.0}
    assert metrics["ingest_platform_stream_heartbeat_timestamp_seconds"] == {(): now - 12.0}
    stream_state = metrics["ingest_platform_stream_state"]
    assert set(stream_state) == {(("state", s),) for s in STREAM_STATES}
    assert stream_state[(("state", "streaming"),)] == 1.0 and sum(stream_state.values()) == 1.0
    assert metrics["ingest_platform_stream_run_active"] == {(): 0.0}

    running = metrics["ingest_platform_automation_running"]
    assert running[(("kind", "schedule"), ("name", "market_bars_daily"))] == 1.0
    assert running[(("kind", "sensor"), ("name", "kraken_stream_sensor"))] == 0.0
    assert running[(("kind", "sensor"), ("name", "run_failure_alerts"))] == 1.0


def test_the_textfile_is_written_atomically_for_the_node_exporter(world, capsys, monkeypatch):
    monkeypatch.chdir(world["home"])
    target = world["home"] / "textfile" / "ingest_platform.prom"
    target.parent.mkdir(exist_ok=True)
    target.write_text("# the previous scrape\n")
    code, said = _status(capsys, "--output", str(target))
    assert code == 0 and said.strip() == f"wrote {target}"
    assert [p.name for p in target.parent.iterdir()] == ["ingest_platform.prom"]  # no temp left
    families = _families(target.read_text())
    assert families["ingest_platform_stream_state"][(("state", "streaming"),)] == 1.0


def test_an_unreadable_heartbeat_is_state_unknown(world, capsys, monkeypatch):
    monkeypatch.chdir(world["home"])
    beat = Path(world["data"]) / "stream" / "kraken" / "heartbeat.json"
    saved = beat.read_text()
    try:
        beat.write_text(json.dumps({"state": "streaming", "updated_at": "yesterday"}))
        _, text = _status(capsys)
    finally:
        beat.write_text(saved)
    metrics = _families(text)
    assert metrics["ingest_platform_stream_state"][(("state", "unknown"),)] == 1.0
    assert (
        "ingest_platform_stream_heartbeat_age_seconds" not in metrics
        or not metrics["ingest_platform_stream_heartbeat_age_seconds"]
    )
