"""The bus's credentials come from the environment through EnvVar and appear nowhere: not in
the run's events, its logs, the stream log, the heartbeat or any file the run wrote."""

from __future__ import annotations

import asyncio
import logging

import pytest
from dagster import DagsterEventType, DagsterInstance

from ingest_platform.streaming.kraken import consume
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.resources import (
    NATS_PASSWORD_ENV,
    NATS_URL_ENV,
    NATS_USER_ENV,
    fanout_resource,
)
from ingest_platform_tests.streaming.kraken.fanout.conftest import NATS_PASSWORD, NATS_USER

# A real stream against a real nats-server for seconds: CI's, not the inner loop's.
pytestmark = pytest.mark.slow


def test_the_nats_password_never_leaves_the_environment(
    tmp_path, sandbox, run_config, stream_resource, nats_server_with_auth, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    nats = nats_server_with_auth
    server = sandbox(rate=200.0)
    monkeypatch.setenv(NATS_URL_ENV, nats.url)
    monkeypatch.setenv(NATS_USER_ENV, NATS_USER)
    monkeypatch.setenv(NATS_PASSWORD_ENV, NATS_PASSWORD)
    fanout = fanout_resource()
    stream = stream_resource(server.url, tmp_path / "log")
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=run_config(1.5),
            resources={"kraken_stream": stream, "kraken_fanout": fanout},
            instance=instance,
        )
        events = "\n".join(repr(e) for e in result.all_events)
    assert result.success
    tailed = asyncio.run(
        consume.tail(
            nats.url,
            from_start=True,
            idle_seconds=1.0,
            connect_options={"user": NATS_USER, "password": NATS_PASSWORD},
        )
    )
    assert tailed.rebuilder.totals()["verified"] > 50  # it did publish, authenticated
    # a wrong password is reported without the password it was given
    monkeypatch.setenv(NATS_PASSWORD_ENV, "wrong-" + NATS_PASSWORD)
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=run_config(1.0),
            resources={"kraken_stream": stream, "kraken_fanout": fanout_resource()},
            instance=instance,
        )
        events += "\n".join(repr(e) for e in result.all_events)
        states = [
            e.event_specific_data.asset_observation.metadata["bus_state"].value
            for e in result.all_events
            if e.event_type == DagsterEventType.ASSET_OBSERVATION
        ]
    assert result.success  # the book never needs the bus
    assert "connected" not in states and states[0] in ("connecting", "down")
    for text, where in ((events, "events"), (caplog.text, "logs")):
        assert NATS_PASSWORD not in text, where  # the right one, and the wrong one around it
    leaked = [
        p for p in tmp_path.rglob("*")
        if p.is_file() and "nats-store" not in p.parts and NATS_PASSWORD.encode() in p.read_bytes()
    ]  # fmt: skip
    assert not leaked
