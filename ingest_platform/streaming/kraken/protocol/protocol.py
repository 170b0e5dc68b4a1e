"""The Kraken v2 protocol session: what a connection's frames mean, with no I/O of its own.

Shaped like the ``websockets`` library's protocol objects. The connection driver
(`connection.KrakenConnection`) tells it a connection opened (`connection_made`) or was lost
(`connection_lost`), hands it every frame (`receive`) and asks it a few times a second
whether the connection still looks alive (`check`). The session answers with text frames to
send (`outgoing`) and writes what it saw to a `RecordSink` (the stream log). It never touches
a socket or a file, and reads the time from an injected `Clock`, so a test can drive it frame
by frame and second by second.

1. **Subscribe** (`control`): ``instrument`` first, because a book's checksum needs the pair's
   ``price_precision``/``qty_precision``; on its snapshot ``book`` (configured depth), ``trade``
   and ``ohlc`` for every pair, one request per channel, one ack per symbol. An error ack is a
   critical error, retried per symbol with its own full-jitter backoff (`subscriptions`). A
   configured pair the exchange does not list halts at once: no retry can fix configuration.
2. **Route** by ``channel`` and nothing else: ``book`` items go to that symbol's `KrakenBook`
   (`books`), ``trade`` items become trade rows, ``ohlc`` items bar rows; a trade never
   touches a book.
   ``status``, ``heartbeat``, acks and ``pong`` are protocol; anything else is counted and
   logged, never fatal.
3. **Liveness** (`check`): drop the connection when nothing arrived for ``max_silence``, no
   heartbeat for ``max_heartbeat_interval``, a ping got no pong, or a subscription got no
   snapshot for ``snapshot_timeout`` (except during exchange maintenance).
4. **Resync**: a checksum mismatch (or an unparseable book item) marks that book out of sync,
   drops its updates, and unsubscribes and resubscribes that symbol for a fresh snapshot.
   Every interval in which a book was not known complete is a *gap* (`gaps.GapLedger`).
5. **Halt** (`halts.HaltPolicy`): too many mismatches or critical errors within the window stop
   the stream; ``halt`` is then set and a ``KRAKEN_STREAM_HALT ...`` line is logged at ERROR.

Hot path cost per frame: one exact parse (`parse_message` with ``numbers_as_text``), one book
apply, one tuple appended to the log buffer.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from typing import Any

from ingest_platform.streaming.kraken.book import KrakenBook, parse_message
from ingest_platform.streaming.kraken.config import StreamConfig
from ingest_platform.streaming.kraken.protocol.books import BookRouter, BookState
from ingest_platform.streaming.kraken.protocol.clock import SYSTEM_CLOCK, Clock
from ingest_platform.streaming.kraken.protocol.control import Control
from ingest_platform.streaming.kraken.protocol.gaps import GapLedger
from ingest_platform.streaming.kraken.protocol.halts import Halt, HaltPolicy
from ingest_platform.streaming.kraken.protocol.liveness import Liveness
from ingest_platform.streaming.kraken.protocol.rows import RecordSink, SinkError
from ingest_platform.streaming.kraken.protocol.stats import LatencyWindow, StreamStats
from ingest_platform.streaming.kraken.protocol.subscriptions import Subscriptions

logger = logging.getLogger(__name__)

_SYMBOL_IN_TEXT = re.compile(r'"symbol"\s*:\s*"([^"]+)"')
_OTHER_CHANNEL = re.compile(r'"channel":"(trade|ohlc|heartbeat|status|instrument)"')
_ONLINE = "online"
_MAINTENANCE = "maintenance"


class KrakenSession:
    """The protocol state of one stream across its connections; see the module docstring."""

    def __init__(
        self,
        config: StreamConfig,
        *,
        sink: RecordSink | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.clock = clock
        self.pairs: tuple[str, ...] = tuple(config.pairs)
        self.depth = config.depth
        self.stats = StreamStats(started_at=clock.time_ns() / 1e9)
        self.latency = LatencyWindow(config.latency_window)
        self.halt: Halt | None = None
        self.on_synced: Callable[[], None] | None = None
        """Called whenever every book has verified a snapshot (the driver resets its backoff)."""
        self.liveness = Liveness(config)
        self._wall_ns = clock.time_ns
        self._mono_ns = clock.monotonic_ns
        self._halt_policy = HaltPolicy(
            config.max_mismatches, config.max_critical_errors, config.halt_window
        )
        self.router = BookRouter(self.pairs, self.depth, sink, self.stats, self)
        self._books = self.router.states
        self.subscriptions = Subscriptions(
            config.backoff_base, config.backoff_cap, rng or random.Random()
        )
        self.gaps = GapLedger(sink, self.stats, self._now_us)
        self.control = Control(
            config,
            self._books,
            self.subscriptions,
            self.gaps,
            self.liveness,
            self.stats,
            self,
            self._mono_ns,
            self._now_us,
        )
        self.outgoing = self.control.outgoing
        """Text frames to send, oldest first (one list for good: the driver may hold it)."""
        self._last_recv_us = 0

    # -- queries -----------------------------------------------------------------------------

    def book(self, symbol: str) -> KrakenBook | None:
        """The symbol's current book (None before its first snapshot)."""
        return self._books[symbol].book

    def is_synced(self, symbol: str) -> bool:
        return self._books[symbol].synced

    @property
    def all_synced(self) -> bool:
        return all(state.synced for state in self._books.values())

    def open_gaps(self) -> dict[tuple[str, str], str]:
        return self.gaps.reasons()

    @property
    def connected(self) -> bool:
        return self.control.connected

    def take_outgoing(self) -> list[str]:
        """The frames to send, in order; the queue is empty afterwards."""
        frames = list(self.outgoing)
        self.outgoing.clear()
        return frames

    def _now_us(self) -> int:
        return self._wall_ns() // 1000

    # -- connection lifecycle ----------------------------------------------------------------

    def connection_made(self) -> None:
        """A connection opened: reset its state and subscribe to ``instrument``."""
        self.liveness.connected(self._mono_ns())
        self.control.connection_made()

    def connection_lost(self, reason: str, stopping: bool) -> None:
        """Every book that was in sync now has a gap (unless the stream is ending anyway)."""
        if not stopping:
            self.stats.reconnects += 1
            logger.warning("Kraken connection lost (%s); reconnecting", reason)
            start_us = self._last_recv_us or self._now_us()
            for symbol, state in self._books.items():
                if state.synced:
                    self.gaps.open(symbol, "book", "reconnect", start_us, state.last_seq, reason)
            for channel, symbol in self.subscriptions.active():
                if channel != "book":
                    self.gaps.open(symbol, channel, "reconnect", start_us, None, reason)
        for state in self._books.values():
            if not stopping:  # when stopping, books keep their last verified state
                state.unsync()
            state.resyncing = False
            state.awaiting_since = None
        self.control.connection_lost()

    def close_open_gaps(self, note: str) -> None:
        """At shutdown: write every open gap with no end, noting why the stream ended."""
        for symbol, channel in self.gaps.note_all(note):
            self.close_gap(symbol, channel, None, None)

    # -- liveness (called by the driver a few times a second) ---------------------------------

    def check(self) -> str | None:
        """Send due retries and pings; return why the connection must go, or None."""
        now = self._mono_ns()
        liveness = self.liveness
        breach = liveness.breach(now, ((s.symbol, s.awaiting_since) for s in self._books.values()))
        if breach is not None:
            self.stats.liveness_breaches[breach.reason] += 1
            if breach.critical:
                self.critical(breach.reason, str(breach))
            return str(breach)
        self.control.retry_due(now)
        if liveness.ping_due(now):
            self.control.ping(now)
        return None

    def _resync(self, symbol: str, reason: str, detail: str = "") -> None:
        self.control.resync(symbol, reason, detail, self._last_recv_us or self._now_us())

    # -- frames (hot path) -------------------------------------------------------------------

    def receive(self, raw: str | bytes, arrival_ns: int | None = None) -> None:
        """Process one frame; ``arrival_ns`` is when its bytes left the socket (monotonic)."""
        if arrival_ns is None:
            arrival_ns = self._mono_ns()
        liveness = self.liveness
        liveness.last_message_ns = arrival_ns
        recv_us = self._wall_ns() // 1000
        self._last_recv_us = recv_us
        try:
            msg = parse_message(raw, numbers_as_text=True)
        except ValueError as exc:
            self._on_malformed(raw, exc)
            return
        if type(msg) is not dict:
            self.unknown(msg)
            return
        channel = msg.get("channel")
        messages = self.stats.messages
        try:
            if channel == "book":
                messages["book"] += 1
                self.router.apply(msg, recv_us)
            elif channel == "trade":
                messages["trade"] += 1
                self._on_rows(msg, recv_us, "trade")
            elif channel == "ohlc":
                messages["ohlc"] += 1
                self._on_rows(msg, recv_us, "ohlc")
            elif channel == "heartbeat":
                messages["heartbeat"] += 1
                self.stats.heartbeats += 1
                liveness.last_heartbeat_ns = arrival_ns
                return
            elif channel == "status":
                messages["status"] += 1
                self._on_status(msg, recv_us)
                return
            elif channel == "instrument":
                messages["instrument"] += 1
                self.control.on_instruments(msg, self._last_recv_us)
                return
            elif channel is None and "method" in msg:
                messages["method"] += 1
                self.control.on_answer(msg, recv_us)
                return
            else:
                self.unknown(msg)
                return
        except SinkError as exc:
            self.halt_now("log_write_failed", str(exc))
            return
        except Exception as exc:  # a bug or a shape we never saw: count it, keep streaming
            logger.exception("Kraken %s message could not be handled", channel)
            self.critical("handler_error", f"{type(exc).__name__}: {exc}")
            return
        self.latency.add(self._mono_ns() - arrival_ns)

    # -- book verdicts (`BookEvents`, called by the router) -----------------------------------

    def snapshot_verified(self, state: BookState, recv_us: int, seq: int) -> None:
        state.synced = True
        state.resyncing = False
        state.awaiting_since = None
        state.stats.synced = True
        state.stats.snapshots += 1
        state.stats.verified_since_snapshot = 0
        if not self.subscriptions.snapshot_verified(state.symbol):
            return  # an older subscription's snapshot overtook the resync: its snapshot closes
        self.close_gap(state.symbol, "book", recv_us, seq)
        if self.on_synced is not None and self.all_synced:
            self.on_synced()

    def book_rejected(
        self, state: BookState, kind: str, recv_us: int, seq: int, error: Exception | None
    ) -> None:
        symbol = state.symbol
        state.unsync()
        if error is None:
            self.stats.checksum_failures += 1
            state.stats.checksum_failures += 1
            reason = "checksum_mismatch"
            detail = f"{kind} seq {seq}"
            logger.warning("Kraken %s: checksum mismatch on %s seq %s", symbol, kind, seq)
            if self._halt_policy.mismatch(self._mono_ns() / 1e9):
                self.halt_now(reason, f"{symbol}: {detail}")
        else:
            reason = "malformed_book"
            detail = f"{kind} seq {seq}: {type(error).__name__}: {error}"
            self.critical(reason, f"{symbol}: {detail}")
        if self.halt is None:
            self._resync(symbol, reason, detail)
        else:
            self.gaps.open(symbol, "book", reason, recv_us, state.last_seq, detail)

    def _on_rows(self, msg: dict[str, Any], recv_us: int, channel: str) -> None:
        """Trade or OHLC items: counted per symbol and logged; never near a book."""
        kind = msg.get("type", "update")
        sink = self.sink
        write = None if sink is None else sink.trade if channel == "trade" else sink.ohlc
        symbols = self.stats.symbols
        stats = self.stats
        for item in msg.get("data") or ():
            per_symbol = symbols.get(item.get("symbol"))
            if channel == "trade":
                stats.trades += 1
                if per_symbol is not None:
                    per_symbol.trades += 1
            else:
                stats.ohlc_bars += 1
                if per_symbol is not None:
                    per_symbol.ohlc += 1
            if write is not None:
                write(recv_us, kind, item)

    def _on_status(self, msg: dict[str, Any], recv_us: int) -> None:
        data = msg.get("data") or [{}]
        system = data[0].get("system") if isinstance(data[0], dict) else None
        previous = self.stats.exchange_status
        self.stats.exchange_status = system
        liveness = self.liveness
        if system == _MAINTENANCE and not liveness.maintenance:
            liveness.maintenance = True
            logger.warning("Kraken status: maintenance; books paused until online")
            for symbol, state in self._books.items():
                if state.synced:
                    self.gaps.open(symbol, "book", "maintenance", recv_us, state.last_seq, "")
                state.unsync()
        elif system == _ONLINE and liveness.maintenance:
            liveness.maintenance = False
            logger.info("Kraken status: online after maintenance; resyncing every book")
            now = self._mono_ns()
            for symbol, state in self._books.items():
                if state.awaiting_since is not None:
                    state.awaiting_since = now  # held back by maintenance: a fresh deadline
                self._resync(symbol, "maintenance", "resubscribed after maintenance")
        elif system not in (_ONLINE, _MAINTENANCE) and system != previous:
            logger.warning("Kraken status: %s", system)

    def _on_malformed(self, raw: str | bytes, exc: Exception) -> None:
        """A frame that is not JSON: whatever it was is lost, so affected books resync."""
        self.stats.malformed += 1
        self.stats.messages["malformed"] += 1
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        logger.warning("Kraken sent a malformed frame (%s): %.120r", exc, text)
        self.critical("malformed_json", f"{exc}: {text[:120]!r}")
        if self.halt is not None:
            return
        compact = text.replace(" ", "")
        if '"channel":"book"' not in compact and _OTHER_CHANNEL.search(compact):
            return  # visibly not a book message: no book can have lost an update
        match = _SYMBOL_IN_TEXT.search(text)
        affected = (
            [match.group(1)] if match and match.group(1) in self._books else list(self._books)
        )
        for symbol in affected:
            if self._books[symbol].synced:
                self._resync(symbol, "malformed_message", text[:80])

    def unknown(self, msg: Any) -> None:
        self.stats.unknown += 1
        self.stats.messages["unknown"] += 1
        if self.stats.unknown <= 10 or self.stats.unknown % 1000 == 0:
            logger.warning(
                "Kraken: unexpected message (%d so far): %.200r", self.stats.unknown, msg
            )

    # -- gaps, errors, halts -----------------------------------------------------------------

    def close_gap(
        self, symbol: str, channel: str, end_us: int | None, resume_seq: int | None
    ) -> None:
        try:
            self.gaps.close(symbol, channel, end_us, resume_seq)
        except SinkError as exc:
            logger.error("Kraken gap %s %s not logged: %s", symbol, channel, exc)
            self.halt_now("log_write_failed", str(exc))

    def critical(self, kind: str, detail: str) -> None:
        """Count a critical error; halt when the window holds too many."""
        self.stats.critical_errors += 1
        self.stats.errors[kind] += 1
        if self.halt is None and self._halt_policy.critical(self._mono_ns() / 1e9):
            self.halt_now(kind, detail)

    def halt_now(self, reason: str, detail: str) -> None:
        """Stop the stream for good (the first reason wins) and log the alert line."""
        if self.halt is not None:
            return
        mismatches, critical = self._halt_policy.counts(self._mono_ns() / 1e9)
        self.halt = Halt(
            reason, detail, self._wall_ns() / 1e9, mismatches, critical, self.config.halt_window
        )
        logger.error(self.halt.log_line())

    # -- periodic ----------------------------------------------------------------------------

    def log_tops(self) -> None:
        """A ``book_top`` row for every verified book (a second, independent replay check)."""
        self.router.log_tops(self._now_us(), self.config.top_levels)
