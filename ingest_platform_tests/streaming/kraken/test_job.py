"""Dagster: the stream op in real runs (success, halt, bad config, cancellation), the sensor,
the minute-bar compaction asset and the Definitions pieces definitions.py wires in."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterExecutionInterruptedError,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    SkipReason,
    build_sensor_context,
    materialize,
)

from ingest_platform.core.settings import project_root
from ingest_platform.streaming.kraken import job as stream_job
from ingest_platform.streaming.kraken.book import kraken_book_checksum
from ingest_platform.streaming.kraken.heartbeat import read_heartbeat, write_heartbeat
from ingest_platform.streaming.kraken.job import (
    JOB_NAME,
    STREAM_ASSET_KEY,
    STREAM_ASSETS,
    STREAM_JOBS,
    STREAM_RESOURCES,
    STREAM_SENSORS,
    KrakenStream,
    StreamRun,
    compact_day,
    decide_stream_runs,
    kraken_book_minute_bars,
    kraken_order_book_stream,
    kraken_stream_job,
    kraken_stream_sensor,
    run_stream,
    utc_day,
)
from ingest_platform.streaming.kraken.log import read_kind
from ingest_platform.streaming.kraken.log_writer import StreamLog
from ingest_platform.streaming.kraken.replay import replay
from ingest_platform.streaming.kraken.schemas import KrakenBookMinuteBars

FAST_RESOURCE = dict(
    heartbeat_interval=0.1,
    max_silence=0.5,
    max_heartbeat_interval=0.5,
    ping_interval=0.2,
    snapshot_timeout=3.0,
    backoff_base=0.05,
    backoff_cap=0.3,
    report_interval=0.3,
    top_interval=0.3,
    freeze_gc=False,  # never freeze the pytest process
)


def _stream(url: str, root, **overrides) -> KrakenStream:
    values = {"url": url, "pairs": ["BTC/USD", "ETH/USD"], "log_root": str(root)}
    return KrakenStream(**{**values, **FAST_RESOURCE, **overrides})


def _run_config(seconds: float) -> dict:
    return {"ops": {"kraken_stream": {"config": {"run_seconds": seconds}}}}


# ---- the op in real runs ---------------------------------------------------------------------


def test_the_stream_job_runs_in_a_real_dagster_run(tmp_path, sandbox):
    server = sandbox()
    root = tmp_path / "log"
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=_run_config(1.5),
            resources={"kraken_stream": _stream(server.url, root)},
            instance=instance,
        )
        assert result.success
        observations = [
            e.event_specific_data.asset_observation
            for e in result.all_events
            if e.event_type == DagsterEventType.ASSET_OBSERVATION
        ]
        run = instance.get_run_by_id(result.run_id)
    assert run.tags["dagster/max_runtime"] == "0"
    assert len(observations) >= 2 and {o.asset_key for o in observations} == {STREAM_ASSET_KEY}
    last = observations[-1].metadata
    assert last["state"].value == "stopped" and last["halted"].value is False
    assert last["messages"].value > 100 and last["gaps"].value == 0
    assert last["latency_p99_ms"].value > 0
    beat = read_heartbeat(root)
    assert beat["run_id"] == result.run_id and beat["state"] == "stopped"
    assert read_kind(root, "book").num_rows == last["book_messages"].value
    assert replay(root).ok
    assert server.counters.get("kraken.disconnect") == 1


def test_a_halt_fails_the_run_with_an_observation_and_an_alert_line(tmp_path, sandbox):
    server = sandbox()
    stream = _stream(server.url, tmp_path / "log", pairs=["BTC/USD", "DOGE/USD"])
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=_run_config(30),
            resources={"kraken_stream": stream},
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        failure = next(
            e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE
        )
        assert "Kraken stream halted: unknown_pairs" in failure.event_specific_data.error.message
        observations = [
            e.event_specific_data.asset_observation.metadata
            for e in result.all_events
            if e.event_type == DagsterEventType.ASSET_OBSERVATION
        ]
        assert observations and observations[-1]["halted"].value is True
        errors = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.ERROR
        ]
    assert any(m.startswith("KRAKEN_STREAM_HALT reason=unknown_pairs") for m in errors)
    assert read_heartbeat(tmp_path / "log")["state"] == "halted"


def test_invalid_settings_fail_the_run_with_a_clear_message(tmp_path):
    stream = _stream("ws://127.0.0.1:9/v2", tmp_path / "log", depth=20)
    result = kraken_stream_job.execute_in_process(
        run_config=_run_config(1), resources={"kraken_stream": stream}, raise_on_error=False
    )
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "invalid Kraken stream configuration" in message
    assert "StreamConfig.depth must be one of [10, 25, 100, 500, 1000], got 20" in message


class _OpContext:
    """The op's context as far as `run_stream` uses it."""

    run_id = "interrupted-run"
    log = logging.getLogger("test.kraken.op")


def test_cancellation_in_the_op_loop_stops_the_client_in_finally(tmp_path, sandbox):
    server = sandbox()
    root = tmp_path / "log"
    body = run_stream(_OpContext(), _stream(server.url, root))  # streams until cancelled
    started = time.monotonic()
    observations = [next(body), next(body)]
    assert all(o.asset_key == STREAM_ASSET_KEY for o in observations)
    # What a run cancellation does: the interrupt is raised where the op waits.
    with pytest.raises(DagsterExecutionInterruptedError):
        body.throw(DagsterExecutionInterruptedError())
    assert time.monotonic() - started < 10
    beat = read_heartbeat(root)
    assert beat["state"] == "stopped" and beat["run_id"] == "interrupted-run"
    book_rows = read_kind(root, "book").num_rows
    assert book_rows > 0 and book_rows == beat["stats"]["book_messages"]  # all flushed
    assert replay(root).ok
    deadline = time.monotonic() + 5
    while server.counters.get("kraken.disconnect") < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.counters.get("kraken.disconnect") == 1  # the socket was closed


_RUN_UNTIL_SIGINT = textwrap.dedent(
    """
    import sys
    from dagster import DagsterInstance
    from ingest_platform.streaming.kraken.job import KrakenStream, kraken_stream_job
    url, root = sys.argv[1], sys.argv[2]
    # Liveness limits well above a loaded CI machine's stalls: this test is about clean
    # cancellation, and a spurious reconnect would change the disconnect count it checks.
    stream = KrakenStream(
        url=url, pairs=["BTC/USD", "ETH/USD"], log_root=root, heartbeat_interval=0.1,
        max_silence=10.0, max_heartbeat_interval=10.0, report_interval=0.3, freeze_gc=False,
    )
    with DagsterInstance.get() as instance:
        result = kraken_stream_job.execute_in_process(
            resources={"kraken_stream": stream}, instance=instance, raise_on_error=False
        )
        print("RUN", result.run_id, instance.get_run_by_id(result.run_id).status.value, flush=True)
    """
)


def test_a_real_run_interrupted_by_a_signal_cleans_up(tmp_path, sandbox):
    server = sandbox()
    root = tmp_path / "log"
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(project_root())}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_UNTIL_SIGINT, server.url, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            beat = read_heartbeat(root)
            if beat and beat["state"] == "streaming" and beat["stats"]["book_messages"] > 50:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the stream never reached steady streaming")
        proc.send_signal(signal.SIGINT)  # what run termination delivers to the op's thread
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    beat = read_heartbeat(root)
    assert beat["state"] == "stopped", err
    assert read_kind(root, "book").num_rows == beat["stats"]["book_messages"]
    assert replay(root).ok
    run_line = next(line for line in out.splitlines() if line.startswith("RUN "))
    assert run_line.split()[2] in ("CANCELED", "FAILURE"), out
    assert server.counters.get("kraken.disconnect") == 1


# ---- the sensor ------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def _run(run_id, status="STARTED", age=3600.0):
    return StreamRun(run_id, status, created_at=NOW - age - 5, started_at=NOW - age)


def _beat(run_id, age=1.0, **extra):
    return {"run_id": run_id, "updated_at": NOW - age, "state": "streaming", **extra}


def _decide(runs, heartbeat):
    return decide_stream_runs(runs, heartbeat, NOW, stale_after=120, start_grace=180)


def test_sensor_launches_when_no_stream_run_exists():
    decision = _decide([], None)
    assert decision.launch and decision.terminate == ()


def test_sensor_keeps_a_healthy_run():
    decision = _decide([_run("a")], _beat("a", age=5))
    assert not decision.launch and decision.terminate == () and decision.keep == "a"


def test_sensor_replaces_a_run_whose_heartbeat_is_stale():
    decision = _decide([_run("a")], _beat("a", age=600))
    assert decision.launch and decision.terminate == ("a",)
    assert "heartbeat 600 s old" in decision.reason


def test_sensor_gives_a_new_run_time_to_write_its_first_heartbeat():
    assert not _decide([_run("b", age=30)], _beat("a", age=900)).launch
    late = _decide([_run("b", age=300)], _beat("a", age=900))
    assert late.launch and late.terminate == ("b",)


def test_sensor_leaves_queued_runs_to_the_queue():
    decision = _decide([_run("q", status="QUEUED", age=1000)], None)
    assert not decision.launch and decision.terminate == () and decision.keep == "q"


def test_sensor_keeps_one_of_two_runs():
    decision = _decide([_run("a", age=100), _run("b", age=50)], _beat("b"))
    assert decision.keep == "b" and decision.terminate == ("a",) and not decision.launch
    decision = _decide([_run("q", status="QUEUED"), _run("s", age=10)], None)
    assert decision.keep == "s" and decision.terminate == ("q",)


def test_sensor_waits_out_a_recent_halt():
    halted = _beat(
        "a", age=60, state="halted", halt={"reason": "checksum_mismatch", "at": NOW - 60}
    )
    decision = decide_stream_runs([], halted, NOW, 120, 180, halt_cooldown=600)
    assert not decision.launch and "halted" in decision.reason
    assert decide_stream_runs([], halted, NOW + 600, 120, 180, halt_cooldown=600).launch


def test_the_sensor_on_a_real_instance(tmp_path):
    root = tmp_path / "log"
    stream = KrakenStream(log_root=str(root))
    with DagsterInstance.ephemeral() as instance:

        def evaluate():
            context = build_sensor_context(instance=instance, resources={"kraken_stream": stream})
            return kraken_stream_sensor(context)

        request = evaluate()
        assert isinstance(request, RunRequest)
        assert request.tags["dagster/max_runtime"] == "0"

        running = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.STARTED)
        write_heartbeat(root, {"run_id": running.run_id, "updated_at": time.time()})
        assert isinstance(evaluate(), SkipReason)

        queued = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.NOT_STARTED)
        assert isinstance(evaluate(), SkipReason)  # keeps the running one ...
        assert instance.get_run_by_id(queued.run_id).is_finished  # ... cancels the extra

        write_heartbeat(root, {"run_id": running.run_id, "updated_at": time.time() - 3600})
        assert isinstance(evaluate(), RunRequest)  # stale: replaced
        assert instance.get_run_by_id(running.run_id).is_finished


# ---- compaction into minute bars -------------------------------------------------------------

DAY = "2026-11-02"
T = int(dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp() * 1_000_000)
SECOND = 1_000_000


def _book_message(kind, bids, asks, book, corrupt=False):
    """A BTC/USD (precisions 1/8) book frame whose checksum is ``book``'s after applying it.

    Prices and quantities are JSON numbers, written as their text, as Kraken sends them.
    """
    for side, levels in (("bids", bids), ("asks", asks)):
        for price, qty in levels:
            if qty == "0":
                book[side].pop(price, None)
            else:
                book[side][price] = qty
    checksum = kraken_book_checksum(book["asks"].items(), book["bids"].items(), 1, 8)

    def levels(pairs):
        return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in pairs)

    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD",'
        f'"bids":[{levels(bids)}],"asks":[{levels(asks)}],'
        f'"checksum":{checksum + (1 if corrupt else 0)}}}]}}'
    )


@pytest.fixture
def day_log(tmp_path, book_log_writer):
    """A hand-made day: three minutes of BTC/USD with a rejected update, a gap, trades."""
    root = tmp_path / "log"
    book = {"bids": {}, "asks": {}}
    frames = [
        _book_message(
            "snapshot", [("100.0", "1"), ("99.0", "1")], [("101.0", "1"), ("102.0", "1")], book
        ),  # mid 100.5, spread 1.0
        _book_message("update", [("100.5", "2")], [], book),  # mid 100.75, spread 0.5
        _book_message("update", [], [("101.0", "0")], book),  # mid 101.25, spread 1.5
        _book_message("update", [("101.5", "1")], [], {"bids": {}, "asks": {}}, corrupt=True),
        _book_message("snapshot", [("100.0", "1")], [("100.2", "1")], {"bids": {}, "asks": {}}),
    ]
    seconds = [10, 40, 65, 90, 130]
    assert book_log_writer(root, frames, [T + s * SECOND for s in seconds]) == [
        True,
        True,
        True,
        False,
        True,
    ]
    with StreamLog(root, session="s1", background=False) as log:
        start, end = T + 90 * SECOND, T + 130 * SECOND
        log.gap(end, "BTC/USD", "book", "checksum_mismatch", start, end, 2, 4)
        trade = {"symbol": "BTC/USD", "side": "buy", "ord_type": "market"}
        log.trade(T + 5 * SECOND, "snapshot", {**trade, "price": "90.0", "qty": "9", "trade_id": 0})
        log.trade(T + 20 * SECOND, "update", {**trade, "price": "100.5", "qty": "2", "trade_id": 1})
        log.trade(T + 50 * SECOND, "update", {**trade, "price": "101.0", "qty": "1", "trade_id": 2})
        log.trade(T + 55 * SECOND, "update", {**trade, "price": "101.0", "qty": "1", "trade_id": 2})
    return root


def test_minute_bars_from_a_hand_made_day(day_log, lake):
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars],
        selection=[kraken_book_minute_bars],
        partition_key=DAY,
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(day_log))},
    )
    assert result.success
    bars = lake.read("kraken_book_minute_bars", [DAY]).set_index("minute")
    minute = pd.Timestamp(DAY, tz="UTC")
    first = bars.loc[minute]
    assert (first.mid_open, first.mid_high, first.mid_low, first.mid_close) == (
        100.5,
        100.75,
        100.5,
        100.75,
    )
    assert (first.spread_mean, first.spread_min, first.spread_max) == (0.75, 0.5, 1.0)
    assert (first.book_updates, first.trades, first.trade_volume) == (2, 2, 3.0)
    assert first.trade_vwap == pytest.approx((100.5 * 2 + 101.0) / 3)
    assert not first.gap
    second = bars.loc[minute + pd.Timedelta(minutes=1)]
    assert (second.mid_open, second.mid_close, second.spread_mean) == (101.25, 101.25, 1.5)
    assert second.book_updates == 1 and second.trades == 0 and pd.isna(second.trade_vwap)
    assert second.gap  # the rejected update at 00:01:30 opened a gap
    third = bars.loc[minute + pd.Timedelta(minutes=2)]
    assert third.mid_close == pytest.approx(100.1) and third.spread_max == pytest.approx(0.2)
    assert third.gap
    assert len(bars) == 3
    (mat,) = result.asset_materializations_for_node("kraken_book_minute_bars")
    assert mat.metadata["dagster/row_count"].value == 3
    assert mat.metadata["book_rows_verified"].value == 4
    assert mat.metadata["book_rows_rejected_live"].value == 1


def test_compaction_refuses_a_day_that_does_not_verify(day_log, lake):
    table_path = next((day_log / "book").rglob("*.parquet"))
    table = pq.read_table(table_path)
    rows = table.to_pylist()
    rows[1]["bids"][0]["qty"] = "3"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), table_path)
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars],
        selection=[kraken_book_minute_bars],
        partition_key=DAY,
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(day_log))},
        raise_on_error=False,
    )
    assert not result.success
    assert not lake.has_partition("kraken_book_minute_bars", DAY)


def test_compaction_of_a_streamed_day(tmp_path, sandbox):
    """Today's partition only exists once the day is over, so the plain function does today."""
    server = sandbox()
    root = tmp_path / "log"
    kraken_stream_job.execute_in_process(
        run_config=_run_config(1.0), resources={"kraken_stream": _stream(server.url, root)}
    )
    bars, verification = compact_day(root, utc_day(time.time()))
    assert verification.ok and verification.verified == read_kind(root, "book").num_rows
    assert set(bars["symbol"]) == {"BTC/USD", "ETH/USD"}
    assert bars["book_updates"].sum() == verification.verified
    assert (bars["spread_min"] > 0).all() and not bars["gap"].any()
    assert (bars["trades"] > 0).any()
    KrakenBookMinuteBars.validate(bars)


# ---- what definitions.py wires ---------------------------------------------------------------


def test_the_exported_pieces_load_as_definitions(lake):
    defs = Definitions(
        assets=list(STREAM_ASSETS),
        jobs=list(STREAM_JOBS),
        sensors=list(STREAM_SENSORS),
        resources={**STREAM_RESOURCES, "lake": lake},
    )
    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(JOB_NAME).tags["dagster/max_runtime"] == "0"
    sensor = defs.resolve_sensor_def("kraken_stream_sensor")
    assert sensor.minimum_interval_seconds == 30
    assert sensor.default_status.value == "STOPPED"
    assert AssetKey("kraken_book_minute_bars") in {
        key for a in defs.resolve_all_asset_specs() for key in [a.key]
    }
    # Settings resolve paths at use, not import: the log root follows the data dir.
    assert stream_job.KrakenStream().log_path().parts[-2:] == ("stream", "kraken")
