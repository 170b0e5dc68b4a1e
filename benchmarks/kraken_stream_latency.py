"""End-to-end latency of the Kraken stream: socket -> verified book -> log, at sandbox rates.

The sandbox Kraken WebSocket runs in its own process (so it does not share the client's GIL),
publishing book updates, trades and OHLC bars for five pairs. The client (`KrakenConnection`
with a real `StreamLog` under a temporary directory) runs in this process, exactly as the
Dagster op hosts it.

Per target rate (total messages per second over all pairs and channels):

1. connect, subscribe and verify every book's snapshot at a low rate;
2. switch the sandbox to the target rate and measure for ``--seconds``;
3. pause the sandbox, wait until the client has received everything it sent, stop the client
   (which flushes the log), then compare.

Latency is per data message, from the moment its bytes were read from the socket
to the moment its row was appended to the log buffer, after the book was updated and its
checksum verified; segments are written by the log's own thread (their write time is shown
separately). "Lost" compares the sandbox's sent counters with the client's received counts
per channel, and the book rows on disk with the book messages received.

    .venv/bin/python benchmarks/kraken_stream_latency.py            # 1k and 10k msg/s, 60 s each
    .venv/bin/python benchmarks/kraken_stream_latency.py --quick    # ~5 s each
    .venv/bin/python benchmarks/kraken_stream_latency.py --rates 10000 --seconds 60
    # the same against another tree (e.g. main's, from `git archive main | tar -x -C DIR`),
    # interleaved A B A B, each run in its own process with PYTHONPATH set to its tree:
    .venv/bin/python benchmarks/kraken_stream_latency.py --rates 10000 25000 --seconds 30 \
        --baseline /tmp/transport-base --repeat 2

The client's CPU (all its threads, the log writer's included) is reported per message
received, the figure that holds on a shared machine; latency depends on what else runs, so
the load average before each run is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.io.settings import StreamSettings
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings
from ingest_platform.streaming.kraken.protocol.stats import LatencyWindow

PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ADA/EUR")
#: Messages per sandbox round and pair: one book update, plus a trade and an OHLC bar on the
#: ~8 % of events that print a trade (kraken_market._TRADE_P).
MESSAGES_PER_ROUND = 1.16
DATA_COUNTERS = ("kraken.sent.book", "kraken.sent.trade", "kraken.sent.ohlc")


def _serve(conn: Any, seed: int) -> None:
    """Sandbox process: serve until told to stop; answer rate changes and counter reads."""
    from ingest_platform.sandbox.kraken_ws import KrakenSandboxServer

    server = KrakenSandboxServer(seed=seed, rate=10.0, pairs=list(PAIRS))
    server.start()
    conn.send(server.url)
    try:
        while True:
            command, arg = conn.recv()
            if command == "rate":
                server.set_rate(arg)
                conn.send(None)
            elif command == "counters":
                conn.send({name: server.counters.get(name) for name in DATA_COUNTERS})
            elif command == "stop":
                break
    finally:
        server.stop()
        conn.send("stopped")


class SandboxProcess:
    def __init__(self, seed: int = 7) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, seed), daemon=True)
        self.process.start()
        if not self.conn.poll(60):
            raise RuntimeError("the sandbox process did not start")
        self.url: str = self.conn.recv()

    def call(self, command: str, arg: Any = None) -> Any:
        self.conn.send((command, arg))
        if not self.conn.poll(30):
            raise RuntimeError(f"the sandbox process did not answer {command!r}")
        return self.conn.recv()

    def close(self) -> None:
        try:
            self.call("stop")
        finally:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()


def bench_settings() -> StreamSettings:
    """The stream as both benchmarks run it: five pairs at depth 10, generous liveness limits,
    a latency window that holds a whole run, no periodic report."""
    protocol = ProtocolSettings(
        pairs=PAIRS,
        depth=10,
        max_silence=10,
        max_heartbeat_interval=10,
        snapshot_timeout=30,
        latency_window=1 << 22,
    )
    return StreamSettings(protocol, report_interval=3600)


async def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def measure(target: float, seconds: float, root: Path) -> dict[str, Any]:
    sandbox = SandboxProcess()
    try:
        settings = bench_settings()
        protocol_settings = settings.protocol
        client = open_stream(settings, sandbox.url, root)
        protocol = client.protocol
        task = asyncio.create_task(client.run())
        await _wait(
            lambda: all(protocol.is_synced(p) for p in PAIRS), 30, "every book's first snapshot"
        )
        rate = target / (len(PAIRS) * MESSAGES_PER_ROUND)
        gc.collect()
        gc.freeze()  # as StreamRunner(freeze_gc=True) does in the Dagster op's process
        before = await asyncio.to_thread(sandbox.call, "counters")
        received_before = sum(protocol.stats.messages[c] for c in ("book", "trade", "ohlc"))
        protocol.latency = LatencyWindow(protocol_settings.latency_window)
        await asyncio.to_thread(sandbox.call, "rate", rate)
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(sandbox.call, "rate", 0.0)
        elapsed = time.perf_counter() - started
        cpu = (time.process_time() - cpu_started) / elapsed
        during = await asyncio.to_thread(sandbox.call, "counters")
        sent_window = sum(during[c] - before[c] for c in DATA_COUNTERS)
        sent = during

        def caught_up() -> bool:
            got = protocol.stats.messages
            return (
                got["book"] >= sent["kraken.sent.book"]
                and got["trade"] >= sent["kraken.sent.trade"]
                and got["ohlc"] >= sent["kraken.sent.ohlc"]
            )

        with_drain = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await _wait(caught_up, 30, "the client to receive everything sent")
        drain = time.perf_counter() - with_drain
        latency = protocol.latency.percentiles_ms((50, 95, 99, 99.9))
        samples = protocol.latency.count
        client.request_stop()
        result = await task
    finally:
        sandbox.close()
    stats = result.stats
    received = {c: stats["messages"].get(c, 0) for c in ("book", "trade", "ohlc")}
    lost = {c: sent[f"kraken.sent.{c}"] - received[c] for c in received}
    book_rows = read_kind(root, "book", columns=["seq"]).num_rows
    dropped = sum(s["dropped_unsynced"] for s in stats["symbols"].values())
    logged_loss = stats["book_messages"] - dropped - book_rows
    return {
        "target": target,
        "seconds": elapsed,
        "achieved": sent_window / elapsed,
        "received_in_window": sum(received.values()) - received_before,
        "latency": latency,
        "samples": samples,
        "drain_seconds": drain,
        "client_cpu": cpu,
        "cpu_us_per_message": cpu
        * elapsed
        / max(1, sum(received.values()) - received_before)
        * 1e6,
        "lost": lost,
        "book_rows": book_rows,
        "book_not_logged": logged_loss,
        "reconnects": stats["reconnects"],
        "resyncs": stats["resyncs"],
        "gaps": stats["gaps"],
        "checksum_failures": stats["checksum_failures"],
        "segments": stats.get("log_segments", {}),
        "segment_write_seconds": stats.get("log_write_seconds"),
    }


def run_once(target: float, seconds: float, loop: str) -> dict[str, Any]:
    """One measurement at ``target`` in this process, on a fresh event loop."""
    runner: Any = asyncio.run
    if loop == "uvloop":
        import uvloop

        runner = uvloop.run
    with tempfile.TemporaryDirectory(prefix="kraken-bench-") as tmp:
        result: dict[str, Any] = runner(measure(target, seconds, Path(tmp)))
    return result


def run_in_tree(tree: str | None, target: float, seconds: float, loop: str) -> dict[str, Any]:
    """One measurement in a child process importing ``ingest_platform`` from ``tree`` (None:
    this checkout), so two trees compare under the same script, venv and machine."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--json", "--rates", str(target)]
    command += ["--seconds", str(seconds), "--loop", loop]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _row(label: str, r: dict[str, Any]) -> str:
    lat = r["latency"]
    return (
        f"{r['target']:>9.0f} {label:<10} {r['achieved']:>10.0f} {lat.get('p50', 0):>7.3f} "
        f"{lat.get('p95', 0):>7.3f} {lat.get('p99', 0):>7.3f} {lat.get('p99.9', 0):>8.3f} "
        f"{lat.get('max', 0):>7.2f} {sum(r['lost'].values()):>5} {r['book_not_logged']:>8} "
        f"{r['reconnects']:>6} {r['resyncs']:>6} {r['gaps']:>4} "
        f"{r['cpu_us_per_message']:>8.1f} {r['client_cpu']:>5.0%} {r['load']:>5.2f}"
    )


def _failed(r: dict[str, Any]) -> bool:
    return bool(
        sum(r["lost"].values()) > 0
        or r["book_not_logged"]
        or r["reconnects"]
        or r["checksum_failures"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 10000.0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="5 s per rate")
    parser.add_argument(
        "--baseline",
        metavar="TREE",
        help="also run a source tree (its ingest_platform on PYTHONPATH), interleaved A B A B",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per rate (and tree)")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        nargs="+",
        default=["asyncio"],
        help="the client's event loop; two: each run on both, interleaved",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one child run
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else args.seconds
    if args.json:
        (target,), (loop,) = args.rates, args.loop
        result = run_once(target, seconds, loop)
        result["tree"] = str(Path(open_stream.__code__.co_filename).parents[4])
        print(json.dumps(result, default=str))
        return 0
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"websockets {version('websockets')}, picows {version('picows')}, "
        f"pyarrow {version('pyarrow')}; loop {' and '.join(args.loop)}"
    )
    print(f"pairs {', '.join(PAIRS)}; book depth 10; sandbox in its own process")
    trees: list[tuple[str, str | None]] = [("this", None)]
    if args.baseline:
        trees = [("baseline", args.baseline), ("this", None)]
    variants = [
        (label if len(args.loop) == 1 else f"{label}/{loop}", tree, loop)
        for label, tree in trees
        for loop in args.loop
    ]
    separate = bool(args.baseline) or len(args.loop) > 1  # each run in its own process
    if separate:
        print(f"baseline: {args.baseline or 'none'}; each run in its own process")
    print(
        "latency ms socket -> book; CPU us per message received, all the client's threads; "
        "load: 1-min load average before the run\n"
    )
    header = (
        f"{'target/s':>9} {'tree':<10} {'achieved/s':>10} {'p50':>7} {'p95':>7} {'p99':>7} "
        f"{'p99.9':>8} {'max':>7} {'lost':>5} {'unlogged':>8} {'reconn':>6} "
        f"{'resync':>6} {'gaps':>4} {'cpu us/m':>8} {'cpu':>5} {'load':>5}"
    )
    print(header)
    failures = 0
    results: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for target in args.rates:
        for _ in range(args.repeat):
            for label, tree, loop in variants:
                load = os.getloadavg()[0]
                if separate:
                    r = run_in_tree(tree, target, seconds, loop)
                else:
                    r = run_once(target, seconds, loop)
                r["load"] = load
                if tree is not None and not r["tree"].startswith(tree):
                    raise RuntimeError(f"the {label} run imported {r['tree']}, not {tree}")
                results.setdefault((target, label), []).append(r)
                print(_row(label, r), flush=True)
                if not separate:
                    print(
                        f"{'':>9} {r['seconds']:.1f} s window, {r['samples']} latency samples, "
                        f"drained in {r['drain_seconds']:.2f} s, {r['book_rows']} book rows on "
                        f"disk, segments {r['segments']}, segment writes "
                        f"{r['segment_write_seconds']} s"
                    )
                failures += _failed(r)
    if args.repeat > 1 or separate:
        print("\nmedians per rate and tree:")
        for (target, label), runs in results.items():
            p99 = statistics.median(r["latency"].get("p99", 0) for r in runs)
            cpu = statistics.median(r["cpu_us_per_message"] for r in runs)
            print(
                f"{target:>9.0f} {label:<10} p99 {p99:.3f} ms, {cpu:.1f} us CPU per message "
                f"({len(runs)} runs)"
            )
    args_text = " ".join(sys.argv[1:])
    print(f"\nreproduce: .venv/bin/python benchmarks/kraken_stream_latency.py {args_text}".rstrip())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
