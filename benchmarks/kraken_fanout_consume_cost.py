"""CPU per message of reading the fan-out back: a pull consumer's ``fetch`` against a push
consumer, with and without re-verifying the books.

Publishes ``--events`` book updates (checksums computed by a real `KrakenBook`, a snapshot
every 1,000, two pairs) through `FanoutPublisher` onto a ``nats-server -js`` of its own, then
reads all of them back from the start, in turn, A B A B: through a pull consumer
(``js.pull_subscribe`` + ``fetch(512)``, what `consume.tail` did before) and through a push
consumer without acknowledgements (what `consume.tail` does now), each either only receiving
or also decoding and re-verifying every book with `consume.BookRebuilder`. CPU time of the
reading process over the read, per message; medians of ``--repeat``.

    .venv/bin/python benchmarks/kraken_fanout_consume_cost.py --events 20000 --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from _common import nats_server  # the script's folder is on sys.path
from kraken_fanout_publish_cost import PAIRS, _levels

from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.consume import BookRebuilder, Outcome
from ingest_platform.streaming.kraken.fanout.bus import JetStreamBus, StreamSpec
from ingest_platform.streaming.kraken.fanout.message import BookSnapshot, decode
from ingest_platform.streaming.kraken.fanout.publisher import FanoutPublisher, FanoutSettings


def _item(pair: str, bids: Any, asks: Any) -> dict[str, Any]:
    return {
        "symbol": pair,
        "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks],
        "checksum": 0,
    }


async def publish(url: str, events: int) -> int:
    """Publish ``events`` verified-looking book updates; returns the messages stored."""
    settings = FanoutSettings(snapshot_every=1000, stream=StreamSpec(max_bytes=8 << 30))
    publisher = FanoutPublisher(JetStreamBus(url), PAIRS, settings)
    books = {pair: KrakenBook(pair, 10, 1, 3) for pair in PAIRS}
    publisher.books = lambda pair: BookSnapshot.of(books[pair])
    task = asyncio.create_task(publisher.run())
    while not publisher.ready:
        await asyncio.sleep(0.01)
    recv_us = time.time_ns() // 1000
    for pair in PAIRS:
        bids, asks = _levels(0)
        books[pair].apply_snapshot(_item(pair, bids, asks))
        publisher.book(
            pair, "snapshot", bids, asks, books[pair].checksum(), 10, 1, 3, None, recv_us
        )
    for i in range(events):
        pair = PAIRS[i & 1]
        bids, asks = _levels(i)
        bids, asks = bids[:3], asks[:3]
        books[pair].apply_update(_item(pair, bids, asks))
        checksum = books[pair].checksum()
        publisher.book(pair, "update", bids, asks, checksum, 10, 1, 3, None, recv_us + i)
        if i % 256 == 0:
            await asyncio.sleep(0)
            while len(publisher.buffer) > 20_000:
                await asyncio.sleep(0.001)
    while publisher.stats.published < publisher.stats.enqueued:
        await asyncio.sleep(0.01)
    stored = publisher.stats.published
    await publisher.close(task)
    return stored


async def read(url: str, total: int, mode: str, verify: bool) -> dict[str, float]:
    from nats.aio.client import Client
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    nc = Client()
    await nc.connect(servers=[url])
    js = nc.jetstream()
    config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
    rebuilder = BookRebuilder()
    counts = {"got": 0, "verified": 0}
    done = asyncio.Event()

    def handle(data: bytes) -> None:
        counts["got"] += 1
        if verify:
            event = decode(data)
            if event["kind"] == "book" and rebuilder.apply(event) is Outcome.VERIFIED:
                counts["verified"] += 1
        if counts["got"] >= total:
            done.set()

    cpu0 = time.process_time()
    if mode == "pull":
        sub = await js.pull_subscribe("kraken.>", stream="KRAKEN", config=config)
        while counts["got"] < total:
            for msg in await sub.fetch(512, timeout=2):
                handle(msg.data)
    else:

        async def receive(msg: Any) -> None:
            handle(msg.data)

        await js.subscribe("kraken.>", stream="KRAKEN", config=config, cb=receive)
        await asyncio.wait_for(done.wait(), timeout=120)
    cpu = time.process_time() - cpu0
    await nc.close()
    if verify and counts["verified"] != total:
        raise SystemExit(f"{mode}: {counts['verified']} of {total} book events re-verified")
    return {"us": cpu / total * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}; {args.events} book updates, two pairs")
    variants = [(m, v) for m in ("pull", "push") for v in (False, True)]
    figures: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
    with nats_server() as url:
        total = asyncio.run(publish(url, args.events))
        for round_ in range(1, args.repeat + 1):
            for mode, verify in variants:
                out = asyncio.run(read(url, total, mode, verify))
                figures[(mode, verify)].append(out["us"])
                what = "receive + re-verify" if verify else "receive only"
                print(f"  #{round_} {mode:4} {what:20} {out['us']:7.1f} µs CPU/message")
    print()
    for (mode, verify), values in figures.items():
        what = "receive + re-verify" if verify else "receive only"
        print(f"{mode:4} {what:20} median {statistics.median(values):7.1f} µs CPU/message")
    print(f"\nreproduce: .venv/bin/python benchmarks/kraken_fanout_consume_cost.py "
          f"--events {args.events} --repeat {args.repeat}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
