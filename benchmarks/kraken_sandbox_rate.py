"""How many Kraken v2 book updates a second the sandbox server delivers, and at what CPU cost.

The server (`KrakenSandboxServer`) runs in this process, on its own event-loop thread; one
client runs in a separate process (``multiprocessing`` spawn), subscribes to ``book`` at
depth 10 for ``--pairs`` pairs, waits for the snapshots, then counts book updates for
``--seconds`` (after a short warm-up) with the synchronous ``websockets`` client. The client
only counts (``--parse`` also decodes every message with ``json.loads(parse_float=Decimal)``,
which makes the client the bottleneck); checksum correctness is the test suite's business
(``ingest_platform_tests/sandbox/test_kraken_ws.py``), not this script's.

The server's ``rate`` is book updates per second *per symbol*, so a target total T is asked
for as ``rate = T / pairs``; "max" asks for far more than can be served and the pacer runs
flat out. Figures: target, achieved msgs/s seen by the client, server CPU (process time of
this process over the window, as a share of one core) and client CPU.

    .venv/bin/python benchmarks/kraken_sandbox_rate.py            # ~30 s
    .venv/bin/python benchmarks/kraken_sandbox_rate.py --quick    # ~10 s
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from decimal import Decimal

from ingest_platform.sandbox.kraken_market import DEFAULT_PAIRS
from ingest_platform.sandbox.kraken_ws import KrakenSandboxServer

BOOK_UPDATE = '{"channel":"book","type":"update"'
MAX_RATE = 10_000_000.0


def _client(url: str, symbols: list[str], warmup: float, seconds: float, parse: bool, out) -> None:
    """Subscribe, wait for every snapshot, warm up, then count book updates for ``seconds``."""
    from websockets.sync.client import connect

    with connect(url, compression=None, max_queue=None, open_timeout=10) as ws:
        request = {"channel": "book", "symbol": symbols, "depth": 10, "snapshot": True}
        ws.send(json.dumps({"method": "subscribe", "params": request, "req_id": 1}))
        snapshots = 0
        while snapshots < len(symbols):
            if '"type":"snapshot"' in ws.recv(timeout=10):
                snapshots += 1
        deadline = time.perf_counter() + warmup
        while time.perf_counter() < deadline:
            ws.recv(timeout=10)
        count = 0
        out.send("start")  # the server side measures its CPU from here
        cpu0, t0 = time.process_time(), time.perf_counter()
        end = t0 + seconds
        while True:
            raw = ws.recv(timeout=10)
            if raw.startswith(BOOK_UPDATE):
                count += 1
                if parse:
                    json.loads(raw, parse_float=Decimal)
            if (count & 255) == 0 and time.perf_counter() >= end:
                break
        wall = time.perf_counter() - t0
        out.send((count, wall, time.process_time() - cpu0))


def run(args: argparse.Namespace, argv: list[str]) -> None:
    targets: list[float] = [1_000, 10_000, 20_000, 30_000, MAX_RATE]
    if args.quick:
        targets = [1_000, 20_000, MAX_RATE]
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"one client process, book depth 10 x {args.pairs} pairs, {args.seconds:g} s windows")
    print(f"{'target msgs/s':>14} {'achieved':>10} {'server CPU':>11} {'client CPU':>11}")
    with KrakenSandboxServer(seed=7, rate=0, heartbeat_interval=1.0) as server:
        for total in targets:
            ctx = mp.get_context("spawn")
            receive, send = ctx.Pipe(duplex=False)
            symbols = [p.symbol for p in DEFAULT_PAIRS[: args.pairs]]
            server.set_rate(total / len(symbols))
            proc = ctx.Process(
                target=_client,
                args=(server.url, symbols, args.warmup, args.seconds, args.parse, send),
                daemon=True,
            )
            proc.start()
            try:
                # Server CPU is this process's CPU: the main thread only waits on the pipe.
                if not receive.poll(60) or receive.recv() != "start":
                    raise RuntimeError("the benchmark client did not start within 60 s")
                cpu0, t0 = time.process_time(), time.perf_counter()
                if not receive.poll(args.seconds + 60):
                    raise RuntimeError("the benchmark client did not report in time")
                server_cpu = (time.process_time() - cpu0) / (time.perf_counter() - t0)
                count, wall, client_cpu = receive.recv()
            finally:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
            label = "max" if total >= MAX_RATE else f"{total:,.0f}"
            print(
                f"{label:>14} {count / wall:>10,.0f} {server_cpu:>10.0%} {client_cpu / wall:>10.0%}"
            )
    print("reproduce:", " ".join([".venv/bin/python", "benchmarks/kraken_sandbox_rate.py", *argv]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer targets, shorter windows")
    parser.add_argument("--pairs", type=int, default=3, help="pairs subscribed (1..5)")
    parser.add_argument("--seconds", type=float, default=None, help="measurement window")
    parser.add_argument("--parse", action="store_true", help="client json-decodes every message")
    args = parser.parse_args()
    args.pairs = max(1, min(args.pairs, len(DEFAULT_PAIRS)))
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 4.0
    args.warmup = 0.5
    run(args, sys.argv[1:])


if __name__ == "__main__":
    main()
