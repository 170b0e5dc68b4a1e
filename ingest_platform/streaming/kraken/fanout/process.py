"""`FanoutProcess`: the whole publisher in a process of its own; the stream's loop only hands over.

The stream's event loop used to run `FanoutPublisher` itself: sequencing, the buffer, the gap
ledger, acknowledgements and the NATS client cost ~28-36 µs of CPU per event on the loop that
also reads the socket and verifies the books (docs/pages/performance.md, "Kraken fan-out").
Here all of that runs in a child process (`fanout.child`), and the stream's side does two
things per event: append the verified item's fields (as the protocol gave them: levels as
tuples of the received decimal text) to a list, and write that list, `marshal`-ed, to a pipe
at the end of the loop turn, or at most a millisecond after the last write when one went less
than that ago (`flush_seconds`; non-blocking; asyncio's pipe
transport buffers what the pipe does not take yet). The child keeps no copy of the books: for
the snapshots it makes it asks (``want``), and the stream puts the pair's book as it stands into
the same flow, about ten times a second at 10k events/s (once per ``snapshot_every`` updates).

What comes back on a second pipe, off the hot path: a report a few times a second (the
``bus`` entry of the stream's report, counters, readiness, acknowledgement latencies for the
metrics), each bus gap (its row goes into the stream log here, where the log lives, with
channel ``bus``), the child's log records (re-logged under the same logger names) and a
`StreamConfigMismatch`.

The child's death is noticed (its end of the pipe closes), written down as a bus gap per pair
(reason ``publisher_died``: what it held may not be on the bus), reported (state ``down``,
``last_error``) and the child restarted after a delay that doubles up to `MAX_RESTART_DELAY`;
the new child floors its epochs at the bus's last ones, so every pair continues in a new
epoch that starts with a snapshot. A child that stops reading (more than
``max_handover_bytes`` waiting for it) is killed and treated the same way (``publisher_stalled``).
Neither ever stops the book or the log: the hand-over never waits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import marshal
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ingest_platform.streaming.kraken.fanout import message
from ingest_platform.streaming.kraken.fanout.bus import Bus, StreamConfigMismatch
from ingest_platform.streaming.kraken.fanout.publisher import (
    BUS_GAP_CHANNEL,
    FanoutPublisher,
    FanoutSettings,
    FanoutStats,
)
from ingest_platform.streaming.kraken.protocol.rows import RecordSink, SinkError

logger = logging.getLogger(__name__)

MAX_RESTART_DELAY = 30.0
"""The longest wait before a dead publisher process is started again."""

COUNTERS = (
    "enqueued",
    "published",
    "duplicates",
    "retried",
    "dropped",
    "unacked",
    "not_ready",
    "gaps",
    "epochs",
    "reconnects",
)
"""`FanoutStats` counters a report carries; summed over the child processes of one stream."""

# ---- frames: a 4-byte length, a 1-byte codec, the payload -----------------------------------

_MARSHAL = b"m"
_PICKLE = b"p"


def encode_frame(obj: Any) -> bytes:
    """One frame: ``marshal`` (plain str/int/tuple/list/dict/None, the fastest codec there
    is for them), or ``pickle`` for anything else (the child's configuration)."""
    try:
        data = _MARSHAL + marshal.dumps(obj)
    except ValueError:
        data = _PICKLE + pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "little") + data


class FrameReader:
    """Frames out of a byte stream that arrives in arbitrary pieces."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out: list[Any] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "little")
            if end - pos - 4 < size:
                break
            body = bytes(buf[pos + 5 : pos + 4 + size])
            codec = buf[pos + 4 : pos + 5]
            out.append(marshal.loads(body) if codec == _MARSHAL else pickle.loads(body))
            pos += 4 + size
        del buf[:pos]
        return out


def read_available(fd: int, reader: FrameReader) -> list[Any] | None:
    """The whole frames readable now on the non-blocking ``fd`` (``[]`` when none is complete
    yet), or None once the other end has closed: what each side's reader callback does."""
    try:
        data = os.read(fd, 1 << 20)
    except BlockingIOError:
        return []
    except OSError:
        data = b""
    return reader.feed(data) if data else None


def read_frame_blocking(fd: int, reader: FrameReader) -> Any:
    """The next frame from a blocking ``fd`` (the child reads its configuration so)."""
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            raise EOFError("the stream's end of the pipe closed before the configuration")
        frames = reader.feed(data)
        if frames:
            if len(frames) > 1:
                raise ValueError("the configuration must come alone")
            return frames[0]


def counters(stats: FanoutStats) -> dict[str, int]:
    """A `FanoutStats`'s counters (`COUNTERS`) as plain values."""
    return {name: int(getattr(stats, name)) for name in COUNTERS}


def _empty_report(state: str) -> dict[str, Any]:
    return {
        "state": state,
        "session": None,
        "buffered": 0,
        "in_flight": 0,
        **{name: 0 for name in COUNTERS if name != "not_ready"},
        "publish_p99_ms": None,
        "last_error": None,
        "recent_gaps": [],
    }


class _Child:
    """One publisher process and the stream's ends of its two pipes."""

    def __init__(self, proc: subprocess.Popen[bytes], to_child: int, from_child: int) -> None:
        self.proc = proc
        self.to_child = to_child
        self.from_child = from_child
        self.writer: asyncio.WriteTransport | None = None
        self.frames = FrameReader()
        self.started_us = time.time_ns() // 1000
        self.report: dict[str, Any] | None = None
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.pending_since_us: int | None = None
        self.report_us: int | None = None
        self.handed_since_report = 0
        self.closed = False  # it said goodbye after its final report
        self.gone = False
        self.stalled = False


class FanoutProcess:
    """The stream's handle on a publisher process; the same calls as `FanoutPublisher`.

    ``bus`` (not connected; it is pickled into each child, so a `JetStreamBus` carries its
    credentials only through the pipe), ``pairs`` and ``settings`` are the child's
    `FanoutPublisher`'s. Set `books` (the stream's verified books, sent when the child asks) and
    `log` (where bus gap rows go) before the stream starts; `FanoutSink` does both.
    """

    def __init__(
        self,
        bus: Bus,
        pairs: Iterable[str],
        settings: FanoutSettings | None = None,
        *,
        on_ack: Callable[[int], None] | None = None,
        restart_delay: float = 0.5,
        max_handover_bytes: int = 64 << 20,
        flush_seconds: float = 0.001,
    ) -> None:
        self.bus = bus
        self.pairs = tuple(pairs)
        self.settings = settings or FanoutSettings()
        self.on_ack = on_ack
        """Called with each acknowledged publish's latency (ns), a few times a second."""
        self.books: Callable[[str], message.BookSnapshot | None] = lambda symbol: None
        self.log: RecordSink | None = None
        self.restart_delay = restart_delay
        self.flush_seconds = flush_seconds
        """At most one write to the pipe per this long (0: one per loop turn); items that
        come meanwhile wait for the next together. Every write wakes the publisher process,
        and a wake-up costs it tens of µs: at 10k events/s one write a millisecond instead of
        one per loop turn."""
        self.max_handover_bytes = max_handover_bytes
        self.stats = FanoutStats()
        self.recent_gaps: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self.ready = False
        self.halted = False
        self.restarts = 0
        self.handed = 0
        """Items handed to a publisher process (book items, trades, bars, notices)."""
        self._report = _empty_report("starting")
        self._base: dict[str, int] = dict.fromkeys(COUNTERS, 0)  # earlier children's counts
        self._died_gaps = 0
        self._skipped = 0  # items no publisher process was there to take
        self._batch: list[tuple[Any, ...]] = []
        self._scheduled = False
        self._last_write = float("-inf")
        self._child: _Child | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._closing = False
        self._delay = restart_delay
        self._restart_handle: asyncio.TimerHandle | None = None

    # -- the hot path (the stream's event loop; plain calls, never waits) ----------------------

    def book(
        self,
        pair: str,
        kind: str,
        bids: Any,
        asks: Any,
        checksum: int,
        depth: int,
        price_precision: int,
        qty_precision: int,
        exchange_ts: str | None,
        recv_us: int,
    ) -> None:
        """A book item whose checksum verified (levels as received)."""
        if self._child is None or self.halted:
            self._skipped += 1
            self.stats.not_ready += 1
            return
        self._batch.append(
            ("b", pair, kind, bids, asks, checksum, depth, price_precision, qty_precision,
             exchange_ts, recv_us)
        )  # fmt: skip
        if not self._scheduled:
            self._schedule()

    def book_rejected(self, pair: str) -> None:
        """A book item did not verify: its epoch ends, and the child's copy of the book too."""
        self._put(("r", pair))

    def feed(self, kind: str, pair: str, type_: str, item: Mapping[str, Any], recv_us: int) -> None:
        """A trade or OHLC item."""
        if self._child is None or self.halted:
            self._skipped += 1
            self.stats.not_ready += 1
            return
        self._batch.append(("f", kind, pair, type_, item, recv_us))
        if not self._scheduled:
            self._schedule()

    def status(self, scope: str, status: str | None, previous: str | None) -> None:
        """A connection or exchange status change."""
        if not self.halted:
            self._put(("s", scope, status, previous))

    def halt(self, halt: Mapping[str, Any]) -> None:
        """The stream halted: the child publishes the halt event; nothing after it."""
        if not self.halted:
            self._put(("h", dict(halt)))
            self.halted = True

    def _put(self, op: tuple[Any, ...]) -> None:
        if self._child is None:
            return
        self._batch.append(op)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        """The write goes at the end of this loop turn, or, when the last one went less than
        `flush_seconds` ago, that long after it: at most one write per `flush_seconds`, and
        no wait at all for an item that finds the pipe idle (a timer per batch had made every
        item at 1k events/s wait a whole millisecond, 1.5 ms at the median with epoll's
        rounding)."""
        loop = self._loop
        if loop is not None:
            self._scheduled = True
            wait = self._last_write + self.flush_seconds - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)

    def _flush(self) -> None:
        """The items since the last write (`flush_seconds`): one frame, one write."""
        self._scheduled = False
        batch = self._batch
        child = self._child
        if not batch or child is None or child.writer is None:
            return
        self._batch = []
        self.handed += len(batch)
        child.handed_since_report += len(batch)
        writer = child.writer
        if self._loop is not None:
            self._last_write = self._loop.time()
        writer.write(encode_frame(batch))
        if writer.get_write_buffer_size() > self.max_handover_bytes and not child.stalled:
            child.stalled = True
            logger.error(
                "fan-out: the publisher process read nothing of %d bytes; killing it",
                writer.get_write_buffer_size(),
            )
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()

    # -- the child ---------------------------------------------------------------------------

    def _start_child(self) -> None:
        """Spawn a publisher process, hand it its configuration and the verified books."""
        self._restart_handle = None
        loop = self._loop
        if loop is None or self._closing:
            return
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ingest_platform.streaming.kraken.fanout.child",
                 str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            self._note_down(f"publisher process not started: {exc}")
            self._schedule_restart()
            return
        os.close(to_child_r)
        os.close(from_child_w)
        os.set_blocking(to_child_w, False)
        os.set_blocking(from_child_r, False)
        child = _Child(proc, to_child_w, from_child_r)
        self._child = child
        self._batch = []
        loop.add_reader(from_child_r, self._on_readable, child)
        loop.create_task(self._connect_writer(child))
        # The configuration first (sys.path so a bus class a test defines imports there too);
        # whatever the stream verifies next follows in order. Books go when the child asks.
        self._batch.append(("config", list(sys.path)))
        config = (self.bus, self.pairs, self.settings, self.halted)
        self._batch.append(("bus", pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)))
        self._schedule()

    async def _connect_writer(self, child: _Child) -> None:
        assert self._loop is not None
        pipe = os.fdopen(child.to_child, "wb", buffering=0, closefd=True)
        try:
            transport, _ = await self._loop.connect_write_pipe(_PipeProtocol, pipe)
        except OSError as exc:
            logger.error("fan-out: no pipe to the publisher process: %s", exc)
            pipe.close()
            return
        if child.gone:
            transport.close()
            return
        child.writer = transport
        self._flush()

    def _on_readable(self, child: _Child) -> None:
        frames = read_available(child.from_child, child.frames)
        if frames is None:
            self._child_gone(child)
            return
        for frame in frames:
            self._handle(child, frame)

    def _handle(self, child: _Child, frame: tuple[Any, ...]) -> None:
        op = frame[0]
        if op == "report":
            _, report, counts, ready, acks, pending_since_us = frame
            child.report = report
            child.counters = counts
            child.pending_since_us = pending_since_us
            child.report_us = time.time_ns() // 1000
            child.handed_since_report = 0
            self._report = report
            for name, value in counts.items():
                setattr(self.stats, name, self._base.get(name, 0) + value)
            self.stats.not_ready += self._skipped
            self.stats.gaps += self._died_gaps
            self.stats.state = report["state"]
            self.stats.last_error = report["last_error"]
            if ready and not self.ready:
                self._delay = self.restart_delay
            self.ready = bool(ready)
            on_ack = self.on_ack
            if on_ack is not None:
                for ns in acks:
                    on_ack(ns)
        elif op == "want":
            # The child needs a pair's book for a snapshot: the book as it stands, after every
            # item already handed over, goes into the same flow (`child` module docstring).
            book = self.books(frame[1])
            fields = None
            if book is not None:
                fields = (book.bids, book.asks, book.checksum, book.depth,
                          book.price_precision, book.qty_precision)  # fmt: skip
            self._put(("book", frame[1], fields))
        elif op == "gap":
            self.recent_gaps.append(frame[1])
        elif op == "row":
            self._write_row(*frame[1])
        elif op == "log":
            _, level, name, text = frame
            logging.getLogger(name).log(level, "%s", text)
        elif op == "mismatch":
            self.stats.state = "misconfigured"
            self.stats.last_error = frame[1]
            done = self._done
            if done is not None and not done.done():
                done.set_exception(StreamConfigMismatch(frame[1]))
        elif op == "closed":
            child.closed = True

    def _write_row(self, *args: Any) -> None:
        log = self.log
        if log is None or log.closed:
            return
        try:
            log.gap(*args)
        except SinkError as exc:  # the log halts the stream on its own next write
            logger.error("fan-out: bus gap row not logged: %s", exc)

    def _child_gone(self, child: _Child) -> None:
        """The child's end of the pipe closed: it finished (closing) or it died."""
        if child.gone:
            return
        child.gone = True
        loop = self._loop
        if loop is not None:
            loop.remove_reader(child.from_child)
        with contextlib.suppress(OSError):
            os.close(child.from_child)
        # (The write end's transport is left alone: it closes itself when the child's end of
        # that pipe goes, with the process; aborting it too would close it twice.)
        if self._child is child:
            self._child = None
            self._batch = []
        if not child.closed:
            self._after_death(child, 0)

    def _after_death(self, child: _Child, tries: int) -> None:
        """The exit code (its pipe closes a moment before the kernel has it), then the gaps
        and the restart; a child that closed its pipe yet lives on is no publisher: killed."""
        code = child.proc.poll()
        if code is None and tries < 200 and self._loop is not None:  # up to 2 s
            self._loop.call_later(0.01, self._after_death, child, tries + 1)
            return
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            self._reap(child.proc, 0)
        self._died(child, code)
        if not self._closing and not self.halted:
            self._schedule_restart()

    def _reap(self, proc: subprocess.Popen[bytes], tries: int) -> None:
        if proc.poll() is None and tries < 1000 and self._loop is not None:
            self._loop.call_later(0.01, self._reap, proc, tries + 1)

    def _died(self, child: _Child, code: int | None) -> None:
        """Write down what the dead child may have taken with it: a bus gap per pair."""
        reason = "publisher_stalled" if child.stalled else "publisher_died"
        for name in COUNTERS:
            self._base[name] = self._base.get(name, 0) + int(child.counters.get(name, 0))
        self.ready = False
        now_us = time.time_ns() // 1000
        since = child.pending_since_us or child.report_us or child.started_us
        held = int((child.report or {}).get("buffered", 0)) + int(
            (child.report or {}).get("in_flight", 0)
        )
        lost = held + child.handed_since_report
        session = (child.report or {}).get("session")
        detail = (
            f"the publisher process ended (exit code {code}); up to {lost} events handed to it "
            f"may not be on the bus; it restarts with new epochs"
        )
        self._note_down(detail)
        logger.error("fan-out: %s", detail)
        for pair in self.pairs:
            self._died_gaps += 1
            self.stats.gaps += 1
            self.recent_gaps.append(
                {"pair": pair, "kind": "all", "session": session, "seq_first": None,
                 "seq_last": None, "lost": lost, "reason": reason}
            )  # fmt: skip
            self._write_row(
                now_us, pair, BUS_GAP_CHANNEL, reason, min(since, now_us), now_us, None, None,
                detail,
            )  # fmt: skip

    def _note_down(self, error: str) -> None:
        self.stats.state = "down"
        self.stats.last_error = error
        self._report = {**self._report, "state": "down", "last_error": error, "buffered": 0,
                        "in_flight": 0}  # fmt: skip

    def _schedule_restart(self) -> None:
        loop = self._loop
        if loop is None or self._closing or self._restart_handle is not None:
            return
        delay, self._delay = self._delay, min(self._delay * 2, MAX_RESTART_DELAY)
        self.restarts += 1
        self._restart_handle = loop.call_later(delay, self._start_child)

    # -- run and close -----------------------------------------------------------------------

    async def run(self) -> None:
        """Start the publisher process and keep one running until `close`; raises
        `StreamConfigMismatch` when the bus holds the stream with another configuration."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = loop.create_future()
        self.stats.state = "connecting"
        self._report = _empty_report("connecting")
        self._start_child()
        watch = loop.create_task(self._watch())
        try:
            await self._done
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _watch(self) -> None:
        """A child that died without its pipe closing (it cannot, but a zombie is reaped)."""
        while True:
            await asyncio.sleep(1.0)
            child = self._child
            if child is not None and child.proc.poll() is not None:
                await asyncio.sleep(0.2)  # let its last frames and EOF arrive first
                if not child.gone:
                    self._child_gone(child)

    async def close(self, task: asyncio.Task[None] | None = None) -> None:
        """Ask the child to publish what it holds (at most ``drain_timeout``), write the rest
        off as bus gaps and close the bus; wait for it, then for its process."""
        self._closing = True
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None
        child = self._child
        if child is not None:
            self._put(("close",))
            self._flush()
            deadline = time.monotonic() + self.settings.drain_timeout + 5.0
            while not child.gone and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if not child.gone:
                logger.error("fan-out: the publisher process did not finish; killing it")
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                self._child_gone(child)
            for attempt in range(300):  # 2 s to exit, then killed (and reaped)
                if child.proc.poll() is not None:
                    break
                if attempt == 200:
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.kill()
                await asyncio.sleep(0.01)
        done = self._done
        if done is not None and not done.done():
            done.set_result(None)
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=1.0)
        if self.stats.state != "misconfigured":
            self.stats.state = "stopped"
        self._report = {**self._report, "state": self.stats.state}

    # -- reports -----------------------------------------------------------------------------

    def buffered(self) -> int:
        """Events the publisher process holds (its buffer and retries), as last reported."""
        return int(self._report.get("buffered") or 0)

    def report(self) -> dict[str, Any]:
        """The ``bus`` entry of the stream's report: the child's, with the counters of every
        child this stream had, the deaths' gaps, and the process's own state."""
        out = dict(self._report)
        for name in COUNTERS:
            if name in out:
                out[name] = getattr(self.stats, name)
        out["state"] = self.stats.state
        out["last_error"] = self.stats.last_error
        out["recent_gaps"] = list(self.recent_gaps)[-10:]
        child = self._child
        out["process"] = {
            "pid": child.proc.pid if child is not None else None,
            "restarts": self.restarts,
            "handed": self.handed,
        }
        return out


class _PipeProtocol(asyncio.Protocol):
    """The write end's protocol: nothing to do (a broken pipe shows as the read end's EOF)."""


def publisher_for(
    bus: Bus, pairs: Iterable[str], settings: FanoutSettings, *, process: bool = True
) -> FanoutPublisher | FanoutProcess:
    """The publisher a stream runs with: in a process of its own (``process``), or on the
    stream's own loop (the former design, kept for comparison)."""
    if process:
        return FanoutProcess(bus, pairs, settings)
    return FanoutPublisher(bus, pairs, settings)


StreamFanout = FanoutPublisher | FanoutProcess
"""What a stream's connection publishes through."""
