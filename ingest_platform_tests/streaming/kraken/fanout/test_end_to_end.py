"""Sandbox -> the stream op -> NATS JetStream -> a consumer that re-verifies every checksum."""

from __future__ import annotations

import asyncio

import jsonschema
import pyarrow.compute as pc
import pytest
from dagster import DagsterEventType, DagsterInstance

from ingest_platform.streaming.kraken import consume
from ingest_platform.streaming.kraken.fanout.message import load_schema
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.log.replay import replay
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform.streaming.kraken.resources import KrakenFanout

# A real stream against a real nats-server for seconds: CI's, not the inner loop's.
pytestmark = pytest.mark.slow


def _read_all(url: str, **options):
    validator = jsonschema.Draft202012Validator(load_schema())
    events: list[dict] = []

    def keep(event, outcome):
        validator.validate(event)
        events.append(event)

    result = asyncio.run(
        consume.tail(url, from_start=True, idle_seconds=1.0, on_event=keep, **options)
    )
    return result, events


def test_every_verified_book_reaches_the_bus_and_reverifies_at_the_consumer(
    tmp_path, sandbox, run_config, stream_resource, heartbeat, nats_server
):
    server = sandbox(rate=300.0)
    root = tmp_path / "log"
    fanout = KrakenFanout(nats_url=nats_server.url, snapshot_every=25)
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=run_config(2.5),
            resources={"kraken_stream": stream_resource(server.url, root), "kraken_fanout": fanout},
            instance=instance,
        )
    assert result.success
    last = [
        e.event_specific_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    ][-1]
    assert last["bus_state"].value == "stopped"
    assert last["bus_gaps"].value == 0 and last["bus_dropped"].value == 0
    assert last["bus_unacked"].value == 0

    tailed, events = _read_all(nats_server.url)
    totals = tailed.rebuilder.totals()
    books = [e for e in events if e["kind"] == "book"]
    assert len(books) > 200
    # 100 %: every book event re-verified, none skipped, no gap, no duplicate
    assert totals["verified"] == len(books)
    assert totals["waiting"] == totals["gaps"] == totals["duplicates"] == 0
    assert tailed.received == last["bus_published"].value
    # snapshots every 25 updates of a pair, and every epoch starts with one
    for pair in ("BTC/USD", "ETH/USD"):
        seqs = [(e["epoch"], e["seq"], e["type"]) for e in books if e["pair"] == pair]
        assert seqs[0][1:] == (0, "snapshot")
        assert [s for _, s, _ in seqs] == list(range(len(seqs)))  # one epoch, gapless
        assert sum(t == "snapshot" for *_, t in seqs) >= len(seqs) // 26
    # the consumer ends on the same book as the stream's log
    log = read_kind(root, "book").filter(pc.field("checksum_ok"))
    for pair, state in tailed.rebuilder.pairs.items():
        checksums = log.filter(pc.field("symbol") == pair).column("checksum").to_pylist()
        assert state.book is not None and state.book.checksum() == checksums[-1]
    assert replay(root).ok  # the bus changes nothing in the log
    states = [e["status"] for e in events if e["kind"] == "status" and e["scope"] == "connection"]
    assert states[0] == "streaming" and states[-1] == "stopped"
    assert {"exchange": "online"}.items() <= {
        e["scope"]: e["status"] for e in events if e["kind"] == "status"
    }.items()
    assert heartbeat(root)["bus"]["state"] == "stopped"
