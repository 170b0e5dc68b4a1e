"""The consumer's rules (`BookRebuilder`), ``ingest-platform kraken-tail`` against a real
server, and the stream configuration check."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dagster import Failure

from ingest_platform.cli import main
from ingest_platform.streaming.kraken.book import KrakenBook, kraken_book_checksum
from ingest_platform.streaming.kraken.consume import BookRebuilder, ChecksumMismatch, Outcome
from ingest_platform.streaming.kraken.fanout import message as m
from ingest_platform.streaming.kraken.fanout.bus import (
    JetStreamBus,
    StreamConfigMismatch,
    StreamSpec,
)
from ingest_platform.streaming.kraken.job import check_bus
from ingest_platform.streaming.kraken.resources import KrakenFanout

BIDS = [("100.0", "1.0"), ("99.5", "2.0")]
ASKS = [("100.5", "1.5"), ("101.0", "3.0")]


def _checksum(bids, asks) -> int:
    return kraken_book_checksum(asks, bids, 1, 8)


def _events(epoch: int = 1, pair: str = "BTC/USD") -> list[dict[str, Any]]:
    """A snapshot and two updates whose checksums are Kraken's for the resulting book."""
    snap = m.book_event(pair, epoch, 0, "snapshot", m.level_list(BIDS), m.level_list(ASKS),
                        _checksum(BIDS, ASKS), 10, 1, 8, None, 1)  # fmt: skip
    bids1 = [("100.2", "0.5"), *BIDS]
    up1 = m.book_event(pair, epoch, 1, "update", [["100.2", "0.5"]], [],
                       _checksum(bids1, ASKS), 10, 1, 8, "t", 2)  # fmt: skip
    asks2 = ASKS[1:]
    up2 = m.book_event(pair, epoch, 2, "update", [], [["100.5", "0"]],
                       _checksum(bids1, asks2), 10, 1, 8, "t", 3)  # fmt: skip
    return [snap, up1, up2]


def test_the_rebuilder_verifies_each_event_and_names_a_mismatch():
    rebuilder = BookRebuilder()
    assert [rebuilder.apply(e) for e in _events()] == [Outcome.VERIFIED] * 3
    bid, ask = rebuilder.top("BTC/USD")
    assert str(bid[0]) == "100.2" and str(ask[0]) == "101.0"
    bad = {**_events()[1], "seq": 3, "checksum": 12345}
    with pytest.raises(ChecksumMismatch, match="pair BTC/USD epoch 1 seq 3"):
        rebuilder.apply(bad)


def _periodic_snapshot(seq: int, epoch: int = 1) -> dict[str, Any]:
    """The snapshot the stream publishes after ``_events``' two updates."""
    bids, asks = [("100.2", "0.5"), *BIDS], ASKS[1:]
    return m.book_event("BTC/USD", epoch, seq, "snapshot", m.level_list(bids),
                        m.level_list(asks), _checksum(bids, asks), 10, 1, 8, None, 4)  # fmt: skip


def test_a_late_joiner_waits_for_a_snapshot_and_a_gap_waits_for_the_next_one():
    snap, up1, up2 = _events()
    late = BookRebuilder()
    assert [late.apply(e) for e in (up1, up2)] == [Outcome.WAITING] * 2  # joined mid-epoch
    assert late.apply(_periodic_snapshot(3)) is Outcome.VERIFIED  # ... starts at the next one
    rebuilder = BookRebuilder()
    assert rebuilder.apply(snap) is Outcome.VERIFIED
    assert rebuilder.apply(up2) is Outcome.GAP  # seq 1 never came
    assert rebuilder.apply(up1) is Outcome.DUPLICATE  # late, and already written off
    assert rebuilder.apply(_periodic_snapshot(3)) is Outcome.VERIFIED  # resynced
    snap2, up1b, _ = _events(epoch=2)
    assert rebuilder.apply(up1b) is Outcome.WAITING  # a new epoch: wait for its snapshot
    assert rebuilder.apply(snap2) is Outcome.DUPLICATE  # seq 0 < 2 already passed by
    assert rebuilder.apply(_periodic_snapshot(2, epoch=2)) is Outcome.VERIFIED
    assert rebuilder.apply(up1) is Outcome.DUPLICATE  # an older epoch
    totals = rebuilder.totals()
    assert totals["gaps"] == 1 and totals["epochs"] == 1 and totals["waiting"] == 2


def test_a_snapshot_the_stream_makes_reverifies_like_the_exchanges():
    book = KrakenBook("BTC/USD", 10, 1, 8)
    snap = _events()[0]
    book.apply_snapshot({"symbol": "BTC/USD", "checksum": snap["checksum"],
                         "bids": [{"price": p, "qty": q} for p, q in BIDS],
                         "asks": [{"price": p, "qty": q} for p, q in ASKS]})  # fmt: skip
    bids, asks = m.book_levels(book)
    made = m.book_event("BTC/USD", 1, 0, "snapshot", bids, asks, book.checksum(), 10, 1, 8,
                        None, 1)  # fmt: skip
    assert BookRebuilder().apply(made) is Outcome.VERIFIED


async def _publish(url: str, events: list[dict[str, Any]]) -> None:
    bus = JetStreamBus(url)
    await bus.connect()
    await bus.ensure_stream(StreamSpec())
    for event in events:
        msg_id = m.book_msg_id(event["pair"], event["epoch"], event["seq"])
        ack = await bus.publish(m.subject("book", event["pair"]), m.encode(event), msg_id)
        await asyncio.wait_for(ack, 5)
    await bus.close()


def test_kraken_tail_prints_tops_and_exits_nonzero_naming_a_mismatch(nats_server, capsys):
    asyncio.run(_publish(nats_server.url, _events() + _events(pair="ETH/USD")))
    args = ["kraken-tail", "--url", nats_server.url, "--idle", "1"]
    assert main([*args, "--from-start", "--pair", "ETH/USD"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.startswith("ETH/USD epoch 1") for line in lines)
    assert lines[-1].endswith("bid 0.50000000 @ 100.2 | ask 3.00000000 @ 101.0")
    assert "3 book events re-verified" in err
    assert main([*args, "--last", "2"]) == 0  # the last two: updates, so it waits for a snapshot
    out, err = capsys.readouterr()
    assert out == "" and "0 book events re-verified" in err and "2 waiting" in err
    bad = {**_events()[1], "seq": 3, "checksum": 999}
    asyncio.run(_publish(nats_server.url, [bad]))
    assert main([*args, "--from-start"]) == 1
    _, err = capsys.readouterr()
    assert "checksum mismatch: pair BTC/USD epoch 1 seq 3" in err


def test_kraken_tail_without_a_server_exits_2(capsys):
    assert main(["kraken-tail", "--url", "nats://127.0.0.1:9", "--idle", "1"]) == 2
    assert "cannot read KRAKEN at nats://127.0.0.1:9" in capsys.readouterr().err


def test_a_stream_configured_otherwise_is_a_clear_error_never_reconfigured(nats_server):
    async def create_other() -> None:
        bus = JetStreamBus(nats_server.url)
        await bus.connect()
        await bus.ensure_stream(StreamSpec(max_age_seconds=600.0, replicas=1))
        with pytest.raises(StreamConfigMismatch, match=r"max_age: the bus has 600\.0, configured"):
            await bus.ensure_stream(StreamSpec())
        await bus.close()

    asyncio.run(create_other())
    with pytest.raises(Failure, match=r"exists with another configuration .*max_age"):
        check_bus(KrakenFanout(nats_url=nats_server.url))
    assert check_bus(KrakenFanout(nats_url=nats_server.url, max_age_seconds=600.0)) is None
    unreachable = check_bus(KrakenFanout(nats_url="nats://ops:s3cret@127.0.0.1:9"), timeout=3)
    assert unreachable is not None and "nats://***@127.0.0.1:9" in unreachable
    assert "s3cret" not in unreachable
