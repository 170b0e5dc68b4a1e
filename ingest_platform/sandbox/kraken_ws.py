"""A local, deterministic stand-in for Kraken's spot WebSocket v2 (``wss://ws.kraken.com/v2``).

The platform's Kraken client, its tests, the composite sandbox and ``ingest-platform sandbox``
talk to this server exactly as to Kraken: status on connect, heartbeats, ping/pong, one ack
per symbol, ``book`` snapshots and updates with CRC32 checksums, ``trade``, ``ohlc`` and
``instrument``. The market behind it is `kraken_market.SymbolMarket`; this module is protocol,
pacing, fan-out and fault injection.

Design notes (the why):

- **Determinism.** Markets are seeded per (seed, symbol) and advance one *round* at a time:
  a round is one event for every symbol somebody is subscribed to (book, trade or ohlc), in
  pair order. Simulated time is ``start + round * step`` with a seed-derived start and
  ``step = 1/rate`` of the rate given at construction (20 ms if that rate is 0); every
  timestamp, ack ``time_in``/``time_out`` and ``connection_id`` comes from it. Markets only
  advance while subscribed, so a client that subscribes before data flows (e.g. a server
  created with ``rate=0``, then `set_rate`) receives byte-identical payloads run after run.
  Heartbeats are paced in real time, so their position in the stream is not deterministic.
- **Rate.** ``rate`` is rounds per second, i.e. book updates per second *per subscribed
  symbol* (and per subscription); every event changes the top ten levels, so each depth gets
  exactly one update per round. ``rate=0`` pauses the markets.
- **Throughput.** Messages are rendered once per (symbol, depth) and shared by subscribers;
  each connection has a writer task that frames its queued text itself and hands the whole
  batch to the transport in one ``write`` (websockets' per-message ``send`` costs ~10 µs and
  a syscall each). This relies on compression being off and only writes while the
  connection is OPEN; control frames are still websockets' business.
- **Depth semantics.** See `kraken_market.BookSide.diff_text`: no deletes for levels pushed
  out of a view, inserts for levels rising into it, per subscribed depth.

Faults (`FaultPlan`, endpoint ``kraken``; ``kraken.book``/``kraken.trade``/... also match
channel-specific rules) are checked at connect, after each subscribe request and every
`FAULT_POLL_SECONDS` while the server runs, so rules added mid-stream take effect at once
without costing the hot path:

- ``drop_after`` (params ``messages`` = 10, ``close_frame`` = false): after that many more
  messages on a connection, abort the TCP connection (no close frame), or with
  ``close_frame`` send close 1011 first. A rule with a symbol hits connections subscribed to it.
- ``stop_heartbeats`` (``seconds`` = until the connection ends, ``silent`` = false): no
  heartbeats on that connection; with ``silent`` nothing at all is written (data queues up and
  is delivered afterwards, like a stalled TCP connection; pings go unanswered).
- ``corrupt_checksum`` (symbol): the next book update for that symbol on one subscription
  carries checksum + 1; the levels stay right, so a resubscribe heals.
- ``malformed_json`` (``text`` optional): one frame that is not JSON, next in the stream.
- ``maintenance`` (``seconds`` = 2, server-wide): status ``maintenance`` to everyone, markets
  frozen (no book, trade or ohlc data; snapshots of new subscriptions wait), then ``online``.
- ``reject_subscription`` (symbol, ``error`` optional): that subscribe gets success=false.
- ``restart`` (``down`` = 1, ``close_frame`` = false, server-wide): drop every connection,
  stop listening, listen again on the same port after ``down`` seconds.

Connection-level rules (drop_after, stop_heartbeats, malformed_json) match endpoint ``kraken``
or ``*``; a rule's ``times`` counts firings (None: fires at every poll while it lives).

Protocol choices worth knowing: heartbeats go to every connection, subscribed or not; a
second subscribe to the same (channel, symbol) gets ``"Already subscribed"`` (resubscribe =
unsubscribe, then subscribe); book snapshots carry a ``timestamp`` like the current docs
(the 2023 capture has none); numbers drop trailing zeros, as in the capture.

Counters (`RequestCounters`; symbol ``-`` where none):

- ``kraken.connect``, ``kraken.disconnect``, ``kraken.bad_path``, ``kraken.restart``,
  ``kraken.slow_consumer`` (a connection dropped for a backlog over `MAX_BACKLOG`);
- ``kraken.ping``, ``kraken.subscribe.<channel>`` / ``kraken.unsubscribe.<channel>`` per
  symbol requested (valid or not), ``kraken.request.invalid``;
- ``kraken.sent.<kind>`` per message written: kind is the channel (``book``, ``trade``,
  ``ohlc``, ``instrument``, ``status``, ``heartbeat``) or ``subscribe``, ``unsubscribe``,
  ``pong``, ``error``, ``malformed``; by symbol for data channels;
- ``kraken.fault.<kind>`` each time a fault fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import struct
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from ingest_platform.sandbox.control import FaultPlan, RequestCounters
from ingest_platform.sandbox.kraken_market import (
    BOOK_DEPTHS,
    DEFAULT_PAIRS,
    OHLC_INTERVALS,
    PAIRS_BY_SYMBOL,
    Pair,
    SimClock,
    SymbolMarket,
    book_snapshot_text,
    book_update_parts,
    candle_item_text,
    channel_text,
    instrument_snapshot_text,
    status_text,
    trade_item_text,
)

__all__ = ["FAULT_POLL_SECONDS", "HANDLED_FAULTS", "MAX_BACKLOG", "PATH", "KrakenSandboxServer"]

PATH = "/v2"
API_VERSION = "2.0.9"
ENDPOINT = "kraken"
FAULT_POLL_SECONDS = 0.02
#: Queued messages past which a connection that does not read is dropped (a slow consumer).
MAX_BACKLOG = 200_000
HEARTBEAT = '{"channel":"heartbeat"}'
MALFORMED = '{"channel":"book","type":"update","data":[{"symbol":"'

_HIGH_WATER = 1 << 20  # bytes buffered in the transport before the writer waits
_MAX_ROUNDS_PER_TICK = 256  # then yield, so writers and request handlers run
_MAX_LAG_SECONDS = 0.25  # a pacer further behind forgets the backlog instead of bursting
_IDLE_SLEEP = 0.02
_MIN_SLEEP = 0.001
_ACK_LATENCY_US = 37  # time_out - time_in, simulated
_SESSION_FAULTS = frozenset({"drop_after", "stop_heartbeats", "malformed_json"})
_CORRUPT = frozenset({"corrupt_checksum"})
_MAINTENANCE = frozenset({"maintenance"})
_RESTART = frozenset({"restart"})
_REJECT = frozenset({"reject_subscription"})
_DATA_CHANNELS = ("book", "trade", "ohlc")
_EPOCH_2024 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
_log = logging.getLogger(__name__)
_H16 = struct.Struct("!BBH").pack
_H64 = struct.Struct("!BBQ").pack
#: Every fault kind this server applies (a test keeps it equal to control.WS_FAULTS).
HANDLED_FAULTS = _SESSION_FAULTS | _CORRUPT | _MAINTENANCE | _RESTART | _REJECT


def _frame(text: str) -> bytes:
    """An unmasked, unfragmented text frame (server to client, no extensions)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return _H16(0x81, 126, n) + data
    return _H64(0x81, 127, n) + data


def _log_crash(task: asyncio.Task[None]) -> None:
    """A pacer or heartbeat task must never die quietly: the stream would just stop."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("Kraken sandbox task crashed", exc_info=task.exception())


def _dumps(obj: dict[str, Any]) -> str:
    # Kraken's acks list their keys alphabetically.
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


class _Sub:
    """One connection's subscription to one (channel, symbol)."""

    __slots__ = ("channel", "corrupt_next", "depth", "interval", "session", "symbol")

    def __init__(
        self, session: _Session, channel: str, symbol: str | None, depth: int, interval: int
    ) -> None:
        self.session = session
        self.channel = channel
        self.symbol = symbol
        self.depth = depth
        self.interval = interval
        self.corrupt_next = False


class _Session:
    """One client connection: its subscriptions, its outbox and the writer that drains it."""

    def __init__(self, ws: ServerConnection, connection_id: int, counters: RequestCounters):
        self.ws = ws
        self.connection_id = connection_id
        self.counters = counters
        self.subs: dict[tuple[str, str | None], _Sub] = {}
        self.outbox: list[tuple[str, str, str | None]] = []
        self.wake = asyncio.Event()
        self.heartbeats_stopped_until = 0.0  # loop time; math.inf: for good
        self.stalled_until = 0.0
        self.drop_remaining: int | None = None
        self.drop_close_frame = False

    def push(self, text: str, counter: str, symbol: str | None = None) -> None:
        self.outbox.append((text, counter, symbol))
        self.wake.set()

    def symbols(self) -> list[str]:
        return sorted({s for (_, s) in self.subs if s is not None})

    async def run_writer(self) -> None:
        """Write queued messages in batches, with flow control, stalls and drop_after."""
        loop = asyncio.get_running_loop()
        transport = self.ws.transport
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.stalled_until > loop.time() or transport.get_write_buffer_size() > (
                _HIGH_WATER
            ):
                if len(self.outbox) > MAX_BACKLOG:
                    self.counters.count("kraken.slow_consumer")
                    transport.abort()
                    return
                await asyncio.sleep(min(0.05, max(0.002, self.stalled_until - loop.time())))
            if not self.outbox:
                continue
            if self.ws.protocol.state is not State.OPEN or transport.is_closing():
                return
            batch, self.outbox = self.outbox, []
            if not self._write(batch, transport):
                await self._drop()
                return

    def _write(self, batch: list[tuple[str, str, str | None]], transport: Any) -> bool:
        """Frame and write ``batch``; False when drop_after says the connection must go now."""
        count = self.counters.count
        frames: list[bytes] = []
        remaining = self.drop_remaining
        for text, counter, symbol in batch:
            if remaining is not None:
                if remaining <= 0:
                    break
                remaining -= 1
            frames.append(_frame(text))
            count(counter, symbol)
        if frames:
            transport.write(b"".join(frames))
        self.drop_remaining = remaining
        return remaining is None or remaining > 0

    async def _drop(self) -> None:
        if self.drop_close_frame:
            await self.ws.close(1011, "sandbox fault: drop_after")
        else:
            self.ws.transport.abort()


class _Feed:
    """One pair: its market (created on first use) and who is subscribed to what."""

    def __init__(self, pair: Pair, seed: int) -> None:
        self.pair = pair
        self._seed = seed
        self._market: SymbolMarket | None = None
        self.book: dict[int, list[_Sub]] = {}
        self.trade: list[_Sub] = []
        self.ohlc: dict[int, list[_Sub]] = {}

    @property
    def market(self) -> SymbolMarket:
        if self._market is None:
            self._market = SymbolMarket(self.pair, self._seed)
        return self._market

    @property
    def subscribed(self) -> bool:
        return bool(self.book or self.trade or self.ohlc)

    def _group(self, sub: _Sub) -> list[_Sub]:
        if sub.channel == "book":
            return self.book.setdefault(sub.depth, [])
        if sub.channel == "ohlc":
            return self.ohlc.setdefault(sub.interval, [])
        return self.trade

    def add(self, sub: _Sub) -> None:
        self._group(sub).append(sub)

    def remove(self, sub: _Sub) -> None:
        group = self._group(sub)
        group.remove(sub)
        if not group:
            if sub.channel == "book":
                del self.book[sub.depth]
            elif sub.channel == "ohlc":
                del self.ohlc[sub.interval]

    def snapshot_text(self, sub: _Sub, now_us: int, clock: SimClock) -> str:
        market = self.market
        if sub.channel == "book":
            bids, asks = market.snapshot_text(sub.depth)
            ts = clock.text(now_us)
            return book_snapshot_text(self.pair.symbol, bids, asks, market.checksum(), ts)
        if sub.channel == "trade":
            items = [trade_item_text(self.pair, t, clock) for t in market.recent_trades]
            return channel_text("trade", "snapshot", items)
        candle = market.candles.get(sub.interval)
        items = [] if candle is None else [candle_item_text(self.pair, candle, now_us, clock)]
        return channel_text("ohlc", "snapshot", items)

    def publish(self, now_us: int, timestamp: str, clock: SimClock, counters: Any) -> None:
        """Advance the market one event and queue what each subscriber must see of it."""
        market = self.market
        symbol = self.pair.symbol
        before = market.boundaries(list(self.book)) if self.book else {}
        trade = market.step(now_us)
        if self.book:
            checksum = market.checksum()
            for depth, subs in self.book.items():
                bids, asks = market.update_text(depth, before[depth])
                head, tail = book_update_parts(symbol, bids, asks, timestamp)
                text = f"{head}{checksum}{tail}"
                for sub in subs:
                    if sub.corrupt_next:
                        sub.corrupt_next = False
                        counters.count("kraken.fault.corrupt_checksum", symbol)
                        wrong = f"{head}{(checksum + 1) & 0xFFFFFFFF}{tail}"
                        sub.session.push(wrong, "kraken.sent.book", symbol)
                    else:
                        sub.session.push(text, "kraken.sent.book", symbol)
        if trade is None:
            return
        if self.trade:
            text = channel_text("trade", "update", [trade_item_text(self.pair, trade, clock)])
            for sub in self.trade:
                sub.session.push(text, "kraken.sent.trade", symbol)
        for interval, subs in self.ohlc.items():
            item = candle_item_text(self.pair, market.candles[interval], now_us, clock)
            text = channel_text("ohlc", "update", [item])
            for sub in subs:
                sub.session.push(text, "kraken.sent.ohlc", symbol)


class KrakenSandboxServer:
    """Kraken's spot WebSocket v2 on loopback, seeded, paced and fault-injectable.

    ``start()``/``stop()`` run it on an event loop in a daemon thread (tests, the composite
    sandbox); ``serve()``/``serve_forever()`` run it in the foreground (the CLI). ``url`` is
    ``ws://<host>:<port>/v2``; ``port=0`` picks a free port, kept across `restart`.
    """

    def __init__(
        self,
        seed: int = 7,
        faults: FaultPlan | None = None,
        counters: RequestCounters | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float = 50.0,
        heartbeat_interval: float = 1.0,
        pairs: Sequence[str] | None = None,
    ) -> None:
        unknown = [s for s in pairs or () if s not in PAIRS_BY_SYMBOL]
        if unknown:
            raise ValueError(f"unknown pair(s) {unknown}; known: {sorted(PAIRS_BY_SYMBOL)}")
        if rate < 0 or heartbeat_interval <= 0:
            raise ValueError("rate must be >= 0 and heartbeat_interval > 0")
        self.seed = seed
        self.faults = faults if faults is not None else FaultPlan()
        self.counters = counters if counters is not None else RequestCounters()
        self.host = host
        self.heartbeat_interval = heartbeat_interval
        self._port = port
        self._rate = float(rate)
        self.pairs: tuple[Pair, ...] = (
            tuple(PAIRS_BY_SYMBOL[s] for s in pairs) if pairs else DEFAULT_PAIRS
        )
        rng = random.Random(f"kraken-sandbox:{seed}")
        start_us = (_EPOCH_2024 + rng.randrange(365 * 86_400)) * 1_000_000
        self.clock = SimClock(start_us, round(1e6 / rate) if rate > 0 else 20_000)
        self._round = 0
        self._connection_base = (1 << 63) + rng.getrandbits(62)
        self._connections = 0
        self._feeds = {p.symbol: _Feed(p, seed) for p in self.pairs}
        self._active: list[_Feed] = []
        self._sessions: dict[int, _Session] = {}
        self._instrument_text = instrument_snapshot_text(self.pairs)
        self._maintenance_until: float | None = None
        self._deferred: list[_Sub] = []
        self._restarting = False
        self._background: set[asyncio.Task[None]] = set()
        self._listener: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- public interface -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the server has no port yet: start() it first")
        return f"ws://{self.host}:{self._port}{PATH}"

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        """Book updates per second per subscribed symbol; 0 pauses the markets."""
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._rate = float(rate)  # the pacer notices on its next tick

    def start(self) -> None:
        """Serve on an event loop in a daemon thread; return once listening."""
        if self._thread is not None:
            raise RuntimeError("KrakenSandboxServer.start() called twice")
        self._thread = threading.Thread(target=self._run_thread, name="kraken-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=15):
            raise RuntimeError("the Kraken sandbox did not start listening within 15 s")
        if self._error is not None:
            raise RuntimeError(f"the Kraken sandbox failed to start: {self._error}") from (
                self._error
            )

    def stop(self) -> None:
        """Close every connection and the listener; idempotent, bounded in time."""
        self._stop_requested = True
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(event.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def restart(self, down_seconds: float = 1.0, *, wait: bool = True) -> None:
        """Drop every connection, stop listening, listen again on the same port later.

        With ``wait`` (the default) return once listening again; otherwise at once.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("the Kraken sandbox is not running")
        future = asyncio.run_coroutine_threadsafe(self._restart(down_seconds), loop)
        if wait:
            future.result(timeout=down_seconds + 15)

    async def serve(self) -> None:
        """Serve in the foreground until `stop` (or cancellation)."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._listen()
            tasks = [asyncio.create_task(self._pace()), asyncio.create_task(self._beat())]
            for task in tasks:
                task.add_done_callback(_log_crash)
            self._ready.set()
            if not self._stop_requested:
                await self._stop_event.wait()
        finally:
            for task in tasks:
                task.cancel()
            await self._shutdown()
            if tasks:
                await asyncio.wait(tasks, timeout=2)
            self._loop = None

    def serve_forever(self) -> None:
        """Blocking foreground serve, for ``ingest-platform sandbox``; Ctrl-C stops it."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.serve())

    def __enter__(self) -> KrakenSandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle --------------------------------------------------------------------------

    def _run_thread(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as exc:  # reported by start(); a daemon thread has nobody else
            self._error = exc
        finally:
            self._ready.set()

    async def _listen(self) -> None:
        self._listener = await serve(
            self._handle,
            self.host,
            self._port,
            compression=None,  # the writer frames messages itself, see the module docstring
            ping_interval=None,  # Kraken keeps connections alive with heartbeats
            close_timeout=1,
            process_request=self._check_path,
        )
        self._port = self._listener.sockets[0].getsockname()[1]

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] == PATH:
            return None
        self.counters.count("kraken.bad_path")
        return connection.respond(HTTPStatus.NOT_FOUND, f"Kraken WebSocket v2 is at {PATH}\n")

    async def _go_down(self, close_frame: bool, code: int, reason: str) -> None:
        """Stop accepting, close every connection, wait (bounded) for the handlers to end."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close(close_connections=False)
        await self._drop_all(close_frame, code, reason)
        if listener is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await listener.wait_closed()

    async def _drop_all(self, close_frame: bool, code: int = 1001, reason: str = "") -> None:
        """Close every connection: close frames first if asked, then abort whatever is left."""
        sessions = list(self._sessions.values())
        if close_frame and sessions:
            closing = [asyncio.create_task(s.ws.close(code, reason)) for s in sessions]
            await asyncio.wait(closing, timeout=1.5)
        for session in sessions:
            session.ws.transport.abort()

    async def _shutdown(self) -> None:
        await self._go_down(True, 1001, "sandbox stopping")

    async def _restart(self, down: float, close_frame: bool = False) -> None:
        if self._restarting or self._listener is None:
            return
        self._restarting = True
        try:
            self.counters.count("kraken.restart")
            await self._go_down(close_frame, 1012, "sandbox restart")
            await asyncio.sleep(down)
            if self._stop_event is not None and not self._stop_event.is_set():
                await self._listen()
        finally:
            self._restarting = False

    # -- connections ------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        connection_id = self._connection_base + self._connections
        self._connections += 1
        session = _Session(ws, connection_id, self.counters)
        self._sessions[connection_id] = session
        self.counters.count("kraken.connect")
        writer = asyncio.create_task(session.run_writer())
        try:
            system = "online" if self._maintenance_until is None else "maintenance"
            session.push(status_text(system, connection_id, API_VERSION), "kraken.sent.status")
            self._poll_session(session, asyncio.get_running_loop().time())
            async for raw in ws:
                self._on_request(session, raw)
        except ConnectionClosed:
            pass
        finally:
            del self._sessions[connection_id]
            for sub in session.subs.values():
                if sub.channel in _DATA_CHANNELS:
                    self._feeds[sub.symbol].remove(sub)  # type: ignore[index]
            session.subs.clear()
            self._refresh_active()
            self.counters.count("kraken.disconnect")
            writer.cancel()
            await asyncio.wait([writer], timeout=1)

    def _now_texts(self) -> tuple[str, str]:
        now_us = self.clock.at(self._round)
        return self.clock.text(now_us), self.clock.text(now_us + _ACK_LATENCY_US)

    def _reply(self, session: _Session, body: dict[str, Any], counter: str, **extra: Any) -> None:
        """Queue an ack/pong/error: keys sorted as Kraken's, ``None`` fields left out."""
        time_in, time_out = self._now_texts()
        body = {k: v for k, v in {**body, **extra}.items() if v is not None}
        body["time_in"], body["time_out"] = time_in, time_out
        symbol = body.get("symbol") or (body.get("result") or {}).get("symbol")
        session.push(_dumps(body), counter, symbol)

    def _reply_error(
        self, session: _Session, error: str, method: Any, req_id: Any, symbol: Any = None
    ) -> None:
        body = {"error": error, "method": method, "req_id": req_id, "success": False}
        self._reply(session, body, "kraken.sent.error", symbol=symbol)

    def _on_request(self, session: _Session, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.counters.count("kraken.request.invalid")
            self._reply_error(session, "Malformed request", None, None)
            return
        method, req_id = message.get("method"), message.get("req_id")
        if method == "ping":
            self.counters.count("kraken.ping")
            self._reply(session, {"method": "pong", "req_id": req_id}, "kraken.sent.pong")
        elif method in ("subscribe", "unsubscribe"):
            params = message.get("params")
            if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
                self.counters.count("kraken.request.invalid")
                self._reply_error(session, "Malformed request", method, req_id)
            elif method == "subscribe":
                self._subscribe(session, params, req_id)
                self._poll_session(session, asyncio.get_running_loop().time())
            else:
                self._unsubscribe(session, params, req_id)
        else:
            self.counters.count("kraken.request.invalid")
            self._reply_error(session, "Method not found", method, req_id)

    def _symbols(self, session: _Session, method: str, params: dict, req_id: Any) -> list[str]:
        symbols = params.get("symbol")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) for s in symbols)
        ):
            error = "symbol: a non-empty list of pairs is required"
            self._reply_error(session, error, method, req_id)
            return []
        return symbols

    def _subscribe(self, session: _Session, params: dict, req_id: Any) -> None:
        channel = params["channel"]
        snapshot = params.get("snapshot", True)
        if channel == "instrument":
            self.counters.count("kraken.subscribe.instrument")
            self._subscribe_instrument(session, bool(snapshot), req_id)
            return
        if channel not in _DATA_CHANNELS:
            self.counters.count(f"kraken.subscribe.{channel}")
            self._reply_error(session, f"Channel {channel} not supported", "subscribe", req_id)
            return
        depth, interval = params.get("depth", 10), params.get("interval", 1)
        for symbol in self._symbols(session, "subscribe", params, req_id):
            self.counters.count(f"kraken.subscribe.{channel}", symbol)
            error = None
            if symbol not in self._feeds:
                error = f"Currency pair not supported {symbol}"
            elif channel == "book" and depth not in BOOK_DEPTHS:
                error = "Subscription depth not supported"
            elif channel == "ohlc" and interval not in OHLC_INTERVALS:
                error = "Subscription ohlc interval not supported"
            elif not isinstance(snapshot, bool):
                error = "snapshot: a boolean is required"
            elif (channel, symbol) in session.subs:
                error = "Already subscribed"
            elif fault := self.faults.take(f"{ENDPOINT}.{channel}", symbol, _REJECT):
                self.counters.count("kraken.fault.reject_subscription", symbol)
                error = str(fault.params.get("error", "Subscription rejected: try again later"))
            if error is not None:
                self._reply_error(session, error, "subscribe", req_id, symbol)
                continue
            sub = _Sub(session, channel, symbol, depth, interval)
            session.subs[(channel, symbol)] = sub
            self._feeds[symbol].add(sub)
            result: dict[str, Any] = {"channel": channel, "snapshot": snapshot, "symbol": symbol}
            if channel == "book":
                result["depth"] = depth
            elif channel == "ohlc":
                result["interval"] = interval
            body = {"method": "subscribe", "req_id": req_id, "result": result, "success": True}
            self._reply(session, body, "kraken.sent.subscribe")
            if snapshot:
                self._send_snapshot(sub)
        self._refresh_active()

    def _subscribe_instrument(self, session: _Session, snapshot: bool, req_id: Any) -> None:
        if ("instrument", None) in session.subs:
            self._reply_error(session, "Already subscribed", "subscribe", req_id)
            return
        session.subs[("instrument", None)] = _Sub(session, "instrument", None, 0, 0)
        result = {"channel": "instrument", "snapshot": snapshot}
        body = {"method": "subscribe", "req_id": req_id, "result": result, "success": True}
        self._reply(session, body, "kraken.sent.subscribe")
        if snapshot:
            session.push(self._instrument_text, "kraken.sent.instrument")

    def _send_snapshot(self, sub: _Sub) -> None:
        if self._maintenance_until is not None:
            self._deferred.append(sub)  # no market data while in maintenance
            return
        feed = self._feeds[sub.symbol]  # type: ignore[index]
        text = feed.snapshot_text(sub, self.clock.at(self._round), self.clock)
        sub.session.push(text, f"kraken.sent.{sub.channel}", sub.symbol)

    def _unsubscribe(self, session: _Session, params: dict, req_id: Any) -> None:
        channel = params["channel"]
        if channel == "instrument":
            self.counters.count("kraken.unsubscribe.instrument")
            if session.subs.pop(("instrument", None), None) is None:
                self._reply_error(session, "Subscription Not Found", "unsubscribe", req_id)
                return
            result: dict[str, Any] = {"channel": channel}
            body = {"method": "unsubscribe", "req_id": req_id, "result": result, "success": True}
            self._reply(session, body, "kraken.sent.unsubscribe")
            return
        for symbol in self._symbols(session, "unsubscribe", params, req_id):
            self.counters.count(f"kraken.unsubscribe.{channel}", symbol)
            sub = session.subs.pop((channel, symbol), None)
            if sub is None:
                self._reply_error(session, "Subscription Not Found", "unsubscribe", req_id, symbol)
                continue
            self._feeds[symbol].remove(sub)
            result = {"channel": channel, "symbol": symbol}
            if channel == "book":
                result["depth"] = sub.depth
            elif channel == "ohlc":
                result["interval"] = sub.interval
            body = {"method": "unsubscribe", "req_id": req_id, "result": result, "success": True}
            self._reply(session, body, "kraken.sent.unsubscribe")
        self._refresh_active()

    def _refresh_active(self) -> None:
        self._active = [feed for feed in self._feeds.values() if feed.subscribed]

    # -- pacing -----------------------------------------------------------------------------

    async def _pace(self) -> None:
        """Publish rounds at ``rate`` per second, in batches per loop tick; poll faults."""
        loop = asyncio.get_running_loop()
        epoch, done, rate, next_poll = loop.time(), 0, -1.0, 0.0
        while True:
            now = loop.time()
            if now >= next_poll:
                next_poll = now + FAULT_POLL_SECONDS
                self._poll_faults(now)
            if self._maintenance_until is not None and now >= self._maintenance_until:
                self._end_maintenance()
            paused = self._rate <= 0 or not self._active or self._maintenance_until is not None
            if paused or rate != self._rate:
                rate, epoch, done = self._rate, now, 0
                if paused:
                    await asyncio.sleep(_IDLE_SLEEP)
                    continue
            due = int((now - epoch) * rate) - done
            lag = max(_MAX_ROUNDS_PER_TICK, int(rate * _MAX_LAG_SECONDS))
            if due > lag:  # far behind: forget the backlog rather than burst
                done += due - lag
                due = lag
            batch = min(due, _MAX_ROUNDS_PER_TICK)
            for _ in range(batch):
                self._publish_round()
            done += batch
            if due > batch:
                await asyncio.sleep(0)
            else:
                wait = epoch + (done + 1) / rate - loop.time()
                await asyncio.sleep(min(max(wait, _MIN_SLEEP), _IDLE_SLEEP))

    def _publish_round(self) -> None:
        self._round += 1
        now_us = self.clock.at(self._round)
        timestamp = self.clock.text(now_us)
        for feed in self._active:
            feed.publish(now_us, timestamp, self.clock, self.counters)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            now = loop.time()
            for session in list(self._sessions.values()):
                if session.heartbeats_stopped_until <= now:
                    session.push(HEARTBEAT, "kraken.sent.heartbeat")

    # -- faults -----------------------------------------------------------------------------

    def _poll_faults(self, now: float) -> None:
        take = self.faults.take
        if self._maintenance_until is None and (fault := take(ENDPOINT, None, _MAINTENANCE)):
            self._begin_maintenance(now, float(fault.params.get("seconds", 2.0)))
        if not self._restarting and (fault := take(ENDPOINT, None, _RESTART)):
            self.counters.count("kraken.fault.restart")
            down = float(fault.params.get("down", 1.0))
            close_frame = bool(fault.params.get("close_frame", False))
            task = asyncio.get_running_loop().create_task(self._restart(down, close_frame))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        for session in list(self._sessions.values()):
            self._poll_session(session, now)

    def _poll_session(self, session: _Session, now: float) -> None:
        """Arm the connection-level faults that match this connection (or its symbols)."""
        take = self.faults.take
        kinds = set(_SESSION_FAULTS)
        if session.drop_remaining is not None:
            kinds.discard("drop_after")
        if session.heartbeats_stopped_until > now:
            kinds.discard("stop_heartbeats")
        for symbol in (None, *session.symbols()):
            while kinds and (fault := take(ENDPOINT, symbol, frozenset(kinds))):
                kinds.discard(fault.kind)
                self._arm(session, fault.kind, fault.params, symbol, now)
        for (channel, symbol), sub in session.subs.items():
            if channel != "book" or sub.corrupt_next:
                continue
            if take(f"{ENDPOINT}.book", symbol, _CORRUPT):
                sub.corrupt_next = True  # counted when the corrupted message is rendered

    def _arm(self, session: _Session, kind: str, params: dict, symbol: str | None, now: float):
        self.counters.count(f"kraken.fault.{kind}", symbol)
        if kind == "drop_after":
            session.drop_remaining = max(0, int(params.get("messages", 10)))
            session.drop_close_frame = bool(params.get("close_frame", False))
            session.wake.set()
        elif kind == "stop_heartbeats":
            seconds = params.get("seconds")
            until = math.inf if seconds is None else now + float(seconds)
            session.heartbeats_stopped_until = until
            if params.get("silent"):
                session.stalled_until = until
        elif kind == "malformed_json":
            session.push(str(params.get("text", MALFORMED)), "kraken.sent.malformed", symbol)

    def _begin_maintenance(self, now: float, seconds: float) -> None:
        self.counters.count("kraken.fault.maintenance")
        self._maintenance_until = now + seconds
        self._broadcast_status("maintenance")

    def _end_maintenance(self) -> None:
        self._maintenance_until = None
        self._broadcast_status("online")
        deferred, self._deferred = self._deferred, []
        for sub in deferred:
            if sub.session.subs.get((sub.channel, sub.symbol)) is sub:
                self._send_snapshot(sub)

    def _broadcast_status(self, system: str) -> None:
        for session in self._sessions.values():
            text = status_text(system, session.connection_id, API_VERSION)
            session.push(text, "kraken.sent.status")
