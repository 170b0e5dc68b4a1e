"""The stream op in real Dagster runs: success, halt, bad settings, cancellation, SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from dagster import (
    DagsterEventType,
    DagsterExecutionInterruptedError,
    DagsterInstance,
    Definitions,
)

from ingest_platform.core.settings import SANDBOX_KRAKEN_URL_ENV, project_root
from ingest_platform.streaming.kraken.assets import STREAM_ASSET_KEY
from ingest_platform.streaming.kraken.definitions import stream_definitions
from ingest_platform.streaming.kraken.job import kraken_stream_job, run_stream
from ingest_platform.streaming.kraken.log.replay import replay
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform_tests.streaming.kraken.fanout_off import FANOUT_OFF


@pytest.mark.slow
def test_the_stream_job_runs_in_a_real_dagster_run(
    tmp_path, sandbox, run_config, stream_resource, heartbeat
):
    server = sandbox()
    root = tmp_path / "log"
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=run_config(1.5),
            resources={"kraken_stream": stream_resource(server.url, root), **FANOUT_OFF},
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
    beat = heartbeat(root)
    assert beat["run_id"] == result.run_id and beat["state"] == "stopped"
    assert read_kind(root, "book").num_rows == last["book_messages"].value
    assert replay(root).ok
    assert server.counters.get("kraken.disconnect") == 1


def test_a_halt_fails_the_run_with_an_observation_and_an_alert_line(
    tmp_path, sandbox, run_config, stream_resource, heartbeat
):
    server = sandbox()
    stream = stream_resource(server.url, tmp_path / "log", pairs=["BTC/USD", "DOGE/USD"])
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=run_config(30),
            resources={"kraken_stream": stream, **FANOUT_OFF},
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
    assert heartbeat(tmp_path / "log")["state"] == "halted"


class _OpContext:
    """The op's context as far as `run_stream` uses it."""

    run_id = "interrupted-run"
    log = logging.getLogger("test.kraken.op")


def test_cancellation_in_the_op_loop_stops_the_client_in_finally(
    tmp_path, sandbox, stream_resource, heartbeat
):
    server = sandbox()
    root = tmp_path / "log"
    body = run_stream(_OpContext(), stream_resource(server.url, root))  # streams until cancelled
    started = time.monotonic()
    observations = [next(body), next(body)]
    assert all(o.asset_key == STREAM_ASSET_KEY for o in observations)
    # What a run cancellation does: the interrupt is raised where the op waits.
    with pytest.raises(DagsterExecutionInterruptedError):
        body.throw(DagsterExecutionInterruptedError())
    assert time.monotonic() - started < 10
    beat = heartbeat(root)
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
    from ingest_platform.streaming.kraken.job import kraken_stream_job
    from ingest_platform.streaming.kraken.resources import KrakenFanout, KrakenStream
    root = sys.argv[1]
    # Liveness limits well above a loaded CI machine's stalls: this test is about clean
    # cancellation, and a spurious reconnect would change the disconnect count it checks.
    stream = KrakenStream(
        pairs=["BTC/USD", "ETH/USD"], log_root=root, heartbeat_interval=0.1,
        max_silence=10.0, max_heartbeat_interval=10.0, report_interval=0.3, freeze_gc=False,
    )
    with DagsterInstance.get() as instance:
        result = kraken_stream_job.execute_in_process(
            resources={"kraken_stream": stream, "kraken_fanout": KrakenFanout()},
            instance=instance,
            raise_on_error=False,
        )
        print("RUN", result.run_id, instance.get_run_by_id(result.run_id).status.value, flush=True)
    """
)


class _WriteOnceLog:
    """An op log that, like Dagster's event log under its lock, must not be written while a
    write is under way: `run_stream`'s generator can be closed by the garbage collector in the
    middle of one of Dagster's event writes, after an interrupt made Dagster abandon it."""

    def __init__(self) -> None:
        self.writing = False

    def _write(self, *args: object, **kwargs: object) -> None:
        assert not self.writing, "run_stream logged through the op's log while it was closing"

    info = warning = error = _write


def test_a_generator_closed_by_the_collector_stops_the_client_without_the_op_log(
    tmp_path, sandbox, stream_resource, heartbeat
):
    server = sandbox()
    root = tmp_path / "log"
    context = _OpContext()
    context.log = _WriteOnceLog()  # type: ignore[assignment]
    body = run_stream(context, stream_resource(server.url, root))
    next(body)
    context.log.writing = True  # what the collector interrupts: one of Dagster's event writes
    body.close()  # GeneratorExit at the yield, as when the abandoned generator is collected
    beat = heartbeat(root)
    assert beat["state"] == "stopped"
    assert read_kind(root, "book").num_rows == beat["stats"]["book_messages"]  # all flushed
    assert replay(root).ok


@pytest.mark.slow
def test_a_real_run_interrupted_by_a_signal_cleans_up(tmp_path, sandbox, heartbeat):
    server = sandbox()
    root = tmp_path / "log"
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(project_root()),
        SANDBOX_KRAKEN_URL_ENV: server.url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_UNTIL_SIGINT, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            beat = heartbeat(root)
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
    beat = heartbeat(root)
    assert beat["state"] == "stopped", err
    assert read_kind(root, "book").num_rows == beat["stats"]["book_messages"]
    assert replay(root).ok
    run_line = next(line for line in out.splitlines() if line.startswith("RUN "))
    assert run_line.split()[2] in ("CANCELED", "FAILURE"), out
    assert server.counters.get("kraken.disconnect") == 1


# ---- where the stream connects ---------------------------------------------------------------


def _stream_job(lake):
    """The stream job as the code location defines it (the environment read now)."""
    defs = Definitions.merge(stream_definitions(), Definitions(resources={"lake": lake}))
    return defs.resolve_job_def("kraken_stream_job")


def _observations(result) -> list:
    return [
        e.event_specific_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    ]


@pytest.mark.slow
def test_a_resource_override_keeps_the_sandbox_endpoint(tmp_path, sandbox, monkeypatch, lake):
    """The environment decides the endpoint: run config cannot switch a sandbox to production."""
    server = sandbox()
    monkeypatch.setenv(SANDBOX_KRAKEN_URL_ENV, server.url)
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path))
    job = _stream_job(lake)
    result = job.execute_in_process(
        run_config={
            "ops": {"kraken_stream": {"config": {"run_seconds": 2.0}}},
            # Any override rebuilds the resource from its defaults (even {}): only one that
            # keeps pytest's GC unfrozen here.
            "resources": {"kraken_stream": {"config": {"freeze_gc": False}}},
        },
        raise_on_error=False,
    )
    assert result.success
    assert server.counters.get("kraken.connect") == 1
    last = _observations(result)[-1]
    assert last["messages"].value > 0 and last["book_messages"].value > 0
    assert read_kind(tmp_path / "stream" / "kraken", "book").num_rows > 0


def test_a_run_that_never_connects_fails_with_the_reason(tmp_path, monkeypatch, lake):
    closed = "ws://127.0.0.1:9/v2"  # the discard port: nobody listens there
    monkeypatch.setenv(SANDBOX_KRAKEN_URL_ENV, closed)
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path))
    job = _stream_job(lake)
    result = job.execute_in_process(
        run_config={
            "ops": {"kraken_stream": {"config": {"run_seconds": 1.0}}},
            "resources": {
                "kraken_stream": {
                    "config": {"freeze_gc": False, "backoff_base": 0.05, "backoff_cap": 0.2}
                }
            },
        },
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    message = failure.event_specific_data.error.message
    assert "never subscribed" in message and closed in message
    assert "ConnectionRefusedError" in message or "Connect call failed" in message
