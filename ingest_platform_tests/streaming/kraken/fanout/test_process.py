"""The publisher in a process of its own (`FanoutProcess`): the hand-over from the stream's loop,
and the child's death or stall, which the stream notices, writes down and recovers from
without its book or its log ever waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from decimal import Decimal
from typing import Any

import pyarrow.compute as pc
import pytest

from ingest_platform.streaming.kraken.fanout.bus import Ack, JetStreamBus, StreamSpec
from ingest_platform.streaming.kraken.fanout.process import FanoutProcess, FrameReader, encode_frame
from ingest_platform.streaming.kraken.fanout.publisher import BUS_GAP_CHANNEL, FanoutSettings
from ingest_platform.streaming.kraken.log.replay import replay
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform_tests.streaming.kraken.fanout.test_faults import (
    PAIRS,
    _missing_covered_by_gaps,
    _stream,
    _tail,
)


def test_frames_survive_any_split_of_the_pipe_and_keep_the_received_text():
    items = [
        ("b", "BTC/USD", "update", (("50000.1", "0.00100000"),), (), 123, 10, 1, 8, None, 17),
        ("f", "trade", "BTC/USD", "update", {"price": "1.50", "qty": "2"}, 18),
        ("h", {"reason": "checksum_mismatch", "detail": "ü", "at": 1.5}),
    ]
    odd = ("config", Decimal("1.10"))  # not marshal's: pickled instead, the same value back
    data = encode_frame(items) + encode_frame([odd]) + encode_frame([])
    for step in (1, 3, 7, len(data)):
        reader = FrameReader()
        frames: list[Any] = []
        for start in range(0, len(data), step):
            frames += reader.feed(data[start : start + step])
        assert frames == [items, [odd], []]
        assert str(frames[1][0][1]) == "1.10"


def _process(url: str, **settings: Any) -> FanoutProcess:
    values: dict[str, Any] = {"snapshot_every": 20, "ack_timeout": 1.0, "retry_delay": 0.1}
    return FanoutProcess(
        JetStreamBus(url),
        PAIRS,
        FanoutSettings(**{**values, **settings, "stream": StreamSpec()}),
        restart_delay=0.2,
    )


async def _new_child(publisher: FanoutProcess, old_pid: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = publisher.report()["process"]["pid"]
        if pid is not None and pid != old_pid and publisher.ready:
            return int(pid)
        await asyncio.sleep(0.02)
    raise AssertionError("no new publisher process became ready")


@pytest.mark.slow
def test_a_killed_publisher_is_written_down_and_restarted_and_the_book_never_waits(
    tmp_path, sandbox, fast_config, nats_server
):
    server = sandbox(rate=300.0)
    publisher = _process(nats_server.url)
    seen: dict[str, Any] = {}

    async def kill_it(client):
        await asyncio.sleep(0.8)
        pid = publisher.report()["process"]["pid"]
        seen["books_before"] = client.protocol.stats.book_messages
        os.kill(pid, signal.SIGKILL)
        seen["new_pid"] = await _new_child(publisher, pid)
        seen["during"] = publisher.report()
        seen["books_after_restart"] = client.protocol.stats.book_messages
        seen["pid"] = pid

    async def main():
        return await _stream(server.url, tmp_path / "log", fast_config(), publisher, 3.0, kill_it)

    result, _ = asyncio.run(main())
    assert result.outcome == "stopped" and result.halt is None
    assert result.stats["gaps"] == 0 and replay(tmp_path / "log").ok  # the book never waited
    assert result.stats["book_messages"] > seen["books_after_restart"] > seen["books_before"]
    bus = result.stats["bus"]
    assert bus["process"]["restarts"] >= 1 and bus["state"] == "stopped"
    assert seen["during"]["state"] == "connected"
    gaps = read_kind(tmp_path / "log", "gap").filter(pc.field("channel") == BUS_GAP_CHANNEL)
    died = gaps.filter(pc.field("reason") == "publisher_died")
    assert sorted(died.column("symbol").to_pylist()) == sorted(PAIRS)  # one row per pair
    assert "exit code -9" in died.column("detail")[0].as_py()
    assert [g["pair"] for g in publisher.recent_gaps if g["reason"] == "publisher_died"] == list(
        PAIRS
    )
    tailed, events = _tail(nats_server.url, from_start=True)
    totals = tailed.rebuilder.totals()
    books = [e for e in events if e["kind"] == "book"]
    assert totals["verified"] == len(books) - totals["waiting"]
    # every pair went on in a new epoch that starts with a snapshot of the stream's book,
    # which the new child asked for: the consumer re-verifies it
    for pair in PAIRS:
        epochs = sorted({e["epoch"] for e in books if e["pair"] == pair})
        assert len(epochs) >= 2, (pair, epochs)
        last = [e for e in books if e["pair"] == pair and e["epoch"] == epochs[-1]]
        assert last[0]["seq"] == 0 and last[0]["type"] == "snapshot" and len(last) > 20
    _missing_covered_by_gaps(events, list(publisher.recent_gaps))


@pytest.mark.slow
def test_a_publisher_that_stops_reading_is_killed_and_replaced(
    tmp_path, sandbox, fast_config, nats_server
):
    server = sandbox(rate=300.0)
    publisher = _process(nats_server.url)
    publisher.max_handover_bytes = 20_000  # ~100 book items
    seen: dict[str, Any] = {}

    async def freeze_it(client):
        await asyncio.sleep(0.5)
        pid = publisher.report()["process"]["pid"]
        os.kill(pid, signal.SIGSTOP)  # alive, but reads nothing
        seen["new_pid"] = await _new_child(publisher, pid)
        seen["pid"] = pid

    async def main():
        return await _stream(server.url, tmp_path / "log", fast_config(), publisher, 3.0, freeze_it)

    result, _ = asyncio.run(main())
    assert result.outcome == "stopped" and result.stats["gaps"] == 0
    with pytest.raises(ProcessLookupError):
        os.kill(seen["pid"], 0)  # killed and reaped
    gaps = read_kind(tmp_path / "log", "gap").filter(pc.field("channel") == BUS_GAP_CHANNEL)
    assert "publisher_stalled" in set(gaps.column("reason").to_pylist())
    tailed, events = _tail(nats_server.url, from_start=True)
    assert tailed.rebuilder.totals()["verified"] > 100
    _missing_covered_by_gaps(events, list(publisher.recent_gaps))


class _FailingOnceBus(JetStreamBus):
    """The first publisher process to publish meets a bug (not a `BusError`); the next one,
    restarted by the stream, does not (a file says it happened: processes share nothing else)."""

    def __init__(self, url: str, marker: str) -> None:
        super().__init__(url)
        self.marker = marker

    async def publish(
        self, subject: str, payload: bytes, msg_id: str, confirm: bool = True
    ) -> asyncio.Future[Ack]:
        if not os.path.exists(self.marker):
            with open(self.marker, "w"):
                pass
            raise RuntimeError("a bug in the publisher")
        return await super().publish(subject, payload, msg_id, confirm)


@pytest.mark.slow
def test_a_publisher_that_fails_is_counted_dead_with_its_traceback_and_replaced(
    tmp_path, sandbox, fast_config, nats_server, caplog
):
    server = sandbox(rate=300.0)
    bus = _FailingOnceBus(nats_server.url, str(tmp_path / "failed-once"))
    publisher = FanoutProcess(
        bus, PAIRS, FanoutSettings(snapshot_every=20, retry_delay=0.1), restart_delay=0.2
    )

    async def main():
        return await _stream(server.url, tmp_path / "log", fast_config(), publisher, 3.0)

    result, _ = asyncio.run(main())
    assert result.outcome == "stopped" and result.stats["gaps"] == 0
    assert result.stats["bus"]["process"]["restarts"] == 1
    assert "RuntimeError: a bug in the publisher" in caplog.text  # the child's traceback
    gaps = read_kind(tmp_path / "log", "gap").filter(pc.field("channel") == BUS_GAP_CHANNEL)
    assert set(gaps.column("reason").to_pylist()) == {"publisher_died"}
    tailed, _ = _tail(nats_server.url, from_start=True)
    assert tailed.rebuilder.totals()["verified"] > 100  # the second process published
