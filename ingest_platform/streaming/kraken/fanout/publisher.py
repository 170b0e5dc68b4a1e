"""`FanoutPublisher`: verified events in from the stream's hot path, onto a `Bus`, never blocking.

The stream's event loop hands it each verified book item, trade, bar, status change and halt
(`book`, `feed`, `status`, `halt`: plain method calls that append to a bounded buffer and
return). Two tasks on the same loop do the rest: the sender publishes the buffer in order,
keeping at most ``window`` publishes in flight, and the acker waits for each acknowledgement
(at most ``ack_timeout``). So the book never waits for the bus: a slow or absent bus only
fills the buffer.

What is lost is written down, never hidden:

- an event that finds the buffer full is dropped (``dropped``);
- an event not acknowledged within ``ack_timeout`` is sent again (same message id, so the bus
  stores it once) up to ``max_attempts`` times, then given up (``unacked``);
- either way its (pair, kind, epoch, seq range) becomes a **bus gap**: a ``gap`` row with
  channel ``bus`` in the stream log, and an entry in the report (observation metadata,
  heartbeat file). A book that lost an event ends its epoch: its next verified event starts a
  new epoch with a snapshot of the book.

When the bus comes back after being unreachable, every pair starts a new epoch with a
snapshot. Before its first connection the publisher publishes nothing: epochs must continue
after the last one the bus holds (read per pair from the bus), or a restarted stream would
reuse message ids the bus deduplicates away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest_platform.streaming.kraken.fanout import message
from ingest_platform.streaming.kraken.fanout.bus import (
    Ack,
    Bus,
    BusError,
    StreamConfigMismatch,
    StreamSpec,
)
from ingest_platform.streaming.kraken.protocol.rows import RecordSink, SinkError

logger = logging.getLogger(__name__)

BUS_GAP_CHANNEL = "bus"
"""The ``channel`` of a bus gap's row in the stream log (replay reads only ``book`` gaps)."""


@dataclass(frozen=True)
class FanoutSettings:
    """How the publisher buffers, waits and retries, and the stream it publishes to."""

    snapshot_every: int = 1000
    buffer_size: int = 100_000
    window: int = 2000
    ack_timeout: float = 2.0
    max_attempts: int = 3
    retry_delay: float = 0.25
    drain_timeout: float = 5.0
    gap_flush_seconds: float = 1.0
    confirm_every: int = 64
    """Publishes per JetStream answer at most (each burst's last asks for one too); 1: an answer
    for every publish (see `confirm`: the sum that settles the rest assumes one writer)."""
    prefix: str = message.SUBJECT_PREFIX
    stream: StreamSpec = field(default_factory=StreamSpec)

    def __post_init__(self) -> None:
        for name in ("snapshot_every", "buffer_size", "window", "max_attempts", "confirm_every"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"FanoutSettings.{name} must be an int >= 1, got {value!r}")
        for name in ("ack_timeout", "retry_delay", "drain_timeout", "gap_flush_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FanoutSettings.{name} must be > 0, got {getattr(self, name)}")


class Outgoing:
    """One event on its way: where it goes, its id, and what the gap ledger needs."""

    __slots__ = (
        "attempts",
        "event",
        "kind",
        "msg_id",
        "pair",
        "recv_us",
        "seq",
        "series",
        "subject",
    )

    def __init__(
        self,
        kind: str,
        pair: str | None,
        series: int | str | None,
        seq: int | None,
        subject: str,
        msg_id: str,
        event: dict[str, Any],
        recv_us: int,
    ) -> None:
        self.kind = kind
        self.pair = pair
        self.series = series  # a book's epoch, a feed's publisher session
        self.seq = seq
        self.subject = subject
        self.msg_id = msg_id
        self.event = event
        self.recv_us = recv_us
        self.attempts = 0


@dataclass
class BusGap:
    """Events of one pair and kind that never reached the bus: ``series`` is the book epoch
    (or the publisher session of trades and bars), ``first``..``last`` the seq range."""

    pair: str
    kind: str
    series: int | str
    first: int
    last: int
    count: int
    reason: str
    start_us: int
    end_us: int
    last_loss_ns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "kind": self.kind,
            "epoch" if self.kind == "book" else "session": self.series,
            "seq_first": self.first,
            "seq_last": self.last,
            "lost": self.count,
            "reason": self.reason,
        }

    def detail(self) -> str:
        label = "epoch" if self.kind == "book" else "session"
        return (
            f"{self.kind} {label}={self.series} seq={self.first}..{self.last} "
            f"lost={self.count} ({self.reason})"
        )


@dataclass
class FanoutStats:
    """What the publisher counts; `snapshot` is the report's ``bus`` entry."""

    state: str = "starting"
    enqueued: int = 0
    published: int = 0
    duplicates: int = 0
    retried: int = 0
    dropped: int = 0
    unacked: int = 0
    not_ready: int = 0
    gaps: int = 0
    epochs: int = 0
    reconnects: int = 0
    last_error: str | None = None
    publish_ns: collections.deque[int] = field(
        default_factory=lambda: collections.deque(maxlen=10_000)
    )


class FanoutPublisher:
    """Publishes the stream's verified events to ``bus``; see the module docstring.

    ``pairs`` are the configured pairs (their last epochs are read from the bus). Set `books`
    (a pair's verified book as a `message.BookSnapshot`, for snapshots the publisher makes) and
    `log` (where bus gap rows go) before the stream starts; `FanoutSink` does both.
    """

    def __init__(
        self,
        bus: Bus,
        pairs: Iterable[str],
        settings: FanoutSettings | None = None,
        *,
        on_ack: Callable[[int], None] | None = None,
    ) -> None:
        self.bus = bus
        self.pairs = tuple(pairs)
        self.settings = settings or FanoutSettings()
        self.on_ack = on_ack
        """Called with each acknowledged publish's latency (ns), e.g. to feed a histogram."""
        self.books: Callable[[str], message.BookSnapshot | None] = lambda symbol: None
        """A pair's verified book as it stands now, or None (none verified, or, in the
        publisher process, none to hand until the stream sends one: `book_available`)."""
        self.log: RecordSink | None = None
        self.on_gap: Callable[[dict[str, Any]], None] | None = None
        """Called with each bus gap written down (`BusGap.as_dict`), e.g. to relay it."""
        self.session = uuid.uuid4().hex[:12]
        self.sequencer = message.SnapshotSequencer(self.settings.snapshot_every)
        self.feeds = message.FeedSequencer()
        self.stats = FanoutStats()
        self.buffer: collections.deque[Outgoing] = collections.deque()
        self.retry: collections.deque[Outgoing] = collections.deque()
        self.inflight: collections.deque[tuple[Outgoing, asyncio.Future[Ack], int]] = (
            collections.deque()
        )
        self.ready = False
        self.halted = False
        self.gaps: dict[tuple[str, str, int | str], BusGap] = {}
        self.recent_gaps: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self._notices = 0
        self._closing = False
        self._wake: asyncio.Event | None = None
        self._acked: asyncio.Event | None = None
        self._down = False
        self._restart_after: dict[str, int] = {}  # pair -> monotonic ns
        self._subjects: dict[tuple[str, str], str] = {}

    # -- the hot path (the stream's event loop; plain calls, never waits) ----------------------

    def book(
        self,
        pair: str,
        kind: str,
        bids: Iterable[Any],
        asks: Iterable[Any],
        checksum: int,
        depth: int,
        price_precision: int,
        qty_precision: int,
        exchange_ts: str | None,
        recv_us: int,
    ) -> None:
        """A book item whose checksum verified (levels as received)."""
        if self.halted or not self.ready:
            self.stats.not_ready += 1
            return
        if kind == "snapshot":
            if not self._room():
                return
            slot = self._start_epoch(pair, recv_us)
            self._put_book(
                pair,
                slot,
                "snapshot",
                message.level_list(bids),
                message.level_list(asks),
                checksum,
                depth,
                price_precision,
                qty_precision,
                exchange_ts,
                recv_us,
            )
            return
        step = self.sequencer.update(pair)
        if step is None:  # the epoch ended (a lost event): restart it from the book itself
            self._restart(pair, recv_us)
            return
        slot, snapshot_due = step
        self._put_book(
            pair,
            slot,
            "update",
            message.level_list(bids),
            message.level_list(asks),
            checksum,
            depth,
            price_precision,
            qty_precision,
            exchange_ts,
            recv_us,
        )
        if snapshot_due and self.sequencer.is_live(pair):
            book = self.books(pair)
            if book is not None:  # else it stays due: the next update (or book) tries again
                self._snapshot(pair, book, self.sequencer.snapshot(pair), recv_us)

    def book_available(self, pair: str, recv_us: int) -> None:
        """`books` has the pair's book now: the snapshot it waited for (a periodic one due, or
        the one a new epoch starts with) can go out."""
        if self.halted or not self.ready:
            return
        if not self.sequencer.is_live(pair):
            self._restart(pair, recv_us)
        elif self.sequencer.due(pair):
            book = self.books(pair)
            if book is not None:
                self._snapshot(pair, book, self.sequencer.snapshot(pair), recv_us)

    def book_rejected(self, pair: str) -> None:
        """A book item did not verify: its epoch ends (the next exchange snapshot starts one)."""
        self.sequencer.end(pair)

    def feed(self, kind: str, pair: str, type_: str, item: Mapping[str, Any], recv_us: int) -> None:
        """A trade or OHLC item."""
        if self.halted or not self.ready:
            self.stats.not_ready += 1
            return
        seq = self.feeds.next(kind, pair)
        event = message.feed_event(kind, pair, self.session, seq, type_, item, recv_us)
        self._put(
            Outgoing(
                kind,
                pair,
                self.session,
                seq,
                self._subject(kind, pair),
                message.feed_msg_id(kind, pair, self.session, seq),
                event,
                recv_us,
            )
        )

    def status(self, scope: str, status: str | None, previous: str | None) -> None:
        """A connection or exchange status change (published even before the first book)."""
        if self.halted:
            return
        now_us = time.time_ns() // 1000
        n = self._notices
        self._notices += 1
        event = message.status_event(self.session, n, scope, status, previous, now_us)
        self._put(self._notice("status", n, event, now_us))

    def halt(self, halt: Mapping[str, Any]) -> None:
        """The stream halted: publish the halt event; nothing after it."""
        if self.halted:
            return
        now_us = time.time_ns() // 1000
        n = self._notices
        self._notices += 1
        self.halted = True
        self._put(
            self._notice("halt", n, message.halt_event(self.session, n, halt, now_us), now_us)
        )

    # -- the hot path's helpers --------------------------------------------------------------

    def _notice(self, kind: str, n: int, event: dict[str, Any], now_us: int) -> Outgoing:
        return Outgoing(
            kind,
            None,
            self.session,
            n,
            message.subject(kind, None, self.settings.prefix),
            message.notice_msg_id(kind, self.session, n),
            event,
            now_us,
        )

    def _subject(self, kind: str, pair: str) -> str:
        """`message.subject`, built (and its pair checked) once per kind and pair."""
        key = (kind, pair)
        subject = self._subjects.get(key)
        if subject is None:
            subject = self._subjects[key] = message.subject(kind, pair, self.settings.prefix)
        return subject

    def _room(self) -> bool:
        if len(self.buffer) < self.settings.buffer_size:
            return True
        self.stats.dropped += 1  # nothing assigned yet: no seq lost, the epoch waits for room
        return False

    def _start_epoch(self, pair: str, recv_us: int) -> message.Slot:
        self._close_gaps(pair, "book", recv_us)
        self.stats.epochs += 1
        return self.sequencer.new_epoch(pair)

    def _restart(self, pair: str, recv_us: int) -> None:
        """A new epoch starting with a snapshot of the pair's verified book (if it has one).

        After a loss the pair waits ``retry_delay`` before trying again: a bus that refuses
        everything (storage full) costs one gap row per pair and try, not one per update.
        """
        if time.monotonic_ns() < self._restart_after.get(pair, 0):
            self.stats.not_ready += 1
            return
        book = self.books(pair)
        if book is None or not self._room():
            return
        self._snapshot(pair, book, self._start_epoch(pair, recv_us), recv_us)

    def _snapshot(
        self, pair: str, book: message.BookSnapshot, slot: message.Slot, recv_us: int
    ) -> None:
        self._put_book(
            pair,
            slot,
            "snapshot",
            book.bids,
            book.asks,
            book.checksum,
            book.depth,
            book.price_precision,
            book.qty_precision,
            None,
            recv_us,
        )

    def _put_book(
        self,
        pair: str,
        slot: message.Slot,
        kind: str,
        bids: list[list[Any]],
        asks: list[list[Any]],
        checksum: int,
        depth: int,
        pp: int,
        qp: int,
        exchange_ts: str | None,
        recv_us: int,
    ) -> None:
        event = message.book_event(
            pair,
            slot.epoch,
            slot.seq,
            kind,
            bids,
            asks,
            checksum,
            depth,
            pp,
            qp,
            exchange_ts,
            recv_us,
        )
        self._put(
            Outgoing(
                "book",
                pair,
                slot.epoch,
                slot.seq,
                self._subject("book", pair),
                message.book_msg_id(pair, slot.epoch, slot.seq),
                event,
                recv_us,
            )
        )

    def _put(self, out: Outgoing) -> None:
        if len(self.buffer) >= self.settings.buffer_size:
            self.stats.dropped += 1
            self._lost(out, "buffer_full")
            return
        self.buffer.append(out)
        self.stats.enqueued += 1
        wake = self._wake
        if wake is not None and not wake.is_set():
            wake.set()

    # -- gaps --------------------------------------------------------------------------------

    def _lost(self, out: Outgoing, reason: str) -> None:
        """Write an event off: count it in its pair's open gap; a book's epoch ends."""
        if out.pair is None or out.seq is None or out.series is None:
            logger.warning("fan-out: %s event %s lost (%s)", out.kind, out.msg_id, reason)
            return
        if out.kind == "book" and self.sequencer.epoch(out.pair) == out.series:
            self.sequencer.end(out.pair)
            delay = int(self.settings.retry_delay * 1e9)
            self._restart_after[out.pair] = time.monotonic_ns() + delay
        key = (out.pair, out.kind, out.series)
        now_ns = time.monotonic_ns()
        gap = self.gaps.get(key)
        if gap is None or out.seq != gap.last + 1:
            if gap is not None:
                self._write_gap(self.gaps.pop(key), out.recv_us)
            self.gaps[key] = BusGap(
                out.pair,
                out.kind,
                out.series,
                out.seq,
                out.seq,
                1,
                reason,
                out.recv_us,
                out.recv_us,
                now_ns,
            )
            return
        gap.last = out.seq
        gap.count += 1
        gap.end_us = out.recv_us
        gap.last_loss_ns = now_ns
        if reason not in gap.reason:
            gap.reason += f", {reason}"

    def _close_gaps(self, pair: str, kind: str, end_us: int) -> None:
        for key in [k for k in self.gaps if k[0] == pair and k[1] == kind]:
            self._write_gap(self.gaps.pop(key), end_us)

    def flush_gaps(self, quiet_ns: int = 0) -> None:
        """Write down every open gap that took no loss for ``quiet_ns`` (0: all of them)."""
        now_ns = time.monotonic_ns()
        for key in [k for k, g in self.gaps.items() if now_ns - g.last_loss_ns >= quiet_ns]:
            gap = self.gaps.pop(key)
            self._write_gap(gap, gap.end_us)

    def _write_gap(self, gap: BusGap, end_us: int) -> None:
        self.stats.gaps += 1
        entry = gap.as_dict()
        self.recent_gaps.append(entry)
        if self.on_gap is not None:
            self.on_gap(entry)
        if self.stats.gaps <= 20 or self.stats.gaps % 1000 == 0:  # every one is in the log
            logger.warning(
                "fan-out: bus gap %s %s (%d so far)", gap.pair, gap.detail(), self.stats.gaps
            )
        log = self.log
        if log is None or log.closed:
            return
        try:
            log.gap(
                time.time_ns() // 1000,
                gap.pair,
                BUS_GAP_CHANNEL,
                gap.reason.split(",")[0],
                gap.start_us,
                max(end_us, gap.start_us),
                None,
                None,
                gap.detail(),
            )
        except SinkError as exc:  # the log halts the stream on its own next write
            logger.error("fan-out: bus gap row not logged: %s", exc)

    # -- the tasks ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, then publish until `close`; reconnects on its own. Runs on the stream's loop."""
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()
        acker = asyncio.create_task(self._ack_loop(), name="fanout-acker")
        try:
            await self._send_loop()
        finally:
            acker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acker

    async def _connect(self) -> bool:
        """Connect, verify the stream, read each pair's last epoch; False (state ``down`` or
        ``misconfigured``) when that failed."""
        if self.stats.state == "starting":
            self.stats.state = "connecting"
        try:
            await self.bus.connect()
            await self.bus.ensure_stream(self.settings.stream)
            if not self.ready:
                for pair in self.pairs:
                    last = await self.bus.last_message(
                        message.subject("book", pair, self.settings.prefix)
                    )
                    if last is not None:
                        self.sequencer.floor(pair, int(message.decode(last).get("epoch", 0)))
        except StreamConfigMismatch as exc:
            self.stats.state = "misconfigured"
            self.stats.last_error = str(exc)
            raise
        except (BusError, message.MessageError, ValueError) as exc:
            self.stats.state = "down"
            self.stats.last_error = str(exc)
            return False
        return True

    async def _send_loop(self) -> None:
        settings = self.settings
        wake = self._wake
        assert wake is not None
        while True:
            if self._closing and not (self.buffer or self.retry or self.inflight):
                return
            if not self.bus.connected or not self.ready:
                if self.ready:
                    self._down = True
                    self.stats.state = "down"
                if not await self._connect() or not self.bus.connected:
                    await self._sleep(settings.retry_delay)
                    continue
                self._back_up()
            sent = await self._send_some()
            if not sent:
                wake.clear()
                if (not self.buffer and not self.retry) or len(self.inflight) >= settings.window:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=settings.gap_flush_seconds)
                elif not self.bus.connected:
                    continue
                self.flush_gaps(int(settings.gap_flush_seconds * 1e9))

    def _back_up(self) -> None:
        """The bus is reachable (first time, or again): every pair starts a new epoch."""
        first = not self.ready
        self.ready = True
        if self._down:
            self.stats.reconnects += 1
        self._down = False
        self.stats.state = "connected"
        self.stats.last_error = None
        if first:
            logger.info(
                "fan-out: publishing to %s (session %s)", self.settings.stream.name, self.session
            )
        if not self.halted:
            now_us = time.time_ns() // 1000
            self._restart_after.clear()
            for pair in self.pairs:
                self.sequencer.end(pair)  # no continuity across the outage is promised
                self._restart(pair, now_us)

    async def _send_some(self) -> int:
        """Publish from the retries, then the buffer, while the window has room."""
        settings = self.settings
        inflight = self.inflight
        window = settings.window
        every = settings.confirm_every
        retry, buffer = self.retry, self.buffer
        sent = 0
        while len(inflight) < window and self.bus.connected:
            queue = retry if retry else buffer
            if not queue:
                break
            out = queue.popleft()
            # The burst's last publish, and every `confirm_every`-th, asks for an answer that
            # settles the ones before it (`confirm`).
            confirm = (
                sent % every == every - 1 or not (retry or buffer) or len(inflight) + 1 >= window
            )
            try:
                future = await self.bus.publish(
                    out.subject, message.encode(out.event), out.msg_id, confirm
                )
            except BusError as exc:
                queue.appendleft(out)
                self.stats.last_error = str(exc)
                await self._sleep(settings.retry_delay)
                break
            inflight.append((out, future, time.monotonic_ns()))
            sent += 1
            if self._acked is not None and not self._acked.is_set():
                self._acked.set()
            if sent % 64 == 0:
                await asyncio.sleep(0)  # let the stream read its socket
        return sent

    async def _ack_loop(self) -> None:
        settings = self.settings
        timeout_ns = int(settings.ack_timeout * 1e9)
        stats = self.stats
        acked = self._acked
        assert acked is not None
        handled = 0
        while True:
            if not self.inflight:
                acked.clear()
                await acked.wait()
                continue
            out, future, sent_ns = self.inflight[0]
            if not future.done():
                remaining = (sent_ns + timeout_ns - time.monotonic_ns()) / 1e9
                if remaining > 0:
                    await asyncio.wait([future], timeout=remaining)
            else:
                handled += 1
                if not handled & 63:
                    await asyncio.sleep(0)  # a run of answered publishes: let the stream read
            self.inflight.popleft()
            if future.done() and not future.cancelled() and future.exception() is None:
                stats.published += 1
                if future.result().duplicate:
                    stats.duplicates += 1
                latency = time.monotonic_ns() - sent_ns
                stats.publish_ns.append(latency)
                if self.on_ack is not None:
                    self.on_ack(latency)
            else:
                if not future.done():
                    future.cancel()
                    stats.last_error = f"no acknowledgement within {settings.ack_timeout:g} s"
                else:
                    exc = None if future.cancelled() else future.exception()
                    stats.last_error = f"publish failed: {type(exc).__name__}: {exc}"
                self._failed(out)
            if self._wake is not None:
                self._wake.set()

    def _failed(self, out: Outgoing) -> None:
        out.attempts += 1
        if out.attempts < self.settings.max_attempts and not self._closing:
            self.stats.retried += 1
            self.retry.append(out)
            return
        self.stats.unacked += 1
        self._lost(out, "unacked")

    async def _sleep(self, seconds: float) -> None:
        wake = self._wake
        if wake is None:
            await asyncio.sleep(seconds)
            return
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=seconds)

    async def close(self, task: asyncio.Task[None] | None = None) -> None:
        """Publish what is buffered (at most ``drain_timeout``), write every remaining event
        off as a gap, write the gaps down and close the bus. ``task``: the `run` task."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        deadline = time.monotonic() + self.settings.drain_timeout
        while (self.buffer or self.retry or self.inflight) and time.monotonic() < deadline:
            if task is not None and task.done() and not self.inflight:
                break
            await asyncio.sleep(0.01)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for out, future, _ in self.inflight:
            future.cancel()
            self.stats.unacked += 1
            self._lost(out, "stopped")
        for queue in (self.retry, self.buffer):
            while queue:
                self.stats.unacked += 1
                self._lost(queue.popleft(), "stopped")
        self.inflight.clear()
        self.flush_gaps()
        if self.stats.state != "misconfigured":
            self.stats.state = "stopped"
        with contextlib.suppress(Exception):
            await self.bus.close()

    # -- reports -----------------------------------------------------------------------------

    def buffered(self) -> int:
        """Events waiting to be published (the buffer and the retries)."""
        return len(self.buffer) + len(self.retry)

    def report(self) -> dict[str, Any]:
        """The ``bus`` entry of the stream's report (heartbeat, observations, status)."""
        stats = self.stats
        latencies = sorted(stats.publish_ns)
        p99 = latencies[int(0.99 * (len(latencies) - 1))] / 1e6 if latencies else None
        return {
            "state": stats.state,
            "session": self.session,
            "buffered": len(self.buffer) + len(self.retry),
            "in_flight": len(self.inflight),
            "enqueued": stats.enqueued,
            "published": stats.published,
            "duplicates": stats.duplicates,
            "retried": stats.retried,
            "dropped": stats.dropped,
            "unacked": stats.unacked,
            "gaps": stats.gaps + len(self.gaps),
            "epochs": stats.epochs,
            "reconnects": stats.reconnects,
            "publish_p99_ms": round(p99, 3) if p99 is not None else None,
            "last_error": stats.last_error,
            "recent_gaps": list(self.recent_gaps)[-10:],
        }
