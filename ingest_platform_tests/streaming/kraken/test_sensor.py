"""The stream sensor: the plain decision rule, then the sensor on a real instance."""

from __future__ import annotations

import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunRequest, SkipReason, build_sensor_context

from ingest_platform.streaming.kraken.heartbeat import parse_heartbeat, write_heartbeat
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.resources import KrakenStream
from ingest_platform.streaming.kraken.sensor import (
    StreamRun,
    decide_stream_runs,
    kraken_stream_sensor,
)

NOW = 1_800_000_000.0


def _run(run_id, status="STARTED", age=3600.0):
    return StreamRun(run_id, status, created_at=NOW - age - 5, started_at=NOW - age)


def _beat(run_id, age=1.0, **extra):
    return parse_heartbeat(
        {"run_id": run_id, "updated_at": NOW - age, "state": "streaming", **extra}
    )


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


@pytest.mark.parametrize(
    "content",
    [
        '{"state": "halted", "updated_at": 1.0, "halt": {"reason": "x", "at": "yesterday"}}',
        '{"state": "halted", "updated_at": 1.0, "halt": "boom"}',
        '{"run_id": "r", "state": "streaming", "updated_at": "soon"}',
        "{not json",
        "[1, 2]",
    ],
    ids=["halt.at text", "halt text", "updated_at text", "not json", "not an object"],
)
def test_a_malformed_heartbeat_file_never_crashes_the_sensor(tmp_path, content):
    """Unreadable: the stream's liveness is unknown, decided like a stale heartbeat, and said."""
    root = tmp_path / "log"
    root.mkdir()
    (root / "heartbeat.json").write_text(content)
    with DagsterInstance.ephemeral() as instance:

        def evaluate(**settings):
            stream = KrakenStream(log_root=str(root), **settings)
            context = build_sensor_context(instance=instance, resources={"kraken_stream": stream})
            return kraken_stream_sensor(context)

        request = evaluate()  # no run: launch one, saying why
        assert isinstance(request, RunRequest)
        assert "heartbeat file unreadable" in request.tags["ingest_platform/launch_reason"]

        running = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.STARTED)
        waiting = evaluate()  # a run just started: it gets its grace period to write one
        assert isinstance(waiting, SkipReason)
        assert "heartbeat file unreadable" in waiting.skip_message
        assert not instance.get_run_by_id(running.run_id).is_finished

        replaced = evaluate(start_grace_seconds=1e-6)  # had its time: replaced, as if stale
        assert isinstance(replaced, RunRequest)
        assert "heartbeat file unreadable" in replaced.tags["ingest_platform/launch_reason"]
        assert instance.get_run_by_id(running.run_id).is_finished


def test_the_same_situation_never_launches_two_runs(tmp_path):
    """The run key names the run the new one follows, so a repeated evaluation is deduped."""
    root = tmp_path / "log"
    with DagsterInstance.ephemeral() as instance:

        def evaluate():
            stream = KrakenStream(log_root=str(root))
            context = build_sensor_context(instance=instance, resources={"kraken_stream": stream})
            return kraken_stream_sensor(context)

        first, again = evaluate(), evaluate()
        assert isinstance(first, RunRequest) and first.run_key == again.run_key
        assert first.tags["dagster/max_retries"] == "0"
        assert first.tags["dagster/max_runtime"] == "0"

        failed = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.FAILURE)
        after_failure = evaluate()
        assert after_failure.run_key != first.run_key and failed.run_id in after_failure.run_key

        running = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.STARTED)
        write_heartbeat(root, {"run_id": running.run_id, "updated_at": time.time() - 3600})
        replacing = evaluate()  # stale: cancelled and replaced ...
        assert isinstance(replacing, RunRequest) and running.run_id in replacing.run_key
        assert instance.get_run_by_id(running.run_id).is_finished
        assert evaluate().run_key == replacing.run_key  # ... once, however often it is asked


def test_the_sensor_shows_the_bus_health_beside_a_live_stream(tmp_path):
    """A bus that is down never replaces the stream run (the book does not need it)."""
    root = tmp_path / "log"
    with DagsterInstance.ephemeral() as instance:
        running = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.STARTED)
        bus = {"state": "down", "buffered": 812, "dropped": 0, "unacked": 3, "gaps": 1,
               "last_error": "NATS at nats://127.0.0.1:4222 unreachable"}  # fmt: skip
        write_heartbeat(
            root,
            {"run_id": running.run_id, "state": "streaming", "updated_at": time.time(), "bus": bus},
        )
        stream = KrakenStream(log_root=str(root))
        with build_sensor_context(instance=instance, resources={"kraken_stream": stream}) as ctx:
            result = kraken_stream_sensor(ctx)
        assert isinstance(result, SkipReason)
        assert f"keeping run {running.run_id}" in result.skip_message
        assert "bus down: 812 buffered, 0 dropped, 3 unacked, 1 gaps (NATS at" in (
            result.skip_message
        )
        assert not instance.get_run_by_id(running.run_id).is_finished
