"""The Kraken fan-out's cost and latency: the same stream with and without publishing to NATS
JetStream, interleaved in one run.

Four processes: the sandbox Kraken WebSocket, ``nats-server -js`` (temporary store), a
consumer (its own process: a push consumer that rebuilds and re-verifies every book with
`consume.BookRebuilder`, as ``kraken-tail`` does) and the stream itself, here, exactly as the
Dagster op hosts it (`KrakenConnection` with a real `StreamLog`, plus in the fan-out variant a
`FanoutProcess`: the publisher in a fifth process, the stream handing it the verified events;
``--in-loop``: the former `FanoutPublisher` on the stream's own loop). Per rate and repeat,
the variant without fan-out (A) and then with it (B) run back to back (A B A B ...), each:

1. connect, subscribe, verify every book's first snapshot at a low rate (B: and the publisher
   connected; the consumer subscribed to new messages);
2. the sandbox at the target rate for ``--seconds``;
3. the sandbox paused, everything drained, the stream stopped.

Figures: socket -> verified book (the stream's own latency, the protocol's histogram window);
socket -> consumer (B only: the consumer's wall clock at receipt minus the event's ``recv_us``,
the stream's wall clock when it read the frame; same host, same clock); lost (B: events the
publisher dropped or never got acknowledged, plus acknowledged events the consumer did not
receive); the stream process's CPU over the window (the stream, and the publisher with
``--in-loop``), and the publisher process's, the server's, the consumer's and the sandbox's
apart; and the whole machine's (all cores, ``/proc/stat``): on two cores the sandbox alone, a
stand-in for an exchange that is remote in production, takes about half of one. Medians over
the repeats.

    .venv/bin/python benchmarks/kraken_fanout.py                     # 1k, 10k, 25k; 60 s; 2 repeats
    .venv/bin/python benchmarks/kraken_fanout.py --seconds 20 --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
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

from _common import NATS_SERVER, NatsServer, machine_busy_seconds, process_cpu_seconds
from kraken_stream_latency import (
    DATA_COUNTERS,
    MESSAGES_PER_ROUND,
    PAIRS,
    SandboxProcess,
    _wait,
    bench_settings,
)

from ingest_platform.streaming.kraken.fanout.bus import JetStreamBus, StreamSpec
from ingest_platform.streaming.kraken.fanout.process import publisher_for
from ingest_platform.streaming.kraken.fanout.publisher import FanoutSettings
from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.protocol.stats import LatencyWindow


def _consume(conn: Any, url: str) -> None:
    """Consumer process: re-verify every book event, record socket -> consumer latency."""
    import numpy as np
    from nats.aio.client import Client
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from ingest_platform.streaming.kraken.consume import BookRebuilder, Outcome
    from ingest_platform.streaming.kraken.fanout.message import decode

    async def main() -> dict[str, Any]:
        nc = Client()
        await nc.connect(servers=[url])
        js = nc.jetstream()
        rebuilder = BookRebuilder()
        latencies: list[int] = []
        counts = {"received": 0, "verified": 0, "mismatches": 0}
        window_us = [1 << 62]  # latency only for frames read inside the measured window

        async def receive(msg: Any) -> None:  # what `consume.tail` does per message
            now_us = time.time_ns() // 1000
            counts["received"] += 1
            event = decode(msg.data)
            if event.get("recv_us", 0) >= window_us[0]:
                latencies.append(now_us - event["recv_us"])
            if event["kind"] == "book":
                try:
                    if rebuilder.apply(event) is Outcome.VERIFIED:
                        counts["verified"] += 1
                except Exception:
                    counts["mismatches"] += 1

        # a push consumer without acknowledgements, as `consume.tail` reads
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.NEW)
        await js.subscribe("kraken.>", stream="KRAKEN", config=config, cb=receive)
        conn.send("ready")
        loop = asyncio.get_running_loop()
        stop_at: float | None = None
        while stop_at is None or loop.time() < stop_at:
            if stop_at is None and conn.poll():
                command, arg = conn.recv()
                if command == "window":
                    window_us[0] = arg
                else:
                    stop_at = loop.time() + 1.0  # then drain what is still on its way
            await asyncio.sleep(0.05)
        received, verified, mismatches = (
            counts["received"],
            counts["verified"],
            counts["mismatches"],
        )
        await nc.close()
        values = np.array(latencies, dtype=np.int64) / 1000.0
        pct = (
            {f"p{q:g}": float(np.percentile(values, q)) for q in (50, 99, 99.9)}
            if len(values)
            else {}
        )
        return {
            "received": received,
            "verified": verified,
            "mismatches": mismatches,
            "waiting": rebuilder.totals()["waiting"],
            "latency": pct,
        }

    conn.send(asyncio.run(main()))


class ConsumerProcess:
    def __init__(self, url: str) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_consume, args=(child, url), daemon=True)
        self.process.start()
        if not self.conn.poll(60) or self.conn.recv() != "ready":
            raise RuntimeError("the consumer process did not start")

    def window(self) -> None:
        self.conn.send(("window", time.time_ns() // 1000))

    def finish(self) -> dict[str, Any]:
        self.conn.send(("stop", None))
        if not self.conn.poll(120):
            raise RuntimeError("the consumer did not report")
        result: dict[str, Any] = self.conn.recv()
        self.process.join(10)
        return result


async def _ensure_stream(url: str) -> None:
    bus = JetStreamBus(url)
    await bus.connect()
    await bus.ensure_stream(StreamSpec())
    await bus.close()


async def measure(
    target: float,
    seconds: float,
    root: Path,
    nats_url: str | None,
    snapshot_every: int,
    server: NatsServer | None = None,
    in_loop: bool = False,
) -> dict[str, Any]:
    sandbox = SandboxProcess()
    consumer: ConsumerProcess | None = None
    try:
        settings = bench_settings()
        protocol_settings = settings.protocol
        publisher = None
        if nats_url is not None:
            fanout = FanoutSettings(snapshot_every=snapshot_every, stream=StreamSpec())
            publisher = publisher_for(JetStreamBus(nats_url), PAIRS, fanout, process=not in_loop)
            # the consumer subscribes before the stream starts: it sees every epoch's snapshot
            await _ensure_stream(nats_url)
            consumer = await asyncio.to_thread(ConsumerProcess, nats_url)
        client = open_stream(settings, sandbox.url, root, fanout=publisher)
        protocol = client.protocol
        task = asyncio.create_task(client.run())
        await _wait(lambda: all(protocol.is_synced(p) for p in PAIRS), 30, "every snapshot")
        if publisher is not None:
            await _wait(lambda: publisher.ready, 30, "the publisher to connect")
        rate = target / (len(PAIRS) * MESSAGES_PER_ROUND)
        gc.collect()
        gc.freeze()  # as StreamRunner(freeze_gc=True) does in the Dagster op's process
        before = await asyncio.to_thread(sandbox.call, "counters")
        published_before = publisher.stats.published if publisher else 0
        protocol.latency = LatencyWindow(protocol_settings.latency_window)
        if consumer is not None:
            consumer.window()
        await asyncio.to_thread(sandbox.call, "rate", rate)
        others = [server.proc.pid if server else None]
        others.append(consumer.process.pid if consumer else None)
        others.append(publisher.report().get("process", {}).get("pid") if publisher else None)
        others.append(sandbox.process.pid)
        others_started = [process_cpu_seconds(pid) for pid in others]
        machine_started = machine_busy_seconds()
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(sandbox.call, "rate", 0.0)
        elapsed = time.perf_counter() - started
        cpu = (time.process_time() - cpu_started) / elapsed
        machine_cpu = (machine_busy_seconds() - machine_started) / elapsed
        server_cpu, consumer_cpu, publisher_cpu, sandbox_cpu = (
            (process_cpu_seconds(pid) - before_s) / elapsed
            for pid, before_s in zip(others, others_started, strict=True)
        )
        sent = await asyncio.to_thread(sandbox.call, "counters")
        sent_window = sum(sent[c] - before[c] for c in DATA_COUNTERS)

        def caught_up() -> bool:
            got = protocol.stats.messages
            return all(got[c] >= sent[f"kraken.sent.{c}"] for c in ("book", "trade", "ohlc"))

        with contextlib.suppress(TimeoutError):
            await _wait(caught_up, 30, "the stream to receive everything sent")
        if publisher is not None:
            with contextlib.suppress(TimeoutError):
                await _wait(
                    lambda: not publisher.buffered() and not publisher.report()["in_flight"],
                    30,
                    "the bus",
                )
        latency = protocol.latency.percentiles_ms((50, 99, 99.9))
        bus = publisher.report() if publisher else None
        published = (publisher.stats.published - published_before) if publisher else 0
        consumed = await asyncio.to_thread(consumer.finish) if consumer else None
        client.request_stop()
        result = await task
    finally:
        sandbox.close()
    stats = result.stats
    received = {c: stats["messages"].get(c, 0) for c in ("book", "trade", "ohlc")}
    lost_ws = sum(sent[f"kraken.sent.{c}"] - received[c] for c in received)
    out: dict[str, Any] = {
        "achieved": sent_window / elapsed,
        "seconds": elapsed,
        "book": latency,
        "cpu": cpu,
        "lost_ws": lost_ws,
        "checksum_failures": stats["checksum_failures"],
        "sandbox_cpu": sandbox_cpu,
        "machine_cpu": machine_cpu,
    }
    if bus is not None and consumed is not None:
        out["bus"] = bus
        out["published"] = published
        out["consumer"] = consumed
        out["lost"] = bus["dropped"] + bus["unacked"] + max(0, published - consumed["received"])
        out["server_cpu"] = server_cpu
        out["consumer_cpu"] = consumer_cpu
        out["publisher_cpu"] = publisher_cpu
    return out


def _median(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key, 0) if isinstance(value, dict) else 0
        values.append(float(value or 0))
    return statistics.median(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 10000.0, 25000.0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--snapshot-every", type=int, default=1000)
    parser.add_argument(
        "--in-loop", action="store_true", help="the publisher on the stream's loop (former design)"
    )
    args = parser.parse_args(argv)
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"nats-py {version('nats-py')}, websockets {version('websockets')}; "
        f"{subprocess.run([NATS_SERVER, '--version'], capture_output=True, text=True).stdout}"
        f"pairs {', '.join(PAIRS)}; depth 10; snapshot every {args.snapshot_every} updates; "
        f"{args.seconds:g} s per run, {args.repeat} repeat(s), A (no fan-out) and B interleaved\n"
    )
    results: dict[tuple[float, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="kraken-fanout-") as tmp:
        server = NatsServer(Path(tmp) / "nats")
        try:
            for target in args.rates:
                for repeat in range(args.repeat):
                    for variant in ("A", "B"):
                        root = Path(tmp) / f"log-{target:.0f}-{repeat}-{variant}"
                        url = server.url if variant == "B" else None
                        r = asyncio.run(
                            measure(
                                target,
                                args.seconds,
                                root,
                                url,
                                args.snapshot_every,
                                server,
                                args.in_loop,
                            )
                        )
                        results.setdefault((target, variant), []).append(r)
                        book = r["book"]
                        line = (
                            f"  {target:>6.0f}/s #{repeat + 1} {variant}: achieved "
                            f"{r['achieved']:.0f}/s, socket->book p99 {book.get('p99', 0):.3f} ms, "
                            f"CPU {r['cpu']:.0%}; sandbox CPU {r['sandbox_cpu']:.0%}, machine "
                            f"{r['machine_cpu']:.0%} of {os.cpu_count() or 1}00%"
                        )
                        if variant == "B":
                            c = r["consumer"]
                            line += (
                                f", socket->consumer p99 {c['latency'].get('p99', 0):.2f} ms, "
                                f"lost {r['lost']}, re-verified {c['verified']} "
                                f"(mismatches {c['mismatches']}); nats-server CPU "
                                f"{r['server_cpu']:.0%}, consumer CPU {r['consumer_cpu']:.0%}, "
                                f"publisher process CPU {r['publisher_cpu']:.0%}, "
                                f"publish->ack p99 {r['bus']['publish_p99_ms']} ms, "
                                f"load {os.getloadavg()[0]:.1f}"
                            )
                        print(line, flush=True)
        finally:
            server.close()
    print()
    print(
        f"{'target/s':>9} {'variant':>8} {'achieved/s':>10} {'book p50':>9} {'book p99':>9} "
        f"{'book p99.9':>10} {'cons p50':>9} {'cons p99':>9} {'cons p99.9':>10} {'lost':>5} "
        f"{'CPU':>5} {'machine':>8}"
    )
    failures = 0
    for target in args.rates:
        for variant in ("A", "B"):
            runs = results[(target, variant)]
            cons = "-" if variant == "A" else None

            def fmt(*path: str, runs: list[dict[str, Any]] = runs) -> str:
                return f"{_median(runs, *path):.3f}"

            lost = "-" if variant == "A" else f"{_median(runs, 'lost'):.0f}"
            print(
                f"{target:>9.0f} {'fan-out' if variant == 'B' else 'none':>8} "
                f"{_median(runs, 'achieved'):>10.0f} {fmt('book', 'p50'):>9} "
                f"{fmt('book', 'p99'):>9} {fmt('book', 'p99.9'):>10} "
                f"{cons or fmt('consumer', 'latency', 'p50'):>9} "
                f"{cons or fmt('consumer', 'latency', 'p99'):>9} "
                f"{cons or fmt('consumer', 'latency', 'p99.9'):>10} {lost:>5} "
                f"{_median(runs, 'cpu'):>5.0%} {_median(runs, 'machine_cpu'):>8.0%}"
            )
            if variant == "B" and (
                _median(runs, "lost") or any(r["consumer"]["mismatches"] for r in runs)
            ):
                failures += 1
    print("(latencies in ms; medians over the repeats; book = the stream's socket -> verified "
          "book; cons = socket -> consumer; CPU = the stream's process; machine = all cores "
          "busy, of 100% per core)")  # fmt: skip
    print(f"\nreproduce: .venv/bin/python benchmarks/kraken_fanout.py {' '.join(sys.argv[1:])}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
