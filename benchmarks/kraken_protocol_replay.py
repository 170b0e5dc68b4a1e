"""Replay Kraken v2 frames through the whole protocol (``receive``), this checkout beside another.

`kraken_book_replay.py` measures the book alone. This measures what the stream does per frame
on top of it: the exact parse, routing by channel, the book apply and its checksum, the record
handed to the sink, latency accounting, and the driver's check for frames and events to act on.
The sink only numbers the rows (the log's Arrow work happens on its own thread and is not in
the figure). Input: the real capture (1 snapshot + 509 updates, BTC/USD depth 10) repeated
``--repeat`` times; every message must verify, in every tree.

Each round runs one child process per checkout, alternating (A B A B ...), each pinned to the
same core, and the figure per checkout is the median of ``--rounds``, by the wall clock and
by the child's CPU time (which a busy machine disturbs less). A child drives whichever
layout its checkout has (`KrakenProtocol` in ``protocol/``, or the `KrakenSession` it replaced),
so a checkout from before that change can be the baseline:

    git worktree add --detach /tmp/kraken-base main
    .venv/bin/python benchmarks/kraken_protocol_replay.py --baseline /tmp/kraken-base
    .venv/bin/python benchmarks/kraken_protocol_replay.py --quick       # this checkout only
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]
INSTRUMENTS = json.dumps(
    {
        "channel": "instrument",
        "type": "snapshot",
        "data": {"pairs": [{"symbol": "BTC/USD", "price_precision": 1, "qty_precision": 8}]},
    }
)


def default_capture() -> Path:
    """The team fixture, found as `kraken_book_replay.py` finds it."""
    sys.path.insert(0, str(Path(__file__).parent))
    from kraken_book_replay import default_capture as find

    return find()


class NullSink:
    """A `RecordSink` that numbers rows and keeps nothing."""

    closed = False

    def __init__(self) -> None:
        self.rows = 0

    def book(self, *row: Any) -> int:
        self.rows += 1
        return self.rows - 1

    def book_top(self, *row: Any) -> int:
        return 0

    def trade(self, *row: Any) -> int:
        return 0

    def ohlc(self, *row: Any) -> int:
        return 0

    def gap(self, *row: Any) -> int:
        return 0


def _driver(sink: NullSink) -> tuple[Any, Any]:
    """The protocol of the checkout on ``sys.path``, and a function that drains its outputs
    the way its connection does after each frame."""
    try:
        from ingest_platform.streaming.kraken.protocol.protocol import KrakenProtocol
        from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings
    except ImportError:  # the layout before protocol/ (KrakenSession, a Dagster Config)
        config = importlib.import_module("ingest_platform.streaming.kraken.config")
        legacy = importlib.import_module("ingest_platform.streaming.kraken.session")
        session = legacy.KrakenSession(config.StreamConfig(pairs=["BTC/USD"], depth=10), sink=sink)
        outgoing = session.outgoing

        def drain_session() -> None:
            if outgoing:
                session.take_outgoing()

        return session, drain_session
    protocol = KrakenProtocol(ProtocolSettings(pairs=("BTC/USD",), depth=10), sink=sink)
    frames, events = protocol.outgoing, protocol.events

    def drain_protocol() -> None:
        if frames or events:
            protocol.data_to_send()
            protocol.events_received()

    return protocol, drain_protocol


def child(capture: Path, repeat: int) -> None:
    """One timed replay in this process; prints its rate, what verified, and what ran."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    doc = json.loads(capture.read_text())
    one = [
        json.dumps(m, separators=(",", ":"), default=float) for m in [doc["init"], *doc["updates"]]
    ]
    raws = one * repeat
    sink = NullSink()
    protocol, drain = _driver(sink)
    protocol.connection_made()
    protocol.receive(INSTRUMENTS)
    drain()
    receive = protocol.receive
    start, start_cpu = time.perf_counter(), time.process_time()
    for raw in raws:
        receive(raw)
        drain()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    symbol = protocol.stats.symbols["BTC/USD"]
    verified = symbol.snapshots + symbol.updates_verified
    where = sys.modules[type(protocol).__module__].__file__
    impl = f"{type(protocol).__name__} from {where}"
    result = {"rate": len(raws) / elapsed, "cpu_rate": len(raws) / cpu, "verified": verified}
    print(json.dumps({**result, "messages": len(raws), "impl": impl}))


def run_child(tree: Path, capture: Path, repeat: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, __file__, "--child", "--capture", str(capture), "--repeat", str(repeat)]
    out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(tree: Path) -> str:
    commit = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    return f"{tree} ({commit[:60]})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to run beside this one")
    parser.add_argument("--capture", type=Path, default=None, help="default: the shared fixture")
    parser.add_argument("--repeat", type=int, help="capture repetitions (default 40, quick 4)")
    parser.add_argument("--rounds", type=int, help="rounds per checkout (default 7, quick 2)")
    parser.add_argument("--quick", action="store_true", help="small inputs, a few seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    capture = args.capture or default_capture()
    repeat = args.repeat or (4 if args.quick else 40)
    if args.child:
        child(capture, repeat)
        return
    rounds = args.rounds or (2 if args.quick else 7)
    trees = ([args.baseline.resolve()] if args.baseline else []) + [CHECKOUT]
    print(f"python {platform.python_version()}, {platform.machine()}, one core per child")
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    for label, tree in zip("AB", trees, strict=False):
        print(f"{label}: {describe(tree)}")
    rates: dict[Path, list[float]] = {tree: [] for tree in trees}
    cpu_rates: dict[Path, list[float]] = {tree: [] for tree in trees}
    ran: dict[Path, str] = {}
    for _ in range(rounds):
        for tree in trees:
            result = run_child(tree, capture, repeat)
            if result["verified"] != result["messages"]:
                raise SystemExit(f"{tree}: {result['verified']}/{result['messages']} verified")
            rates[tree].append(result["rate"])
            cpu_rates[tree].append(result["cpu_rate"])
            ran[tree] = result["impl"]
    messages = repeat * 510
    print(f"\n{messages} book messages per child, {rounds} rounds, interleaved")
    for title, table in (("wall clock", rates), ("CPU time of the child", cpu_rates)):
        print(f"\nmsgs/s by {title}:")
        print(f"{'checkout':10} {'median':>9} {'min':>9} {'max':>9}   rounds")
        for label, tree in zip("AB", trees, strict=False):
            values = table[tree]
            print(
                f"{label:10} {statistics.median(values):9,.0f} {min(values):9,.0f} "
                f"{max(values):9,.0f}   {', '.join(f'{v:,.0f}' for v in values)}"
            )
        if len(trees) == 2:
            a, b = table[trees[0]], table[trees[1]]
            print(
                f"B / A: {statistics.median(b) / statistics.median(a):.3f} (medians), "
                f"{max(b) / max(a):.3f} (best)"
            )
    print()
    for label, tree in zip("AB", trees, strict=False):
        print(f"{label} ran {ran[tree]}")
    print(
        "CPU time counts only what the child itself ran, so it moves less than the wall clock "
        "when other processes share the core."
    )


if __name__ == "__main__":
    main()
