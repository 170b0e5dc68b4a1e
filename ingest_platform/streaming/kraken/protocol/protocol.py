"""The Kraken v2 protocol: what a connection's frames mean, with no I/O of its own.

Shaped like ``websockets.protocol.Protocol``: frames and the time in, frames to send and events
out, no callbacks into its owner. The driver (`io.connection.KrakenConnection`) tells it a
connection opened (`connection_made`) or was lost (`connection_lost`), hands it every frame
(`receive`) and asks it a few times a second whether the connection still looks alive
(`check`); then it sends `data_to_send()` and reacts to `events_received()`. Every record goes
to a `RecordSink` (the stream log); a sink that cannot keep one raises `SinkError` and the
protocol halts. Time comes from an injected `Clock`, so a test drives it frame by frame and
second by second. What it does with the frames: the package docstring (`protocol`).

The protocol is the one owner of its state and the one place that decides; each helper holds
one piece of the state, answers with values and never calls back: `books.Books` (the books,
their gaps, the records), `control.Control` (request ids, subscriptions), `Liveness`,
`HaltPolicy`, `StreamStats`. Hot path cost per frame: one exact parse (`parse_message` with
``numbers_as_text``), one book apply, one tuple appended to the log.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from ingest_platform.streaming.kraken.book import KrakenBook, parse_message
from ingest_platform.streaming.kraken.protocol.books import Books, Verdict
from ingest_platform.streaming.kraken.protocol.clock import SYSTEM_CLOCK, Clock
from ingest_platform.streaming.kraken.protocol.control import (
    AlreadySubscribed,
    Control,
    Pong,
    Rejected,
    ServerError,
    Subscribed,
    Unsubscribed,
)
from ingest_platform.streaming.kraken.protocol.events import (
    BooksSynced,
    ExchangeStatusChanged,
    Halted,
    ProtocolEvent,
)
from ingest_platform.streaming.kraken.protocol.halts import Halt, HaltPolicy
from ingest_platform.streaming.kraken.protocol.liveness import Liveness
from ingest_platform.streaming.kraken.protocol.rows import RecordSink, SinkError
from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings
from ingest_platform.streaming.kraken.protocol.stats import LatencyWindow, StreamStats

logger = logging.getLogger(__name__)

_ONLINE = "online"
_MAINTENANCE = "maintenance"


class KrakenProtocol:
    """The protocol state of one stream across its connections; see the module docstring."""

    def __init__(
        self,
        settings: ProtocolSettings,
        *,
        sink: RecordSink | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.stats = StreamStats(started_at=clock.time_ns() / 1e9)
        self.latency = LatencyWindow(settings.latency_window)
        self.liveness = Liveness(settings)
        self.halt: Halt | None = None
        self.control = Control(settings, rng or random.Random())
        self.outgoing = self.control.outgoing
        """Text frames to send, oldest first (`data_to_send` drains it)."""
        self.events: list[ProtocolEvent] = []
        """Events not yet taken, oldest first (`events_received` drains it)."""
        self.books = Books(settings.pairs, settings.depth, sink, self.stats)
        self._books = self.books.states
        self._halt_policy = HaltPolicy(
            settings.max_mismatches, settings.max_critical_errors, settings.halt_window
        )
        self._wall_ns = clock.time_ns
        self._mono_ns = clock.monotonic_ns
        self._last_recv_us = 0

    # -- queries and outputs -----------------------------------------------------------------

    def book(self, symbol: str) -> KrakenBook | None:
        """The symbol's current book (None before its first snapshot)."""
        return self._books[symbol].book

    def is_synced(self, symbol: str) -> bool:
        return self._books[symbol].synced

    @property
    def all_synced(self) -> bool:
        return self.books.all_synced

    def open_gaps(self) -> dict[tuple[str, str], str]:
        """``{(symbol, channel): reason}`` of every gap not yet closed."""
        return self.books.gaps.reasons()

    @property
    def connected(self) -> bool:
        return self.control.connected

    def data_to_send(self) -> list[str]:
        """The text frames to send, in order; none are left afterwards."""
        frames = list(self.outgoing)
        self.outgoing.clear()
        return frames

    def events_received(self) -> list[ProtocolEvent]:
        """What happened since the last call, in order; none are left afterwards."""
        events = list(self.events)
        self.events.clear()
        return events

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
            self.books.pause("reconnect", start_us, reason)
            for channel, symbol in self.control.subscriptions.active():
                if channel != "book":
                    self.books.open_gap(symbol, channel, "reconnect", start_us, reason)
        self.control.connection_lost()  # when stopping, books keep their last verified state

    def close_open_gaps(self, note: str) -> None:
        """At shutdown: write every open gap with no end, noting why the stream ended."""
        for symbol, channel in self.books.gaps.note_all(note):
            self._close_gap(symbol, channel, None, None)

    # -- liveness (called by the driver a few times a second) ---------------------------------

    def check(self) -> str | None:
        """Send due retries and pings; return why the connection must go, or None."""
        now = self._mono_ns()
        liveness = self.liveness
        breach = liveness.breach(now, self.control.awaiting())
        if breach is not None:
            self.stats.liveness_breaches[breach.reason] += 1
            if breach.critical:
                self.critical(breach.reason, str(breach))
            return str(breach)
        for channel, symbol in self.control.due(now):
            self.control.subscribe(channel, [symbol], now)
        if liveness.ping_due(now):
            liveness.pings[self.control.ping()] = now
        return None

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
            self._unknown(msg)
            return
        channel = msg.get("channel")
        messages = self.stats.messages
        try:
            if channel == "book":
                messages["book"] += 1
                self._on_book(msg, recv_us)
            elif channel == "trade":
                messages["trade"] += 1
                self.books.rows(msg, recv_us, "trade")
            elif channel == "ohlc":
                messages["ohlc"] += 1
                self.books.rows(msg, recv_us, "ohlc")
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
                self._on_instruments(msg, recv_us)
                return
            elif channel is None and "method" in msg:
                messages["method"] += 1
                self._on_answer(msg, recv_us)
                return
            else:
                self._unknown(msg)
                return
        except SinkError as exc:
            self.halt_now("log_write_failed", str(exc))
            return
        except Exception as exc:  # a bug or a shape we never saw: count it, keep streaming
            logger.exception("Kraken %s message could not be handled", channel)
            self.critical("handler_error", f"{type(exc).__name__}: {exc}")
            return
        self.latency.add(self._mono_ns() - arrival_ns)

    def _on_book(self, msg: dict[str, Any], recv_us: int) -> None:
        """Apply, log and judge every item of a ``book`` message (`Books.apply`)."""
        kind = msg.get("type")
        data = msg.get("data")
        if kind not in ("snapshot", "update") or type(data) is not list:
            self.critical("malformed_book", f"book message type={kind!r}")
            return
        verdict = self.books.apply(kind, data, recv_us)
        while verdict is not None:
            if verdict.ok:
                self._snapshot_verified(verdict, recv_us)
            else:
                self._book_rejected(verdict, recv_us)
            if self.halt is not None:
                return
            verdict = self.books.apply(kind, data, recv_us, verdict.index + 1)

    def _snapshot_verified(self, verdict: Verdict, recv_us: int) -> None:
        symbol = verdict.state.symbol
        if not self.control.snapshot_verified(symbol):
            return  # an older subscription's snapshot overtook the resync: its snapshot closes
        self._close_gap(symbol, "book", recv_us, verdict.seq)
        if self.books.all_synced:
            self.events.append(BooksSynced())

    def _book_rejected(self, verdict: Verdict, recv_us: int) -> None:
        state, kind, seq, error = verdict.state, verdict.kind, verdict.seq, verdict.error
        symbol = state.symbol
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
            self.books.open_gap(symbol, "book", reason, recv_us, detail)

    # -- the rest of the channels ------------------------------------------------------------

    def _on_status(self, msg: dict[str, Any], recv_us: int) -> None:
        data = msg.get("data") or [{}]
        system = data[0].get("system") if isinstance(data[0], dict) else None
        previous = self.stats.exchange_status
        self.stats.exchange_status = system
        if system != previous:
            self.events.append(ExchangeStatusChanged(system, previous))
        liveness = self.liveness
        if system == _MAINTENANCE and not liveness.maintenance:
            liveness.maintenance = True
            logger.warning("Kraken status: maintenance; books paused until online")
            self.books.pause("maintenance", recv_us)
        elif system == _ONLINE and liveness.maintenance:
            liveness.maintenance = False
            logger.info("Kraken status: online after maintenance; resyncing every book")
            self.control.maintenance_over(self._mono_ns())
            for symbol in self._books:
                self._resync(symbol, "maintenance", "resubscribed after maintenance")
        elif system not in (_ONLINE, _MAINTENANCE) and system != previous:
            logger.warning("Kraken status: %s", system)

    def _on_instruments(self, msg: dict[str, Any], recv_us: int) -> None:
        """The ``instrument`` channel: each pair's precisions, then the data subscriptions.

        A book's checksum needs its pair's ``price_precision`` and ``qty_precision``, so the
        data channels are subscribed only once the first instrument snapshot is in, and a
        precision that changes resyncs that book. A configured pair the snapshot does not
        list halts the stream: no retry can fix configuration.
        """
        news = self.books.read_instruments(msg.get("data"))
        if news is None:
            self.critical("malformed_instrument", "instrument message without pairs")
            return
        for detail in news.malformed:
            self.critical("malformed_instrument", detail)
        for symbol, detail in news.changed:
            self._resync(symbol, "precision_changed", detail, recv_us)
        if msg.get("type") != "snapshot":
            return
        missing = [s for s in self._books if s not in news.listed]
        if missing:
            self.halt_now("unknown_pairs", f"the exchange does not list {missing}; fix pairs")
            return
        if not self.liveness.instruments_ready:
            self.liveness.instruments_ready = True
            for channel in self.settings.channels:
                self.control.subscribe(channel, list(self._books), self._mono_ns())

    def _on_answer(self, msg: dict[str, Any], recv_us: int) -> None:
        """A message with a ``method`` (an ack, an error, a pong): `Control` says what it was;
        here is what that means for the books, their gaps and the halt policy."""
        answer = self.control.answer(msg, self._mono_ns())
        match answer:
            case None:
                pass
            case Pong(req_id):
                rtt = self.liveness.pong(req_id, self._mono_ns())
                if rtt is not None:
                    self.stats.last_rtt_ms = rtt
            case Subscribed(channel, symbol, live):
                self.stats.subscriptions += 1
                if live:
                    self._close_gap(symbol, channel, recv_us, None)
            case Unsubscribed(symbol, resubscribe, success):
                if resubscribe:
                    self.control.subscribe("book", [symbol], self._mono_ns())
                if not success:
                    self.stats.errors["unsubscribe_failed"] += 1
            case AlreadySubscribed(channel, symbols, error):
                now_us = self._now_us()
                for symbol in symbols:
                    if channel == "book":
                        self._resync(symbol, "already_subscribed", error, now_us)
                    else:
                        self._close_gap(symbol, channel, now_us, None)
            case Rejected(channel, symbols, error):
                # Critical; each configured pair has a gap until the retry `Control` scheduled.
                now_us, listed = self._now_us(), list(symbols)
                self.stats.rejected_subscriptions += 1
                logger.warning("Kraken rejected subscription %s %s: %s", channel, listed, error)
                self.critical("subscription_rejected", f"{channel} {listed}: {error}")
                if channel is not None:
                    self.books.subscription_rejected(channel, symbols, now_us, error)
            case ServerError(detail):
                self.critical("server_error", detail)
            case _:
                self._unknown(msg)

    def _on_malformed(self, raw: str | bytes, exc: Exception) -> None:
        """A frame that is not JSON: whatever it was is lost, so affected books resync."""
        self.stats.malformed += 1
        self.stats.messages["malformed"] += 1
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        logger.warning("Kraken sent a malformed frame (%s): %.120r", exc, text)
        self.critical("malformed_json", f"{exc}: {text[:120]!r}")
        if self.halt is None:
            for symbol in self.books.hit_by_malformed(text):
                self._resync(symbol, "malformed_message", text[:80])

    def _unknown(self, msg: Any) -> None:
        self.stats.unknown += 1
        self.stats.messages["unknown"] += 1
        if self.stats.unknown <= 10 or self.stats.unknown % 1000 == 0:
            logger.warning(
                "Kraken: unexpected message (%d so far): %.200r", self.stats.unknown, msg
            )

    # -- requests ----------------------------------------------------------------------------

    def _resync(self, symbol: str, reason: str, detail: str, start_us: int | None = None) -> None:
        """Unsubscribe and resubscribe one book for a fresh snapshot; drop its updates meanwhile.

        Opens the book's gap (or notes one more reason on the open one) from ``start_us``
        (default: the last frame received) so the log says why it restarted.
        """
        if start_us is None:
            start_us = self._last_recv_us or self._now_us()
        state = self._books[symbol]
        self.books.open_gap(symbol, "book", reason, start_us, detail)
        state.unsync()
        state.stats.resyncs += 1
        self.stats.resyncs += 1
        if self.control.resync(symbol, self._mono_ns()):
            logger.info("Kraken %s: resync (%s)", symbol, reason)

    # -- gaps, errors, halts -----------------------------------------------------------------

    def _close_gap(
        self, symbol: str, channel: str, end_us: int | None, resume_seq: int | None
    ) -> None:
        """Close a gap and write its row; a row the sink cannot keep halts the stream (the log
        could no longer explain the books)."""
        try:
            at_us = end_us if end_us is not None else self._now_us()
            self.books.close_gap(symbol, channel, end_us, resume_seq, at_us)
        except SinkError as exc:
            logger.error("Kraken gap %s %s not logged: %s", symbol, channel, exc)
            self.halt_now("log_write_failed", str(exc))

    def critical(self, kind: str, detail: str) -> None:
        """Count a critical error (the driver reports its own, e.g. a refused handshake);
        halt when the window holds too many."""
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
            reason, detail, self._wall_ns() / 1e9, mismatches, critical, self.settings.halt_window
        )
        logger.error(self.halt.log_line())
        self.events.append(Halted(self.halt))

    # -- periodic ----------------------------------------------------------------------------

    def log_tops(self) -> None:
        """A ``book_top`` row for every verified book (a second, independent replay check)."""
        self.books.log_tops(self._now_us(), self.settings.top_levels)
