"""The fan-out under faults, against a real ``nats-server -js``: the server restarted mid-stream,
its storage full, a slow consumer, duplicate publishes after a reconnect, a consumer joining
late, a halt. In each: the book never waits, nothing the consumer verifies is wrong, and
everything the bus did not store is written down as a bus gap."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import pyarrow.compute as pc
import pytest

from ingest_platform.streaming.kraken import consume
from ingest_platform.streaming.kraken.fanout.bus import Ack, JetStreamBus, StreamSpec
from ingest_platform.streaming.kraken.fanout.process import FanoutProcess
from ingest_platform.streaming.kraken.fanout.publisher import BUS_GAP_CHANNEL, FanoutSettings
from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.log.replay import replay
from ingest_platform.streaming.kraken.log.segments import read_kind

# A real stream against a real nats-server for seconds: CI's, not the inner loop's.
pytestmark = pytest.mark.slow

PAIRS = ("BTC/USD", "ETH/USD")


def _publisher(url: str, bus: JetStreamBus | None = None, **settings: Any) -> FanoutProcess:
    """The publisher as the stream runs it: in a process of its own."""
    spec = settings.pop("stream", StreamSpec())
    values: dict[str, Any] = {"snapshot_every": 20, "ack_timeout": 1.0, "retry_delay": 0.1}
    return FanoutProcess(
        bus or JetStreamBus(url), PAIRS, FanoutSettings(**{**values, **settings, "stream": spec})
    )


async def _stream(server_url, root, settings, publisher, seconds, during=None):
    """Stream for ``seconds`` once the publisher is ready (its process started and connected,
    which takes a good part of a second on a busy machine), with ``during`` from then on."""
    client = open_stream(settings, server_url, root, fanout=publisher)
    task = asyncio.create_task(client.run())
    deadline = time.monotonic() + 20.0
    while not publisher.ready and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.01)
    assert publisher.ready, "the publisher process never connected"
    asyncio.get_running_loop().call_later(seconds, client.request_stop)
    if during is not None:
        await during(client)
    return await task, client


def _tail(url: str, **options: Any) -> tuple[consume.TailResult, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    options.setdefault("idle_seconds", 1.0)
    result = asyncio.run(
        consume.tail(url, on_event=lambda event, outcome: events.append(event), **options)
    )
    return result, events


def _seqs_by_epoch(events: list[dict[str, Any]]) -> dict[tuple[str, int], list[int]]:
    out: dict[tuple[str, int], list[int]] = defaultdict(list)
    for e in events:
        if e["kind"] == "book":
            out[(e["pair"], e["epoch"])].append(e["seq"])
    return out


def _missing_covered_by_gaps(events, gaps: list[dict[str, Any]]) -> None:
    """Every seq missing inside an epoch on the bus lies in a recorded bus gap."""
    recorded = defaultdict(set)
    for gap in gaps:
        if gap["kind"] == "book":
            recorded[(gap["pair"], gap["epoch"])].update(
                range(gap["seq_first"], gap["seq_last"] + 1)
            )
    for key, seqs in _seqs_by_epoch(events).items():
        assert seqs[0] == 0, f"{key} does not start at a snapshot"
        missing = set(range(seqs[-1] + 1)) - set(seqs)
        assert missing <= recorded[key], f"{key}: {sorted(missing - recorded[key])} lost unrecorded"


def test_a_server_restart_mid_stream_costs_a_new_epoch_never_a_wrong_book(
    tmp_path, sandbox, fast_config, nats_server
):
    server = sandbox(rate=300.0)
    publisher = _publisher(nats_server.url)

    async def restart_nats(client):
        await asyncio.sleep(1.2)
        await asyncio.to_thread(nats_server.restart, 1.0)

    async def main():
        return await _stream(
            server.url, tmp_path / "log", fast_config(), publisher, 4.0, restart_nats
        )

    result, _ = asyncio.run(main())
    assert result.outcome == "stopped" and result.halt is None  # the book never waited
    assert result.stats["gaps"] == 0  # ... and lost nothing: the bus is not the book
    assert replay(tmp_path / "log").ok
    bus = result.stats["bus"]
    assert bus["reconnects"] >= 1 and bus["state"] == "stopped"
    tailed, events = _tail(nats_server.url, from_start=True)
    totals = tailed.rebuilder.totals()
    assert (
        totals["verified"] == len([e for e in events if e["kind"] == "book"]) - (totals["waiting"])
    )
    assert totals["epochs"] >= len(PAIRS)  # each pair restarted after the bus came back
    assert totals["verified"] > 300
    _missing_covered_by_gaps(events, list(publisher.recent_gaps))
    assert bus["unacked"] == sum(g["lost"] for g in publisher.recent_gaps)


def test_a_full_stream_refuses_events_that_become_recorded_bus_gaps(
    tmp_path, sandbox, fast_config, nats_server
):
    server = sandbox(rate=300.0)
    spec = StreamSpec(max_bytes=96 * 1024, discard="new")
    publisher = _publisher(nats_server.url, stream=spec, max_attempts=1)

    async def main():
        return await _stream(server.url, tmp_path / "log", fast_config(), publisher, 3.0)

    result, _ = asyncio.run(main())
    assert result.outcome == "stopped" and result.stats["gaps"] == 0
    bus = result.stats["bus"]
    assert bus["unacked"] > 0 and bus["gaps"] > 0
    assert "maximum bytes" in (publisher.stats.last_error or "").lower() or bus["unacked"]
    gaps = read_kind(tmp_path / "log", "gap").filter(pc.field("channel") == BUS_GAP_CHANNEL)
    assert gaps.num_rows == bus["gaps"]
    assert set(gaps.column("reason").to_pylist()) == {"unacked"}
    assert replay(tmp_path / "log").ok  # bus gaps are not book gaps
    tailed, events = _tail(nats_server.url, from_start=True)
    assert tailed.rebuilder.totals()["verified"] > 0  # what was stored still re-verifies
    _missing_covered_by_gaps(events, list(publisher.recent_gaps))


def test_a_slow_consumer_still_gets_and_verifies_everything(
    tmp_path, sandbox, fast_config, nats_server
):
    server = sandbox(rate=400.0)
    publisher = _publisher(nats_server.url)
    slow: dict[str, Any] = {}

    async def consume_slowly(client):
        def dawdle(event, outcome):
            if event["kind"] == "book" and event["seq"] % 50 == 0:
                time.sleep(0.05)  # a consumer that blocks its own loop now and then

        while not publisher.ready:  # the stream on the bus exists once the publisher connected
            await asyncio.sleep(0.01)
        slow["result"] = await consume.tail(
            nats_server.url, from_start=True, idle_seconds=2.0, on_event=dawdle
        )

    async def main():
        return await _stream(
            server.url, tmp_path / "log", fast_config(), publisher, 2.5, consume_slowly
        )

    result, _ = asyncio.run(main())
    bus = result.stats["bus"]
    assert bus["dropped"] == bus["unacked"] == 0 and bus["gaps"] == 0
    totals = slow["result"].rebuilder.totals()
    assert totals["verified"] == slow["result"].events["book"] > 300
    assert totals["gaps"] == totals["waiting"] == 0


class _AckLosingBus(JetStreamBus):
    """The first ``lose`` acknowledgements never arrive (as when the connection drops after
    the server stored the event): the publisher must send those events again."""

    def __init__(self, url: str, lose: int) -> None:
        super().__init__(url)
        self.lose = lose

    async def publish(
        self, subject: str, payload: bytes, msg_id: str, confirm: bool = True
    ) -> asyncio.Future[Ack]:
        future = await super().publish(subject, payload, msg_id, confirm)
        if self.lose <= 0:
            return future
        self.lose -= 1
        return asyncio.get_running_loop().create_future()  # the ack that never comes


def test_events_sent_again_after_a_lost_ack_are_stored_once(
    tmp_path, sandbox, fast_config, nats_server
):
    server = sandbox(rate=200.0)
    publisher = _publisher(
        nats_server.url, _AckLosingBus(nats_server.url, lose=30), ack_timeout=0.3
    )

    async def main():
        return await _stream(server.url, tmp_path / "log", fast_config(), publisher, 2.0)

    result, _ = asyncio.run(main())
    bus = result.stats["bus"]
    assert bus["retried"] >= 30 and bus["duplicates"] >= 30  # JetStream dropped the repeats
    assert bus["unacked"] == 0 and bus["gaps"] == 0
    tailed, events = _tail(nats_server.url, from_start=True)
    ids = [(e["pair"], e["epoch"], e["seq"]) for e in events if e["kind"] == "book"]
    assert len(ids) == len(set(ids))  # stored once each
    assert tailed.rebuilder.totals()["duplicates"] == 0
    assert tailed.rebuilder.totals()["verified"] == len(ids)


def test_a_late_joiner_starts_at_the_next_snapshot(tmp_path, sandbox, fast_config, nats_server):
    server = sandbox(rate=300.0)
    publisher = _publisher(nats_server.url, snapshot_every=40)
    late: dict[str, Any] = {}

    async def join_late(client):
        await asyncio.sleep(1.0)  # the stream is well into its first epoch
        assert publisher.ready
        seen: list[tuple[str, consume.Outcome | None]] = []
        late["result"] = await consume.tail(
            nats_server.url,
            pair="BTC/USD",
            idle_seconds=1.5,
            on_event=lambda e, o: seen.append((e.get("type", e["kind"]), o)),
        )
        late["seen"] = seen

    async def main():
        return await _stream(server.url, tmp_path / "log", fast_config(), publisher, 3.0, join_late)

    asyncio.run(main())
    seen = [(t, o) for t, o in late["seen"] if o is not None]
    first = next(i for i, (_, o) in enumerate(seen) if o is consume.Outcome.VERIFIED)
    assert seen[first][0] == "snapshot"
    assert all(o is consume.Outcome.WAITING for _, o in seen[:first])
    assert first > 0  # it did join mid-epoch
    assert set(late["result"].rebuilder.pairs) == {"BTC/USD"}
    assert late["result"].rebuilder.totals()["verified"] == len(seen) - first


def test_a_halt_is_the_last_event_published(tmp_path, sandbox, fast_config, nats_server):
    server = sandbox(rate=300.0)
    publisher = _publisher(nats_server.url)

    async def corrupt(client):
        await asyncio.sleep(1.0)
        server.faults.extend([{"kind": "corrupt_checksum", "symbol": "BTC/USD", "times": 1}] * 3)

    async def main():
        return await _stream(
            server.url, tmp_path / "log", fast_config(max_mismatches=2), publisher, 10.0, corrupt
        )

    result, _ = asyncio.run(main())
    assert result.outcome == "halted" and result.halt.reason == "checksum_mismatch"
    tailed, events = _tail(nats_server.url, from_start=True)
    assert events[-1]["kind"] == "halt" and events[-1]["reason"] == "checksum_mismatch"
    assert [e["kind"] for e in events].count("halt") == 1
    assert tailed.halt == events[-1]
    totals = tailed.rebuilder.totals()  # the corrupted updates never left the stream
    assert totals["verified"] == len([e for e in events if e["kind"] == "book"]) > 100


def test_a_bus_down_fills_the_buffer_drops_are_recorded_and_its_return_starts_new_epochs(
    tmp_path, sandbox, fast_config, nats_server
):
    server = sandbox(rate=300.0)
    publisher = _publisher(nats_server.url, buffer_size=100, ack_timeout=0.3, max_attempts=1)
    seen: dict[str, Any] = {}

    async def outage(client):
        await asyncio.sleep(0.8)
        await asyncio.to_thread(nats_server.stop)
        await asyncio.sleep(1.5)  # 300 msg/s against a 100-event buffer: it overflows
        seen["during"] = dict(publisher.report())
        seen["book_during"] = client.protocol.stats.book_messages
        await asyncio.to_thread(nats_server.start)

    async def main():
        return await _stream(server.url, tmp_path / "log", fast_config(), publisher, 4.5, outage)

    result, _ = asyncio.run(main())
    during = seen["during"]
    assert during["state"] == "down" and during["dropped"] > 0
    assert during["buffered"] <= 100  # bounded: the book went on without waiting
    assert result.stats["book_messages"] > seen["book_during"] and result.stats["gaps"] == 0
    bus = result.stats["bus"]
    assert bus["reconnects"] >= 1 and bus["state"] == "stopped"
    gaps = read_kind(tmp_path / "log", "gap").filter(pc.field("channel") == BUS_GAP_CHANNEL)
    reasons = set(gaps.column("reason").to_pylist())
    assert gaps.num_rows == bus["gaps"] > 0 and "buffer_full" in reasons
    tailed, events = _tail(nats_server.url, from_start=True)
    assert tailed.rebuilder.totals()["epochs"] >= len(PAIRS)  # new epochs after the return
    _missing_covered_by_gaps(events, list(publisher.recent_gaps))
