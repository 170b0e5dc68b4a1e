"""CPU per event of the fan-out's publish path, with no stream around it.

What the stream's event loop pays per verified book update once the fan-out is on. With the
publisher in a process of its own (`FanoutProcess`, what this tree ships): the hand-over (the
item appended to a list, one ``marshal``-ed frame per loop turn written to a pipe) and the
reports coming back; the publisher process's CPU is measured apart (``/proc``). On the stream's
loop (`FanoutPublisher`: a baseline tree from before the process, or ``--in-loop``): the
publisher's hot path (the event dict, its seq and message id, the buffer), JSON encoding, the
publish on the NATS connection with its ``Nats-Msg-Id`` header, and the JetStream
acknowledgement coming back (matched, counted). A ``nats-server -js`` of its own (free port,
temporary store) is the bus; its CPU is not counted (another process). Each update carries its
pair's real checksum (the publisher process keeps and checks its own copy of each book).

Each run feeds ``--events`` book updates of 10 levels a side as fast as the publisher takes
them (``--batch`` per event-loop turn, at most ``--window`` unacknowledged) and waits for every
acknowledgement; the figure is the process's CPU time over that, per event. It also times the
pieces alone (building and encoding the event) so the rest is the bus's share.

To compare two versions of the code in one run, ``--baseline SRC`` (a directory holding another
``ingest_platform`` package, e.g. ``git archive <commit> ingest_platform | tar -x -C SRC``) runs
each repeat in a fresh process per side, interleaved A (baseline) B (this checkout):

    git archive d3bf5e7 ingest_platform | (mkdir -p /tmp/fanout-base && tar -x -C /tmp/fanout-base)
    .venv/bin/python benchmarks/kraken_fanout_publish_cost.py --baseline /tmp/fanout-base
    .venv/bin/python benchmarks/kraken_fanout_publish_cost.py --profile   # cProfile, top 25
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import nats_server, process_cpu_seconds  # the script's folder is on sys.path

PAIRS = ("BTC/USD", "ETH/USD")


def _levels(i: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    bids = [(f"{50000 - k}.{i % 10}", f"0.{(i + k) % 1000:03d}") for k in range(10)]
    asks = [(f"{50001 + k}.{i % 10}", f"1.{(i + k) % 1000:03d}") for k in range(10)]
    return bids, asks


def encode_cost(events: int) -> float:
    """µs of CPU to build and encode one book update event, alone."""
    from ingest_platform.streaming.kraken.fanout import message

    levels = [_levels(i) for i in range(64)]
    started = time.process_time()
    for i in range(events):
        bids, asks = levels[i & 63]
        event = message.book_event(
            "BTC/USD", 1, i, "update", message.level_list(bids), message.level_list(asks),
            123456789, 10, 1, 8, "2026-12-07T12:00:00.000000Z", 1_700_000_000_000_000 + i,
        )  # fmt: skip
        message.encode(event)
        message.book_msg_id("BTC/USD", 1, i)
    return (time.process_time() - started) / events * 1e6


def _feed(events: int) -> list[tuple[str, Any, Any, int]]:
    """``events`` book updates alternating the pairs, each with the checksum of its pair's book
    after it (as the stream hands them over)."""
    from ingest_platform.streaming.kraken.book import KrakenBook

    books = {pair: KrakenBook(pair, 10, 1, 8) for pair in PAIRS}
    out = []
    for i in range(-len(PAIRS), events):  # each pair's snapshot first
        pair = PAIRS[i & 1]
        bids, asks = _levels(max(i, 0))
        item = {
            "symbol": pair,
            "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks],
            "checksum": 0,
        }
        book = books[pair]
        book.apply_snapshot(item) if i < 0 else book.apply_update(item)
        out.append((pair, tuple(bids), tuple(asks), book.checksum()))
    return out


async def publish_cost(
    url: str, events: int, batch: int, profile: cProfile.Profile | None, in_loop: bool
) -> dict:
    """µs of the stream's CPU per event handed to the publisher, acknowledgements included:
    `FanoutProcess` (the publisher in a process of its own; its CPU counted apart) when this
    tree has it and not ``in_loop``, else `FanoutPublisher` on this loop."""
    from ingest_platform.streaming.kraken.fanout.bus import JetStreamBus, StreamSpec
    from ingest_platform.streaming.kraken.fanout.publisher import FanoutPublisher, FanoutSettings

    try:
        from ingest_platform.streaming.kraken.fanout.process import FanoutProcess
    except ImportError:  # a baseline from before the publisher process
        FanoutProcess = None  # type: ignore[assignment,misc]
    process = FanoutProcess is not None and not in_loop
    settings = FanoutSettings(snapshot_every=1_000_000, stream=StreamSpec(max_bytes=8 << 30))
    kind = FanoutProcess if process else FanoutPublisher
    publisher: Any = kind(JetStreamBus(url), PAIRS, settings)
    if hasattr(publisher, "buffered"):
        buffered = publisher.buffered
    else:
        buffered = lambda: len(publisher.buffer)  # noqa: E731
    feed = _feed(events)
    task = asyncio.create_task(publisher.run())
    while not publisher.ready:
        await asyncio.sleep(0.01)
    recv_us = time.time_ns() // 1000
    for pair, bids, asks, checksum in feed[: len(PAIRS)]:  # each epoch starts with a snapshot
        publisher.book(pair, "snapshot", bids, asks, checksum, 10, 1, 8, None, recv_us)
    while publisher.stats.published < len(PAIRS):
        await asyncio.sleep(0.01)
    start_published = publisher.stats.published
    child = publisher.report()["process"]["pid"] if process else None
    child_cpu0 = process_cpu_seconds(child) if child else 0.0
    window = settings.buffer_size // 2
    if profile is not None:
        profile.enable()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    fed = 0
    updates = feed[len(PAIRS) :]
    while fed < events:
        for _ in range(min(batch, events - fed)):
            pair, bids, asks, checksum = updates[fed]
            publisher.book(pair, "update", bids, asks, checksum, 10, 1, 8, None, recv_us + fed)
            fed += 1
        await asyncio.sleep(0)
        while buffered() > window:
            await asyncio.sleep(0.001)
    while publisher.stats.published - start_published < events:
        if publisher.stats.dropped or publisher.stats.unacked:
            break
        await asyncio.sleep(0.0005)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    child_cpu = process_cpu_seconds(child) - child_cpu0 if child else 0.0
    if profile is not None:
        profile.disable()
    stats = publisher.stats
    result = {
        "path": "process" if process else "loop",
        "cpu_us": cpu / events * 1e6,
        "publisher_cpu_us": child_cpu / events * 1e6,
        "rate": events / wall,
        "published": stats.published - start_published,
        "lost": stats.dropped + stats.unacked,
    }
    await publisher.close(task)
    return result


def one_run(events: int, batch: int, profile: bool, in_loop: bool) -> dict[str, Any]:
    prof = cProfile.Profile() if profile else None
    with nats_server() as url:
        out = asyncio.run(publish_cost(url, events, batch, prof, in_loop))
    out["encode_us"] = encode_cost(events)
    if prof is not None:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=16, help="events per event-loop turn")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="SRC holding a baseline ingest_platform")
    parser.add_argument("--profile", action="store_true", help="cProfile one run (stderr)")
    parser.add_argument(
        "--in-loop", action="store_true", help="B too: the publisher on the stream's loop"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one or args.profile:
        result = one_run(args.events, args.batch, args.profile, args.in_loop)
        print(json.dumps(result))
        return 0
    here = Path(__file__).resolve().parents[1]
    sides = {"B": here} if args.baseline is None else {"A": args.baseline.resolve(), "B": here}
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
        f"{args.events} book updates (10 levels a side) per run, {args.batch} per loop turn; "
        f"{args.repeat} repeat(s)" + (", A = baseline, B = this checkout, interleaved" if
                                       args.baseline else "")
    )  # fmt: skip
    for repeat in range(args.repeat):
        for side, src in sides.items():
            env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{here / 'benchmarks'}"}
            cmd = [sys.executable, __file__, "--one", "--events", str(args.events)]
            cmd += ["--batch", str(args.batch)] + (["--in-loop"] if args.in_loop else [])
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[side].append(r)
            print(
                f"  #{repeat + 1} {side} ({r['path']}): {r['cpu_us']:.1f} µs stream CPU/event "
                f"(publisher process {r['publisher_cpu_us']:.1f} µs) "
                f"(build+encode alone {r['encode_us']:.1f} µs), {r['rate']:,.0f} events/s, "
                f"published {r['published']}, lost {r['lost']}",
                flush=True,
            )
    print()
    for side in sides:
        keys = ("cpu_us", "encode_us", "publisher_cpu_us")
        med = {k: statistics.median(r[k] for r in runs[side]) for k in keys}
        rate = statistics.median(r["rate"] for r in runs[side])
        print(
            f"{side} ({runs[side][0]['path']}): median {med['cpu_us']:.1f} µs stream CPU/event, "
            f"publisher process {med['publisher_cpu_us']:.1f} µs (build+encode alone "
            f"{med['encode_us']:.1f} µs), {rate:,.0f} events/s"
        )
    print(f"\nreproduce: .venv/bin/python benchmarks/kraken_fanout_publish_cost.py "
          f"{' '.join(sys.argv[1:])}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
