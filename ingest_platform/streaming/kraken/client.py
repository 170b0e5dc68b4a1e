"""Kraken spot WebSocket v2 client: verified L2 books, trades and OHLC bars, logged for replay.

What it does, in the order a connection lives through it:

1. **Connect** (``CONNECTING``) with ``websockets``; every failure leads to ``BACKOFF``: a full-
   jitter exponential delay, ``uniform(0, min(cap, base * 2**attempt))``, reset once every
   book of a connection has verified a snapshot.
2. **Subscribe** (``SUBSCRIBING``): ``instrument`` first, because a book's checksum needs the
   pair's ``price_precision``/``qty_precision``; on its snapshot ``book`` (configured depth),
   ``trade`` and ``ohlc`` for every pair, one request per channel, one ack per symbol.
   An ack in the error form (``success: false``) is a critical error and is retried per symbol
   with the same backoff. A configured pair the exchange does not list halts at once: no
   retry can fix configuration.
3. **Stream** (``STREAMING``): messages are routed by ``channel`` and nothing else: ``book``
   items go to that symbol's `KrakenBook`, ``trade`` items become trade rows, ``ohlc`` items
   bar rows; a trade never touches a book. ``status``, ``heartbeat``, acks and ``pong`` are
   protocol; anything else is counted and logged, never fatal.
4. **Liveness**: a watchdog aborts the connection (and so reconnects) when nothing arrived for
   ``max_silence``, no heartbeat for ``max_heartbeat_interval``, a ping got no pong, or a
   subscription got no snapshot for ``snapshot_timeout`` (except during exchange maintenance).
5. **Resync**: a checksum mismatch (or an unparseable book item) marks that book out of sync,
   drops its updates, and unsubscribes and resubscribes that symbol for a fresh snapshot.
   Every interval in which a book was not known to be complete is a *gap*: opened on a
   disconnect, a resync, a malformed frame, exchange maintenance or a rejected subscription,
   closed by the next verified snapshot, and written to the log with reason, start and end.
6. **Halt**: ``max_mismatches`` checksum mismatches or ``max_critical_errors`` critical errors
   within ``halt_window`` seconds stop the stream: ``run`` returns a `StreamResult` carrying a
   `Halt`, and a ``KRAKEN_STREAM_HALT ...`` line is logged at ERROR for operators to alert on.

Cancellation: `KrakenStreamClient.run` closes the socket, writes open gaps, flushes and closes
the log and writes the final heartbeat in ``finally``, so a cancelled task (or a Dagster run
cancelled while `StreamRunner` hosts the client) never leaves a torn log or an open socket.

Hot path cost: one exact parse (`parse_message` with ``numbers_as_text``), one book apply, one
tuple appended to the log buffer; the Parquet write happens on the log's own thread.

Where the rest lives: `config` (`StreamConfig`, `config_from_mapping`), `policies` (`Backoff`,
`HaltPolicy`, `Halt`), `stats` (counters, `LatencyWindow`), `rows` (book levels as log rows)
and `runner` (`StreamRunner`, which hosts any client shaped like this one).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Opcode

from ingest_platform.streaming.kraken.book import KrakenBook, parse_message
from ingest_platform.streaming.kraken.config import (
    StreamConfig,
)
from ingest_platform.streaming.kraken.log import LogWriteError, StreamLog, write_heartbeat
from ingest_platform.streaming.kraken.policies import (
    MAX_DETAIL,
    Backoff,
    Halt,
    HaltPolicy,
)
from ingest_platform.streaming.kraken.rows import level_pairs, top_levels
from ingest_platform.streaming.kraken.stats import LatencyWindow, StreamStats, SymbolStats

logger = logging.getLogger(__name__)

_SYMBOL_IN_TEXT = re.compile(r'"symbol"\s*:\s*"([^"]+)"')
_OTHER_CHANNEL = re.compile(r'"channel":"(trade|ohlc|heartbeat|status|instrument)"')
_MAX_MESSAGE_BYTES = 32 * 2**20  # the full instrument snapshot is several MB on the real API
_ONLINE = "online"
_MAINTENANCE = "maintenance"


class ConnectionState(enum.Enum):
    """Where the client is in a connection's life (``state`` in reports and the heartbeat file).

    ``IDLE`` -> ``CONNECTING`` -> ``SUBSCRIBING`` -> ``STREAMING`` once every book has verified
    a snapshot; a failed connect or a lost connection goes through ``BACKOFF`` back to
    ``CONNECTING``; a halt sets ``HALTED`` from any state; `run` ending without one, ``STOPPED``.
    """

    IDLE = "idle"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    HALTED = "halted"
    STOPPED = "stopped"


@dataclass(frozen=True)
class StreamResult:
    """How `KrakenStreamClient.run` ended: ``stopped`` (asked to) or ``halted``."""

    outcome: str
    halt: Halt | None
    stats: dict[str, Any]
    session: str | None
    log_root: str | None

    @property
    def halted(self) -> bool:
        return self.halt is not None


# ---- per-symbol and per-connection state -----------------------------------------------------


class _Book:
    """One configured pair's book and its sync state."""

    __slots__ = (
        "awaiting_since",
        "book",
        "last_seq",
        "precision",
        "resyncing",
        "stats",
        "symbol",
        "synced",
    )

    def __init__(self, symbol: str, stats: SymbolStats) -> None:
        self.symbol = symbol
        self.book: KrakenBook | None = None
        self.precision: tuple[int, int] | None = None
        self.synced = False
        self.resyncing = False
        self.awaiting_since: int | None = None  # perf_counter_ns when a snapshot became due
        self.last_seq: int | None = None
        self.stats = stats


@dataclass
class _OpenGap:
    reason: str
    start_us: int
    last_book_seq: int | None
    details: list[str] = field(default_factory=list)


@dataclass
class _Subscription:
    state: str = "none"  # none | pending | active | unsubscribing | rejected
    retry_at: int | None = None  # perf_counter_ns
    backoff: Backoff | None = None


class _StampedConnection(ClientConnection):
    """A ClientConnection that notes when each data frame's bytes arrived from the socket.

    ``recv`` only says when the consumer got a message; the stamp taken in ``data_received``
    also counts the time a message waited in websockets' queue, so the latency the client
    reports is socket-to-log, not merely parse-to-log.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: collections.deque[int] = collections.deque()
        self._chunk_ns = 0

    def data_received(self, data: bytes) -> None:
        self._chunk_ns = time.perf_counter_ns()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        if (
            self.response is not None
            and getattr(event, "fin", False)
            and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
        ):
            self.arrivals.append(self._chunk_ns)
        super().process_event(event)


class _Disconnect(Exception):
    """Internal: the session must end (the reason is already recorded)."""


# ---- the client ------------------------------------------------------------------------------


class KrakenStreamClient:
    """Streams the configured pairs until stopped, cancelled or halted; see the module docstring.

    ``log`` receives every book item, trade, bar, gap and periodic top-of-book; ``status_root``
    (usually the log root) gets the heartbeat file; ``on_report`` is called (on the event loop)
    with a statistics dict every ``report_interval`` and once at the end.
    """

    def __init__(
        self,
        config: StreamConfig,
        *,
        log: StreamLog | None = None,
        status_root: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
        on_report: Callable[[dict[str, Any]], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(config, StreamConfig):
            raise TypeError(f"config must be a StreamConfig, got {type(config).__name__}")
        self.config = config
        self.log = log
        self.status_root = Path(status_root) if status_root is not None else None
        self.run_id = run_id
        self.on_report = on_report
        self.state = ConnectionState.IDLE
        self.stats = StreamStats()
        self.latency = LatencyWindow(config.latency_window)
        self._rng = rng or random.Random()
        self._backoff = Backoff(config.backoff_base, config.backoff_cap, self._rng)
        self._halt_policy = HaltPolicy(
            config.max_mismatches, config.max_critical_errors, config.halt_window
        )
        self._books: dict[str, _Book] = {}
        for symbol in config.pairs:
            self.stats.symbols[symbol] = SymbolStats()
            self._books[symbol] = _Book(symbol, self.stats.symbols[symbol])
        self._subs: dict[tuple[str, str], _Subscription] = {}
        self._gaps: dict[tuple[str, str], _OpenGap] = {}
        self._requests: dict[int, tuple[str, str, tuple[str, ...]]] = {}
        self._pings: dict[int, int] = {}
        self._next_req_id = 1
        self._book_seq = 0  # used when there is no log
        self._ws: _StampedConnection | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._halt: Halt | None = None
        self._stop_requested = False
        self._stop_event: asyncio.Event | None = None
        self._disconnect_reason: str | None = None
        self._instruments_ready = False
        self._connected_ns = 0
        self._last_message_ns = 0
        self._last_heartbeat_ns = 0
        self._last_recv_us = 0
        self._maintenance = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Task[None] | None = None

    # -- public ------------------------------------------------------------------------------

    @property
    def halt(self) -> Halt | None:
        return self._halt

    @property
    def session(self) -> str | None:
        return self.log.session if self.log is not None else None

    def book(self, symbol: str) -> KrakenBook | None:
        """The symbol's current book (None before its first snapshot)."""
        return self._books[symbol].book

    def is_synced(self, symbol: str) -> bool:
        return self._books[symbol].synced

    def open_gaps(self) -> dict[tuple[str, str], str]:
        return {key: gap.reason for key, gap in self._gaps.items()}

    def request_stop(self) -> None:
        """Ask `run` to finish: close the connection politely and return (on the client's loop)."""
        self._stop_requested = True
        if self._stop_event is not None:
            self._stop_event.set()
        ws = self._ws
        if ws is not None and self._loop is not None and self._closing is None:
            self._closing = self._loop.create_task(self._close_politely(ws))

    async def _close_politely(self, ws: ClientConnection) -> None:
        """A close frame (bounded by a second), then the transport goes either way."""
        try:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close()
        finally:
            self._abort(ws)

    def handle(self, raw: str | bytes) -> None:
        """Process one frame as if it had just been received (tests, captured streams).

        Requests it would send (subscribes, resyncs) go nowhere without a connection.
        """
        self._on_raw(raw, time.perf_counter_ns())

    def report(self) -> dict[str, Any]:
        """Statistics now, with latency percentiles and the state and halt, JSON-ready."""
        out = self.stats.snapshot(self.latency)
        out["state"] = self.state.value
        out["session"] = self.session
        out["halt"] = self._halt.as_dict() if self._halt else None
        out["open_gaps"] = len(self._gaps)
        if self.log is not None:
            out["log_rows"] = dict(self.log.stats.rows_written)
            out["log_segments"] = dict(self.log.stats.segments_written)
            out["log_write_seconds"] = round(self.log.stats.write_seconds, 3)
        return out

    async def run(self, duration: float | None = None) -> StreamResult:
        """Stream until `request_stop`, ``duration`` seconds, a halt, or cancellation."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            self._stop_event.set()
        timer = loop.call_later(duration, self.request_stop) if duration is not None else None
        periodic = asyncio.create_task(self._periodic(), name="kraken-periodic")
        try:
            while not self._stop_requested and self._halt is None:
                await self._connect_once()
                if self._stop_requested or self._halt is not None:
                    break
                self.state = ConnectionState.BACKOFF
                delay = self._backoff.next_delay()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), timeout=delay)
        finally:
            if timer is not None:
                timer.cancel()
            periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await periodic
            self._shutdown()
        return StreamResult(
            outcome="halted" if self._halt is not None else "stopped",
            halt=self._halt,
            stats=self.report(),
            session=self.session,
            log_root=str(self.log.root) if self.log is not None else None,
        )

    # -- connection lifecycle ----------------------------------------------------------------

    async def _connect_once(self) -> None:
        self.state = ConnectionState.CONNECTING
        try:
            ws = await connect(
                self.config.url,
                open_timeout=self.config.connect_timeout,
                ping_interval=None,  # liveness is ours: heartbeats, silence, app-level ping
                close_timeout=1,
                max_size=_MAX_MESSAGE_BYTES,
                max_queue=1024,
                create_connection=_StampedConnection,
            )
        except InvalidStatus as exc:
            self.stats.connect_failures += 1
            status = exc.response.status_code
            if 400 <= status < 500:
                self._critical("handshake_rejected", f"HTTP {status} from {self.config.url}")
            logger.warning("Kraken handshake failed: HTTP %s", status)
            return
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self.stats.connect_failures += 1
            logger.warning("Kraken connect failed: %s: %s", type(exc).__name__, exc)
            return
        assert isinstance(ws, _StampedConnection)
        self._ws = ws
        self._outbox = asyncio.Queue()
        self.stats.connections += 1
        now = time.perf_counter_ns()
        self._connected_ns = self._last_message_ns = self._last_heartbeat_ns = now
        self._disconnect_reason = None
        self._instruments_ready = False
        self._maintenance = False  # a new connection starts with a status message of its own
        self._requests.clear()
        self._pings.clear()
        self.state = ConnectionState.SUBSCRIBING
        sender = asyncio.create_task(self._send_loop(ws, self._outbox), name="kraken-sender")
        watchdog = asyncio.create_task(self._watchdog(ws), name="kraken-watchdog")
        try:
            self._send(
                {"method": "subscribe", "params": {"channel": "instrument", "snapshot": True}},
                ("subscribe", "instrument", ()),
            )
            arrivals = ws.arrivals
            on_raw = self._on_raw
            if self._stop_requested:  # stopped while connecting
                return
            while True:
                raw = await ws.recv()
                arrival = arrivals.popleft() if arrivals else time.perf_counter_ns()
                on_raw(raw, arrival)
                if self._halt is not None or self._stop_requested:
                    break
        except ConnectionClosed as exc:
            if self._disconnect_reason is None:
                self._disconnect_reason = f"closed: {exc}"
        except _Disconnect:
            pass
        finally:
            sender.cancel()
            watchdog.cancel()
            await asyncio.gather(sender, watchdog, return_exceptions=True)
            closing, self._closing = self._closing, None
            if closing is not None:
                await asyncio.gather(closing, return_exceptions=True)
            self._abort(ws)
            self._ws = None
            self._outbox = None
            self._on_disconnected()

    @staticmethod
    def _abort(ws: ClientConnection) -> None:
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            transport.abort()
        elif transport is not None:
            with contextlib.suppress(Exception):
                transport.abort()

    def _on_disconnected(self) -> None:
        """Every book that was in sync now has a gap; every subscription is gone."""
        stopping = self._stop_requested or self._halt is not None
        reason = self._disconnect_reason or "closed"
        if not stopping:
            self.stats.reconnects += 1
            logger.warning("Kraken connection lost (%s); reconnecting", reason)
        now_us = time.time_ns() // 1000
        start_us = self._last_recv_us or now_us
        for symbol, state in self._books.items():
            if stopping:
                continue  # the log simply ends here; books keep their last verified state
            if state.synced:
                self._open_gap(symbol, "book", "reconnect", start_us, state.last_seq, reason)
            state.synced = False
            state.stats.synced = False
            state.resyncing = False
            state.awaiting_since = None
        for (channel, symbol), sub in self._subs.items():
            if channel != "book" and sub.state == "active" and not stopping:
                self._open_gap(symbol, channel, "reconnect", start_us, None, reason)
        self._subs.clear()

    async def _send_loop(self, ws: ClientConnection, outbox: asyncio.Queue[str]) -> None:
        while True:
            text = await outbox.get()
            try:
                await ws.send(text)
            except ConnectionClosed:
                return

    def _send(self, message: dict[str, Any], request: tuple[str, str, tuple[str, ...]]) -> int:
        req_id = self._next_req_id
        self._next_req_id += 1
        message["req_id"] = req_id
        self._requests[req_id] = request
        if self._outbox is not None:
            self._outbox.put_nowait(json.dumps(message, separators=(",", ":")))
        return req_id

    def _subscribe(self, channel: str, symbols: list[str]) -> None:
        if not symbols or self._outbox is None:
            return
        params: dict[str, Any] = {"channel": channel, "symbol": symbols, "snapshot": True}
        if channel == "book":
            params["depth"] = self.config.depth
        elif channel == "ohlc":
            params["interval"] = self.config.ohlc_interval
        now = time.perf_counter_ns()
        for symbol in symbols:
            sub = self._subs.setdefault((channel, symbol), _Subscription())
            sub.state = "pending"
            sub.retry_at = None
            if channel == "book":
                self._books[symbol].awaiting_since = now
        self._send(
            {"method": "subscribe", "params": params}, ("subscribe", channel, tuple(symbols))
        )

    def _resync(self, symbol: str, reason: str, detail: str = "") -> None:
        """Unsubscribe and resubscribe one book for a fresh snapshot; drop its updates meanwhile.

        Opens the book's gap (or adds to the open one) so the log says why it restarted.
        """
        state = self._books[symbol]
        self._open_gap(
            symbol,
            "book",
            reason,
            self._last_recv_us or time.time_ns() // 1000,
            state.last_seq,
            detail,
        )
        state.synced = False
        state.stats.synced = False
        state.stats.resyncs += 1
        self.stats.resyncs += 1
        sub = self._subs.get(("book", symbol))
        if self._outbox is None or sub is None or sub.state in ("pending", "rejected"):
            return  # a snapshot is already on its way, or a retry is scheduled
        if state.resyncing and sub.state == "unsubscribing":
            return
        state.resyncing = True
        state.awaiting_since = time.perf_counter_ns()
        sub.state = "unsubscribing"
        params = {"channel": "book", "symbol": [symbol], "depth": self.config.depth}
        self._send({"method": "unsubscribe", "params": params}, ("unsubscribe", "book", (symbol,)))
        logger.info("Kraken %s: resync (%s)", symbol, reason)

    # -- message handling (hot path) ---------------------------------------------------------

    def _on_raw(self, raw: str | bytes, arrival_ns: int) -> None:
        self._last_message_ns = arrival_ns
        recv_us = time.time_ns() // 1000
        self._last_recv_us = recv_us
        try:
            msg = parse_message(raw, numbers_as_text=True)
        except ValueError as exc:
            self._on_malformed(raw, exc, recv_us)
            return
        if type(msg) is not dict:
            self._on_unknown(msg)
            return
        channel = msg.get("channel")
        try:
            if channel == "book":
                self.stats.messages["book"] += 1
                self._on_book(msg, recv_us)
            elif channel == "trade":
                self.stats.messages["trade"] += 1
                self._on_trade(msg, recv_us)
            elif channel == "ohlc":
                self.stats.messages["ohlc"] += 1
                self._on_ohlc(msg, recv_us)
            elif channel == "heartbeat":
                self.stats.messages["heartbeat"] += 1
                self.stats.heartbeats += 1
                self._last_heartbeat_ns = arrival_ns
                return
            elif channel == "status":
                self.stats.messages["status"] += 1
                self._on_status(msg, recv_us)
                return
            elif channel == "instrument":
                self.stats.messages["instrument"] += 1
                self._on_instrument(msg)
                return
            elif channel is None and "method" in msg:
                self.stats.messages["method"] += 1
                self._on_method(msg, recv_us)
                return
            else:
                self._on_unknown(msg)
                return
        except LogWriteError as exc:
            self._halt_now("log_write_failed", str(exc))
            return
        except Exception as exc:  # a bug or a shape we never saw: count it, keep streaming
            logger.exception("Kraken %s message could not be handled", channel)
            self._critical("handler_error", f"{type(exc).__name__}: {exc}")
            return
        self.latency.add(time.perf_counter_ns() - arrival_ns)

    def _on_book(self, msg: dict[str, Any], recv_us: int) -> None:
        kind = msg.get("type")
        data = msg.get("data")
        if kind not in ("snapshot", "update") or type(data) is not list:
            self._critical("malformed_book", f"book message type={kind!r}")
            return
        books = self._books
        log = self.log
        for item in data:
            symbol = item.get("symbol") if type(item) is dict else None
            state = books.get(symbol)  # type: ignore[arg-type]
            if state is None:
                self.stats.errors["book_unknown_symbol"] += 1
                continue
            self.stats.book_messages += 1
            if kind == "update" and not state.synced:
                state.stats.dropped_unsynced += 1
                continue
            error: Exception | None = None
            book = state.book
            try:
                if kind == "snapshot":
                    if state.precision is None:
                        raise ValueError(f"no instrument precision for {symbol}")
                    pp, qp = state.precision
                    if book is None or (book.price_precision, book.qty_precision) != (pp, qp):
                        book = state.book = KrakenBook(symbol, self.config.depth, pp, qp)
                    ok = book.apply_snapshot(item)
                else:
                    ok = book.apply_update(item)  # type: ignore[union-attr]
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                ok, error = False, exc
            if log is not None:
                checksum = item.get("checksum")
                seq = log.book(
                    recv_us,
                    item.get("timestamp"),
                    symbol,  # type: ignore[arg-type]
                    kind,
                    level_pairs(item.get("bids")),
                    level_pairs(item.get("asks")),
                    checksum if type(checksum) is int else -1,
                    ok,
                    self.config.depth,
                    book.price_precision if book else -1,
                    book.qty_precision if book else -1,
                )
            else:
                seq = self._book_seq
                self._book_seq += 1
            if ok:
                stats = state.stats
                if kind == "snapshot":
                    self._on_verified_snapshot(state, recv_us, seq)
                else:
                    stats.updates_verified += 1
                    stats.verified_since_snapshot += 1
                state.last_seq = seq
            else:
                self._on_bad_book(state, kind, recv_us, seq, error)  # type: ignore[arg-type]
            if self._halt is not None:
                return

    def _on_verified_snapshot(self, state: _Book, recv_us: int, seq: int) -> None:
        state.synced = True
        state.resyncing = False
        state.awaiting_since = None
        state.stats.synced = True
        state.stats.snapshots += 1
        state.stats.verified_since_snapshot = 0
        sub = self._subs.get(("book", state.symbol))
        if sub is not None and sub.state == "unsubscribing":
            # An older subscription's snapshot (e.g. held back by maintenance) overtook our
            # resync: the resubscribe brings a newer one, and that one closes the gap.
            return
        if sub is not None:
            sub.state = "active"
        self._close_gap(state.symbol, "book", recv_us, seq)
        if all(b.synced for b in self._books.values()):
            self.state = ConnectionState.STREAMING
            self._backoff.reset()

    def _on_bad_book(
        self, state: _Book, kind: str, recv_us: int, seq: int, error: Exception | None
    ) -> None:
        symbol = state.symbol
        state.synced = False
        state.stats.synced = False
        if error is None:
            self.stats.checksum_failures += 1
            state.stats.checksum_failures += 1
            reason = "checksum_mismatch"
            detail = f"{kind} seq {seq}"
            logger.warning("Kraken %s: checksum mismatch on %s seq %s", symbol, kind, seq)
            if self._halt_policy.mismatch(time.monotonic()):
                self._halt_now(reason, f"{symbol}: {detail}")
        else:
            reason = "malformed_book"
            detail = f"{kind} seq {seq}: {type(error).__name__}: {error}"
            self._critical(reason, f"{symbol}: {detail}")
        if self._halt is None:
            self._resync(symbol, reason, detail)
        else:
            self._open_gap(symbol, "book", reason, recv_us, state.last_seq, detail)

    def _on_trade(self, msg: dict[str, Any], recv_us: int) -> None:
        kind = msg.get("type", "update")
        log = self.log
        symbols = self.stats.symbols
        for item in msg.get("data") or ():
            self.stats.trades += 1
            stats = symbols.get(item.get("symbol"))
            if stats is not None:
                stats.trades += 1
            if log is not None:
                log.trade(recv_us, kind, item)

    def _on_ohlc(self, msg: dict[str, Any], recv_us: int) -> None:
        kind = msg.get("type", "update")
        log = self.log
        symbols = self.stats.symbols
        for item in msg.get("data") or ():
            self.stats.ohlc_bars += 1
            stats = symbols.get(item.get("symbol"))
            if stats is not None:
                stats.ohlc += 1
            if log is not None:
                log.ohlc(recv_us, kind, item)

    def _on_status(self, msg: dict[str, Any], recv_us: int) -> None:
        data = msg.get("data") or [{}]
        system = data[0].get("system") if isinstance(data[0], dict) else None
        previous = self.stats.exchange_status
        self.stats.exchange_status = system
        if system == _MAINTENANCE and not self._maintenance:
            self._maintenance = True
            logger.warning("Kraken status: maintenance; books paused until online")
            for symbol, state in self._books.items():
                if state.synced:
                    self._open_gap(symbol, "book", "maintenance", recv_us, state.last_seq, "")
                state.synced = False
                state.stats.synced = False
        elif system == _ONLINE and self._maintenance:
            self._maintenance = False
            logger.info("Kraken status: online after maintenance; resyncing every book")
            for symbol in self._books:
                self._resync(symbol, "maintenance", "resubscribed after maintenance")
        elif system not in (_ONLINE, _MAINTENANCE) and system != previous:
            logger.warning("Kraken status: %s", system)

    def _on_instrument(self, msg: dict[str, Any]) -> None:
        data = msg.get("data")
        pairs = data.get("pairs") if isinstance(data, dict) else None
        if not isinstance(pairs, list):
            self._critical("malformed_instrument", "instrument message without pairs")
            return
        listed: set[str] = set()
        for pair in pairs:
            symbol = pair.get("symbol") if isinstance(pair, dict) else None
            state = self._books.get(symbol)  # type: ignore[arg-type]
            if state is None:
                continue
            listed.add(symbol)  # type: ignore[arg-type]
            pp, qp = pair.get("price_precision"), pair.get("qty_precision")
            if type(pp) is not int or type(qp) is not int:
                self._critical("malformed_instrument", f"{symbol}: precisions {pp!r}/{qp!r}")
                continue
            changed = state.precision is not None and state.precision != (pp, qp)
            state.precision = (pp, qp)
            if changed and state.synced:
                self._resync(symbol, "precision_changed", f"now {pp}/{qp}")
        if msg.get("type") != "snapshot":
            return
        missing = [s for s in self.config.pairs if s not in listed]
        if missing:
            self._halt_now(
                "unknown_pairs",
                f"the exchange does not list {missing}; fix StreamConfig.pairs",
            )
            return
        if not self._instruments_ready:
            self._instruments_ready = True
            symbols = list(self.config.pairs)
            for channel in self.config.channels:
                self._subscribe(channel, symbols)

    def _on_method(self, msg: dict[str, Any], recv_us: int) -> None:
        method = msg.get("method")
        req_id = msg.get("req_id")
        if method == "pong":
            sent = self._pings.pop(req_id, None)  # type: ignore[arg-type]
            self._requests.pop(req_id, None)  # type: ignore[arg-type]
            if sent is not None:
                self.stats.last_rtt_ms = (time.perf_counter_ns() - sent) / 1e6
            return
        request = self._requests.get(req_id)  # type: ignore[arg-type]
        success = msg.get("success")
        result = msg.get("result") if isinstance(msg.get("result"), dict) else {}
        channel = result.get("channel") or (request[1] if request else None)
        symbol = result.get("symbol") or msg.get("symbol")
        if method == "subscribe":
            if success:
                self._on_subscribed(channel, symbol, recv_us)
            else:
                self._on_rejected(channel, symbol, request, str(msg.get("error")))
        elif method == "unsubscribe":
            if channel == "book" and symbol in self._books:
                sub = self._subs.get(("book", symbol))
                if sub is not None and sub.state == "unsubscribing":
                    self._subscribe("book", [symbol])
            if not success:
                self.stats.errors["unsubscribe_failed"] += 1
        else:
            if success is False or "error" in msg:
                self._critical("server_error", f"{method}: {msg.get('error')}")
            else:
                self._on_unknown(msg)

    def _on_subscribed(self, channel: str | None, symbol: str | None, recv_us: int) -> None:
        if channel is None or symbol is None:
            return  # the instrument ack
        sub = self._subs.setdefault((channel, symbol), _Subscription())
        if channel == "book":
            if sub.state != "active":
                sub.state = "pending"  # active once its snapshot verifies
            return
        sub.state = "active"
        sub.backoff = None
        self._close_gap(symbol, channel, recv_us, None)

    def _on_rejected(
        self,
        channel: str | None,
        symbol: str | None,
        request: tuple[str, str, tuple[str, ...]] | None,
        error: str,
    ) -> None:
        symbols = [symbol] if symbol else list(request[2]) if request else []
        if "already subscribed" in error.lower() and channel is not None:
            # Our state and the server's disagree: treat it as subscribed, and resync a book.
            for sym in symbols:
                if sym in self._books:
                    self._subs.setdefault((channel, sym), _Subscription()).state = "active"
                    if channel == "book":
                        self._resync(sym, "already_subscribed", error)
                    else:
                        self._close_gap(sym, channel, time.time_ns() // 1000, None)
            return
        self.stats.rejected_subscriptions += 1
        logger.warning("Kraken rejected subscription %s %s: %s", channel, symbols, error)
        self._critical("subscription_rejected", f"{channel} {symbols}: {error}")
        if channel is None:
            return
        now_us = time.time_ns() // 1000
        for sym in symbols:
            if sym not in self._books:
                continue
            sub = self._subs.setdefault((channel, sym), _Subscription())
            sub.state = "rejected"
            if sub.backoff is None:
                sub.backoff = Backoff(self.config.backoff_base, self.config.backoff_cap, self._rng)
            delay = sub.backoff.next_delay()
            sub.retry_at = time.perf_counter_ns() + int(delay * 1e9)
            last = self._books[sym].last_seq if channel == "book" else None
            self._open_gap(sym, channel, "subscription_rejected", now_us, last, error)
            if channel == "book":
                state = self._books[sym]
                state.synced = False
                state.stats.synced = False
                state.awaiting_since = None  # no snapshot is coming until the retry

    def _on_malformed(self, raw: str | bytes, exc: Exception, recv_us: int) -> None:
        """A frame that is not JSON: whatever it was is lost, so affected books resync."""
        self.stats.malformed += 1
        self.stats.messages["malformed"] += 1
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        logger.warning("Kraken sent a malformed frame (%s): %.120r", exc, text)
        self._critical("malformed_json", f"{exc}: {text[:120]!r}")
        if self._halt is not None:
            return
        compact = text.replace(" ", "")
        if '"channel":"book"' not in compact and _OTHER_CHANNEL.search(compact):
            return  # visibly not a book message: no book can have lost an update
        match = _SYMBOL_IN_TEXT.search(text)
        affected = (
            [match.group(1)] if match and match.group(1) in self._books else list(self._books)
        )
        for symbol in affected:
            state = self._books[symbol]
            if state.synced:
                self._resync(symbol, "malformed_message", text[:80])

    def _on_unknown(self, msg: Any) -> None:
        self.stats.unknown += 1
        self.stats.messages["unknown"] += 1
        if self.stats.unknown <= 10 or self.stats.unknown % 1000 == 0:
            logger.warning(
                "Kraken: unexpected message (%d so far): %.200r", self.stats.unknown, msg
            )

    # -- gaps, errors, halts -----------------------------------------------------------------

    def _open_gap(
        self,
        symbol: str,
        channel: str,
        reason: str,
        start_us: int,
        last_book_seq: int | None,
        detail: str,
    ) -> None:
        key = (symbol, channel)
        gap = self._gaps.get(key)
        if gap is None:
            self._gaps[key] = _OpenGap(reason, start_us, last_book_seq, [detail] if detail else [])
        elif detail:
            gap.details.append(f"{reason}: {detail}")

    def _close_gap(self, symbol: str, channel: str, end_us: int | None, resume_seq: int | None):
        gap = self._gaps.pop((symbol, channel), None)
        if gap is None:
            return
        self.stats.gaps += 1
        if end_us is not None:
            self.stats.gap_seconds += max(0, end_us - gap.start_us) / 1e6
        if self.log is not None and not self.log.closed:
            try:
                self.log.gap(
                    end_us if end_us is not None else time.time_ns() // 1000,
                    symbol,
                    channel,
                    gap.reason,
                    gap.start_us,
                    end_us,
                    gap.last_book_seq,
                    resume_seq,
                    "; ".join(gap.details)[:MAX_DETAIL],
                )
            except LogWriteError as exc:
                logger.error("Kraken gap %s %s not logged: %s", symbol, channel, exc)
                self._halt_now("log_write_failed", str(exc))

    def _critical(self, kind: str, detail: str) -> None:
        self.stats.critical_errors += 1
        self.stats.errors[kind] += 1
        if self._halt is None and self._halt_policy.critical(time.monotonic()):
            self._halt_now(kind, detail)

    def _halt_now(self, reason: str, detail: str) -> None:
        if self._halt is not None:
            return
        mismatches, critical = self._halt_policy.counts(time.monotonic())
        self._halt = Halt(
            reason, detail, time.time(), mismatches, critical, self.config.halt_window
        )
        self.state = ConnectionState.HALTED
        logger.error(self._halt.log_line())
        if self._stop_event is not None:
            self._stop_event.set()
        if self._ws is not None:
            self._abort(self._ws)

    def _breach(
        self, ws: ClientConnection, reason: str, detail: str = "", critical: bool = False
    ) -> None:
        self.stats.liveness_breaches[reason] += 1
        self._disconnect_reason = f"{reason} {detail}".strip()
        logger.warning("Kraken liveness: %s; reconnecting", self._disconnect_reason)
        if critical:
            self._critical(reason, self._disconnect_reason)
        self._abort(ws)

    # -- background tasks --------------------------------------------------------------------

    async def _watchdog(self, ws: _StampedConnection) -> None:
        cfg = self.config
        tick = max(0.01, min(cfg.max_silence, cfg.max_heartbeat_interval, 1.0) / 5)
        silence_ns = int(cfg.max_silence * 1e9)
        heartbeat_ns = int(cfg.max_heartbeat_interval * 1e9)
        snapshot_ns = int(cfg.snapshot_timeout * 1e9)
        ping_ns = int(cfg.ping_interval * 1e9)
        next_ping = time.perf_counter_ns() + ping_ns
        while True:
            await asyncio.sleep(tick)
            now = time.perf_counter_ns()
            if now - self._last_message_ns > silence_ns:
                self._breach(ws, "silence")
                return
            if now - self._last_heartbeat_ns > heartbeat_ns:
                self._breach(ws, "heartbeat_timeout")
                return
            if any(now - sent > silence_ns for sent in self._pings.values()):
                self._breach(ws, "pong_timeout")
                return
            if not self._maintenance:
                if not self._instruments_ready and now - self._connected_ns > snapshot_ns:
                    self._breach(ws, "instrument_timeout", critical=True)
                    return
                late = [
                    s.symbol
                    for s in self._books.values()
                    if s.awaiting_since is not None and now - s.awaiting_since > snapshot_ns
                ]
                if late:
                    self._breach(ws, "snapshot_timeout", f"{late}", critical=True)
                    return
            for (channel, symbol), sub in list(self._subs.items()):
                if sub.state == "rejected" and sub.retry_at is not None and now >= sub.retry_at:
                    self._subscribe(channel, [symbol])
            if ping_ns and now >= next_ping:
                next_ping = now + ping_ns
                req_id = self._send({"method": "ping"}, ("ping", "", ()))
                self._pings[req_id] = now

    async def _periodic(self) -> None:
        """Heartbeat file, segment age rolls, top-of-book rows and reports, off the hot path."""
        cfg = self.config
        tick = min(cfg.status_interval, 0.5)
        next_status = next_report = next_top = time.monotonic()
        next_report += cfg.report_interval
        next_top += cfg.top_interval
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            try:
                if self.log is not None:
                    self.log.tick()
                    if cfg.top_interval and now >= next_top:
                        next_top = now + cfg.top_interval
                        self._log_tops()
            except LogWriteError as exc:
                self._halt_now("log_write_failed", str(exc))
                return
            if now >= next_status:
                next_status = now + cfg.status_interval
                self._write_status()
            if now >= next_report:
                next_report = now + cfg.report_interval
                self._emit_report()

    def _log_tops(self) -> None:
        recv_us = time.time_ns() // 1000
        n = self.config.top_levels
        for state in self._books.values():
            if not state.synced or state.book is None or state.last_seq is None:
                continue
            bids, asks = top_levels(state.book, n)
            self.log.book_top(  # type: ignore[union-attr]
                recv_us, state.symbol, state.last_seq, state.book.checksum(), bids, asks
            )

    def _emit_report(self) -> None:
        if self.on_report is None:
            return
        try:
            self.on_report(self.report())
        except Exception:
            logger.exception("Kraken stream report callback failed")

    def heartbeat_payload(self) -> dict[str, Any]:
        """What the heartbeat file holds: who is streaming, how fresh, and the counters."""
        stats = self.stats
        now_wall = time.time()
        now_ns = time.perf_counter_ns()

        def wall(ns: int) -> float | None:
            return now_wall - (now_ns - ns) / 1e9 if ns else None

        stats.last_message_at = wall(self._last_message_ns)
        stats.last_heartbeat_at = wall(self._last_heartbeat_ns)
        return {
            "format": 1,
            "run_id": self.run_id,
            "session": self.session,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "state": self.state.value,
            "updated_at": now_wall,
            "started_at": stats.started_at,
            "last_message_at": stats.last_message_at,
            "last_heartbeat_at": stats.last_heartbeat_at,
            "halt": self._halt.as_dict() if self._halt else None,
            "stats": stats.snapshot(),
        }

    def _write_status(self) -> None:
        if self.status_root is None:
            return
        try:
            write_heartbeat(self.status_root, self.heartbeat_payload())
        except OSError as exc:
            logger.warning("Kraken heartbeat file not written: %s", exc)

    def _shutdown(self) -> None:
        """Runs in ``finally``: socket, open gaps, log, final heartbeat and report."""
        ws = self._ws
        if ws is not None:
            self._abort(ws)
        if self._halt is None:
            self.state = ConnectionState.STOPPED
        end_note = "halted" if self._halt is not None else "stopped"
        for symbol, channel in list(self._gaps):
            gap = self._gaps[(symbol, channel)]
            gap.details.append(f"still open when the stream {end_note}")
            self._close_gap(symbol, channel, None, None)
        try:
            if self.log is not None:
                self.log.close()
        except LogWriteError as exc:
            logger.error("Kraken stream log: final flush failed: %s", exc)
            if self._halt is None:
                self._halt_now("log_write_failed", str(exc))
        finally:
            self._write_status()
            self._emit_report()


def open_client(
    config: StreamConfig,
    log_root: str | os.PathLike[str] | None,
    *,
    run_id: str | None = None,
    on_report: Callable[[dict[str, Any]], None] | None = None,
    background_log: bool = True,
) -> KrakenStreamClient:
    """A client writing its log and heartbeat under ``log_root`` (no log when None)."""
    log = (
        StreamLog(
            log_root,
            max_rows=config.segment_max_rows,
            max_seconds=config.segment_max_seconds,
            background=background_log,
        )
        if log_root is not None
        else None
    )
    return KrakenStreamClient(
        config, log=log, status_root=log_root, run_id=run_id, on_report=on_report
    )
