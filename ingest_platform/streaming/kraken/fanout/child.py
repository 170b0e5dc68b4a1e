"""The publisher process: ``python -m ingest_platform.streaming.kraken.fanout.child IN OUT``.

Started by `process.FanoutProcess` with two pipe descriptors: ``IN`` brings frames of items
the stream verified (see `process` for the format), ``OUT`` takes reports, bus gaps, log
records and requests back. Here runs the whole `FanoutPublisher` of the former design,
unchanged: epochs and gapless seqs, snapshots every N and at each epoch start, the bounded
buffer, the gap ledger, acknowledgements, retries and the NATS client.

It keeps no copy of the books (applying every update a second time cost it more than anything
but the bus): when the publisher needs a pair's book for a snapshot, this process asks the
stream for it (``want``), and the stream puts the book as it stands into the item flow
(``book``), in order, so it is exactly the book after the items before it. A later update of
the pair makes it stale; until the answer comes a due snapshot waits (the epoch goes on) and an
epoch that must restart waits (its updates are not published: the epoch had ended anyway).

It ends when asked (``close``: publish what it holds within ``drain_timeout``, write the rest
off as bus gaps, report a last time) or when the stream's end of ``IN`` closes (the stream's
process is gone: the same, with nobody left to read the report). SIGINT is ignored: a Ctrl-C
in the terminal reaches the whole process group, and the stream decides when this one stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
import time
from typing import Any

from ingest_platform.streaming.kraken.fanout.bus import StreamConfigMismatch
from ingest_platform.streaming.kraken.fanout.message import BookSnapshot
from ingest_platform.streaming.kraken.fanout.process import (
    FrameReader,
    counters,
    encode_frame,
    read_available,
)
from ingest_platform.streaming.kraken.fanout.publisher import FanoutPublisher

logger = logging.getLogger("ingest_platform.streaming.kraken.fanout.child")  # not __main__

PROFILE_ENV = "INGEST_PLATFORM_FANOUT_PROFILE"
"""Set to a path prefix, each publisher process writes its cProfile there (``<prefix>.<pid>``;
benchmarks only)."""

REPORT_SECONDS = 0.1
"""How often the stream hears the publisher's state (readiness, counters, latencies)."""


class _Relay(logging.Handler):
    """Log records go back to the stream, re-logged there under the same names."""

    def __init__(self, child: PublisherChild) -> None:
        super().__init__(logging.INFO)
        self.child = child
        self.setFormatter(logging.Formatter("%(message)s"))  # a traceback, if any, follows

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.child.send(("log", record.levelno, record.name, self.format(record)))


class _GapRows:
    """The publisher's ``log``: its bus gap rows go to the stream, which owns the log."""

    closed = False

    def __init__(self, child: PublisherChild) -> None:
        self.child = child

    def gap(self, *args: Any) -> int:
        self.child.send(("row", args))
        return -1


class PublisherChild:
    """Reads the stream's items, runs the publisher, asks for books, reports back."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.frames = FrameReader()
        self.publisher: FanoutPublisher | None = None
        self.fresh: dict[str, BookSnapshot] = {}
        """Books the stream sent that no later item of their pair has made stale."""
        self.asked: set[str] = set()
        self.last_recv_us: dict[str, int] = {}
        self.acks: list[int] = []
        self.out: asyncio.WriteTransport | None = None
        self.stop: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.halted = False
        self.failed = False

    # -- out ---------------------------------------------------------------------------------

    def send(self, obj: Any) -> None:
        if self.out is not None and not self.out.is_closing():
            self.out.write(encode_frame(obj))

    def send_report(self) -> None:
        publisher = self.publisher
        if publisher is None:
            return
        pending = [q[0].recv_us for q in (publisher.buffer, publisher.retry) if q]
        if publisher.inflight:
            pending.append(publisher.inflight[0][0].recv_us)
        acks, self.acks = self.acks, []
        self.send(
            ("report", publisher.report(), counters(publisher.stats), publisher.ready, acks,
             min(pending) if pending else None)
        )  # fmt: skip

    # -- in ----------------------------------------------------------------------------------

    def book_of(self, pair: str) -> BookSnapshot | None:
        """The publisher's `books`: the pair's book if one the stream sent is still current;
        else None, and the stream is asked for one (once until it answers)."""
        book = self.fresh.get(pair)
        if book is None and pair not in self.asked:
            self.asked.add(pair)
            self.send(("want", pair))
        return book

    def readable(self) -> None:
        batches = read_available(self.in_fd, self.frames)
        if batches is None:  # the stream is gone
            self.end()
            return
        for batch in batches:
            for op in batch:
                self.handle(op)

    def end(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            loop.remove_reader(self.in_fd)
        if self.stop is not None:
            self.stop.set()

    def handle(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        publisher = self.publisher
        if kind == "b":
            _, pair, type_, bids, asks, checksum, depth, pp, qp, exchange_ts, recv_us = op
            self.fresh.pop(pair, None)
            self.last_recv_us[pair] = recv_us
            if publisher is not None:
                publisher.book(pair, type_, bids, asks, checksum, depth, pp, qp, exchange_ts,
                               recv_us)  # fmt: skip
        elif kind == "f":
            _, channel, pair, type_, item, recv_us = op
            if publisher is not None:
                publisher.feed(channel, pair, type_, item, recv_us)
        elif kind == "r":
            self.fresh.pop(op[1], None)
            if publisher is not None:
                publisher.book_rejected(op[1])
        elif kind == "s":
            _, scope, status, previous = op
            if scope == "connection" and status == "reconnecting":
                self.fresh.clear()  # the stream's books are not verified until resynced
            if publisher is not None:
                publisher.status(scope, status, previous)
        elif kind == "h":
            if publisher is not None:
                publisher.halt(op[1])
        elif kind == "book":  # the answer to a `want` (None: the stream has no verified book)
            pair, fields = op[1], op[2]
            self.asked.discard(pair)
            if fields is not None:
                self.fresh[pair] = BookSnapshot(*fields)
                if publisher is not None:
                    recv_us = self.last_recv_us.get(pair) or time.time_ns() // 1000
                    publisher.book_available(pair, recv_us)
        elif kind == "config":
            sys.path[:0] = [p for p in op[1] if p not in sys.path]
        elif kind == "bus":
            self.start(*pickle.loads(op[1]))
        elif kind == "close":
            self.end()

    def start(self, bus: Any, pairs: tuple[str, ...], settings: Any, halted: bool) -> None:
        publisher = FanoutPublisher(bus, pairs, settings)
        publisher.books = self.book_of
        publisher.log = _GapRows(self)  # type: ignore[assignment]
        publisher.on_gap = lambda entry: self.send(("gap", entry))
        publisher.on_ack = self.acks.append
        publisher.halted = halted
        self.publisher = publisher
        self.task = asyncio.get_running_loop().create_task(self._run(publisher))

    async def _run(self, publisher: FanoutPublisher) -> None:
        try:
            await publisher.run()
        except StreamConfigMismatch as exc:
            self.send(("mismatch", str(exc)))
            logger.error("fan-out: %s", exc)
        except Exception:
            # A bug, not a bus fault (those the publisher handles): end without the goodbye,
            # so that the stream counts this process dead, writes down what it held and
            # starts another.
            logger.exception("fan-out: the publisher failed")
            self.failed = True
            self.end()

    # -- the process -------------------------------------------------------------------------

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        pipe = os.fdopen(self.out_fd, "wb", buffering=0, closefd=True)
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe)
        self.out = transport
        root = logging.getLogger()
        root.handlers[:] = [_Relay(self)]
        root.setLevel(logging.INFO)
        os.set_blocking(self.in_fd, False)
        loop.add_reader(self.in_fd, self.readable)
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=REPORT_SECONDS)
            self.send_report()
        if self.publisher is not None and not self.failed:
            await self.publisher.close(self.task)
        self.send_report()
        if not self.failed:
            self.send(("closed",))
        deadline = time.monotonic() + 5.0
        while transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        transport.close()
        await asyncio.sleep(0)
        return 1 if self.failed else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = PublisherChild(int(args[0]), int(args[1]))
    profile_to = os.environ.get(PROFILE_ENV)
    if not profile_to:
        return asyncio.run(child.main())
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(asyncio.run, child.main())
    finally:
        profiler.dump_stats(f"{profile_to}.{os.getpid()}")


if __name__ == "__main__":
    sys.exit(main())
