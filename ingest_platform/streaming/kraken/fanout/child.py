"""The publisher process: ``python -m ingest_platform.streaming.kraken.fanout.child IN OUT``.

Started by `process.FanoutProcess` with two pipe descriptors: ``IN`` brings frames of items
the stream verified (see `process` for the format), ``OUT`` takes reports, bus gaps and log
records back. Here runs the whole `FanoutPublisher` of the former design, unchanged: epochs and
gapless seqs, snapshots every N and at each epoch start, the bounded buffer, the gap ledger,
acknowledgements, retries and the NATS client. It keeps its own copy of every book, applied from
the same verified items (or seeded from the stream's books when it starts), for the snapshots it
makes.

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

from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.fanout.bus import StreamConfigMismatch
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


def _levels(levels: Any) -> list[dict[str, Any]]:
    return [{"price": p, "qty": q} for p, q in levels]


class PublisherChild:
    """Reads the stream's items, keeps the books, runs the publisher, reports back."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.frames = FrameReader()
        self.publisher: FanoutPublisher | None = None
        self.books: dict[str, KrakenBook] = {}
        self.valid: set[str] = set()
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

    def book_of(self, pair: str) -> KrakenBook | None:
        return self.books.get(pair) if pair in self.valid else None

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
            self.apply(pair, type_, bids, asks, checksum, depth, pp, qp)
            if publisher is not None:
                publisher.book(pair, type_, bids, asks, checksum, depth, pp, qp, exchange_ts,
                               recv_us)  # fmt: skip
        elif kind == "f":
            _, channel, pair, type_, item, recv_us = op
            if publisher is not None:
                publisher.feed(channel, pair, type_, item, recv_us)
        elif kind == "r":
            self.valid.discard(op[1])
            if publisher is not None:
                publisher.book_rejected(op[1])
        elif kind == "s":
            _, scope, status, previous = op
            if scope == "connection" and status == "reconnecting":
                self.valid.clear()  # the stream's books are not verified until resynced
            if publisher is not None:
                publisher.status(scope, status, previous)
        elif kind == "h":
            if publisher is not None:
                publisher.halt(op[1])
        elif kind == "seed":
            _, pair, bids, asks, checksum, depth, pp, qp = op
            self.apply(pair, "snapshot", bids, asks, checksum, depth, pp, qp)
        elif kind == "config":
            sys.path[:0] = [p for p in op[1] if p not in sys.path]
        elif kind == "bus":
            self.start(*pickle.loads(op[1]))
        elif kind == "close":
            self.end()

    def apply(
        self, pair: str, type_: str, bids: Any, asks: Any, checksum: int, depth: int, pp: int,
        qp: int,
    ) -> None:  # fmt: skip
        """The same verified item on this process's copy of the pair's book."""
        item = {"symbol": pair, "bids": _levels(bids), "asks": _levels(asks), "checksum": checksum}
        book = self.books.get(pair)
        try:
            if type_ == "snapshot":
                if book is None or (book.depth, book.price_precision, book.qty_precision) != (
                    depth, pp, qp
                ):  # fmt: skip
                    book = self.books[pair] = KrakenBook(pair, depth, pp, qp)
                ok = book.apply_snapshot(item)
            elif book is not None and pair in self.valid:
                ok = book.apply_update(item)
            else:
                return
        except (ValueError, KeyError, TypeError) as exc:
            ok = False
            logger.error("fan-out: the publisher's copy of %s refused an item: %s", pair, exc)
        if ok:
            self.valid.add(pair)
        else:
            self.valid.discard(pair)
            logger.error("fan-out: the publisher's copy of %s lost the checksum", pair)

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
