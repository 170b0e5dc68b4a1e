"""The session's requests and the exchange's answers: subscribe, resync, ping, their acks,
and the instrument snapshot that starts the data subscriptions.

Every request gets a ``req_id`` and is remembered until answered, because an error ack may
name neither channel nor symbol. Requests are queued as text frames in `Control.outgoing` for
the connection driver to send; without a connection they go nowhere (a new connection starts
over from ``instrument``). Acks move the `subscriptions` state machine; a resync is an
unsubscribe whose ack triggers a resubscribe, so the book gets a fresh snapshot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ingest_platform.streaming.kraken.config import StreamConfig
from ingest_platform.streaming.kraken.protocol.books import BookState
from ingest_platform.streaming.kraken.protocol.gaps import GapLedger
from ingest_platform.streaming.kraken.protocol.liveness import Liveness
from ingest_platform.streaming.kraken.protocol.stats import StreamStats
from ingest_platform.streaming.kraken.protocol.subscriptions import Subscriptions

logger = logging.getLogger(__name__)

Request = tuple[str, str, tuple[str, ...]]
"""What a request id was for: ``(method, channel, symbols)``."""


class Trouble(Protocol):
    """How control reports trouble to the session (which decides about halts)."""

    def critical(self, kind: str, detail: str) -> None: ...

    def close_gap(
        self, symbol: str, channel: str, end_us: int | None, resume_seq: int | None
    ) -> None: ...

    def halt_now(self, reason: str, detail: str) -> None: ...

    def unknown(self, msg: Any) -> None: ...


class Control:
    """Requests out, answers in, for one session across its connections."""

    def __init__(
        self,
        config: StreamConfig,
        books: dict[str, BookState],
        subscriptions: Subscriptions,
        gaps: GapLedger,
        liveness: Liveness,
        stats: StreamStats,
        trouble: Trouble,
        mono_ns: Callable[[], int],
        now_us: Callable[[], int],
    ) -> None:
        self.config = config
        self.books = books
        self.subscriptions = subscriptions
        self.gaps = gaps
        self.liveness = liveness
        self.stats = stats
        self.trouble = trouble
        self._mono_ns = mono_ns
        self._now_us = now_us
        self.connected = False
        self.outgoing: list[str] = []
        self._requests: dict[int, Request] = {}
        self._next_req_id = 1

    def connection_made(self) -> None:
        self.connected = True
        self._requests.clear()
        self.outgoing.clear()
        self.send(
            {"method": "subscribe", "params": {"channel": "instrument", "snapshot": True}},
            ("subscribe", "instrument", ()),
        )

    def connection_lost(self) -> None:
        self.connected = False
        self.outgoing.clear()
        self.subscriptions.clear()

    # -- requests ----------------------------------------------------------------------------

    def send(self, message: dict[str, Any], request: Request) -> int:
        req_id = self._next_req_id
        self._next_req_id += 1
        message["req_id"] = req_id
        self._requests[req_id] = request
        if self.connected:
            self.outgoing.append(json.dumps(message, separators=(",", ":")))
        return req_id

    def ping(self, now_ns: int) -> None:
        self.liveness.pings[self.send({"method": "ping"}, ("ping", "", ()))] = now_ns

    def subscribe(self, channel: str, symbols: list[str]) -> None:
        if not symbols or not self.connected:
            return
        params: dict[str, Any] = {"channel": channel, "symbol": symbols, "snapshot": True}
        if channel == "book":
            params["depth"] = self.config.depth
        elif channel == "ohlc":
            params["interval"] = self.config.ohlc_interval
        now = self._mono_ns()
        for symbol in symbols:
            self.subscriptions.requested(channel, symbol)
            if channel == "book":
                self.books[symbol].awaiting_since = now
        self.send({"method": "subscribe", "params": params}, ("subscribe", channel, tuple(symbols)))

    def resync(self, symbol: str, reason: str, detail: str, start_us: int) -> None:
        """Unsubscribe and resubscribe one book for a fresh snapshot; drop its updates meanwhile.

        Opens the book's gap (or adds to the open one) so the log says why it restarted.
        """
        state = self.books[symbol]
        self.gaps.open(symbol, "book", reason, start_us, state.last_seq, detail)
        state.unsync()
        state.stats.resyncs += 1
        self.stats.resyncs += 1
        if not self.connected or not self.subscriptions.start_unsubscribe(symbol, state.resyncing):
            return  # no connection, a snapshot already on its way, or a retry scheduled
        state.resyncing = True
        state.awaiting_since = self._mono_ns()
        params = {"channel": "book", "symbol": [symbol], "depth": self.config.depth}
        self.send({"method": "unsubscribe", "params": params}, ("unsubscribe", "book", (symbol,)))
        logger.info("Kraken %s: resync (%s)", symbol, reason)

    def retry_due(self, now_ns: int) -> None:
        for channel, symbol in self.subscriptions.due(now_ns):
            self.subscribe(channel, [symbol])

    # -- answers -----------------------------------------------------------------------------

    def on_instruments(self, msg: dict[str, Any], recv_us: int) -> None:
        """The ``instrument`` channel: each pair's precisions, then the data subscriptions.

        A book's checksum needs its pair's ``price_precision`` and ``qty_precision``, so the
        data channels are subscribed only once the first instrument snapshot is in, and a
        precision that changes resyncs that book. A configured pair the snapshot does not
        list halts the stream: no retry can fix configuration.
        """
        trouble = self.trouble
        data = msg.get("data")
        pairs = data.get("pairs") if isinstance(data, dict) else None
        if not isinstance(pairs, list):
            trouble.critical("malformed_instrument", "instrument message without pairs")
            return
        listed: set[str] = set()
        for pair in pairs:
            symbol = pair.get("symbol") if isinstance(pair, dict) else None
            state = self.books.get(symbol) if isinstance(symbol, str) else None
            if state is None:
                continue
            listed.add(state.symbol)
            pp, qp = pair.get("price_precision"), pair.get("qty_precision")
            if type(pp) is not int or type(qp) is not int:
                trouble.critical("malformed_instrument", f"{symbol}: precisions {pp!r}/{qp!r}")
                continue
            changed = state.precision is not None and state.precision != (pp, qp)
            state.precision = (pp, qp)
            if changed and state.synced:
                self.resync(state.symbol, "precision_changed", f"now {pp}/{qp}", recv_us)
        if msg.get("type") != "snapshot":
            return
        missing = [s for s in self.books if s not in listed]
        if missing:
            trouble.halt_now("unknown_pairs", f"the exchange does not list {missing}; fix pairs")
            return
        if not self.liveness.instruments_ready:
            self.liveness.instruments_ready = True
            for channel in self.config.channels:
                self.subscribe(channel, list(self.books))

    def on_answer(self, msg: dict[str, Any], recv_us: int) -> None:
        """A message with a ``method``: an ack, an error, or a pong."""
        method = msg.get("method")
        req_id = msg.get("req_id")
        if type(req_id) is not int:
            req_id = None
        if method == "pong":
            if req_id is not None:
                self._requests.pop(req_id, None)
                rtt = self.liveness.pong(req_id, self._mono_ns())
                if rtt is not None:
                    self.stats.last_rtt_ms = rtt
            return
        request = self._requests.get(req_id) if req_id is not None else None
        success = msg.get("success")
        result = msg.get("result")
        result = result if isinstance(result, dict) else {}
        channel = result.get("channel") or (request[1] if request else None)
        symbol = result.get("symbol") or msg.get("symbol")
        if method == "subscribe":
            if success:
                self._subscribed(channel, symbol, recv_us)
            else:
                self._rejected(channel, symbol, request, str(msg.get("error")))
        elif method == "unsubscribe":
            if (
                channel == "book"
                and isinstance(symbol, str)
                and symbol in self.books
                and self.subscriptions.unsubscribed(symbol)
            ):
                self.subscribe("book", [symbol])
            if not success:
                self.stats.errors["unsubscribe_failed"] += 1
        elif success is False or "error" in msg:
            self.trouble.critical("server_error", f"{method}: {msg.get('error')}")
        else:
            self.trouble.unknown(msg)

    def _subscribed(self, channel: str | None, symbol: str | None, recv_us: int) -> None:
        if channel is None or symbol is None:
            return  # the instrument ack
        self.stats.subscriptions += 1
        if self.subscriptions.acked(channel, symbol):
            self.trouble.close_gap(symbol, channel, recv_us, None)

    def _rejected(
        self, channel: str | None, symbol: str | None, request: Request | None, error: str
    ) -> None:
        symbols = [symbol] if symbol else list(request[2]) if request else []
        now_us = self._now_us()
        if "already subscribed" in error.lower() and channel is not None:
            # Our state and the server's disagree: treat it as subscribed, and resync a book.
            for sym in symbols:
                if sym in self.books:
                    self.subscriptions.already_subscribed(channel, sym)
                    if channel == "book":
                        self.resync(sym, "already_subscribed", error, now_us)
                    else:
                        self.trouble.close_gap(sym, channel, now_us, None)
            return
        self.stats.rejected_subscriptions += 1
        logger.warning("Kraken rejected subscription %s %s: %s", channel, symbols, error)
        self.trouble.critical("subscription_rejected", f"{channel} {symbols}: {error}")
        if channel is None:
            return
        now_ns = self._mono_ns()
        for sym in symbols:
            if sym not in self.books:
                continue
            self.subscriptions.rejected(channel, sym, now_ns)
            state = self.books[sym]
            last = state.last_seq if channel == "book" else None
            self.gaps.open(sym, channel, "subscription_rejected", now_us, last, error)
            if channel == "book":
                state.unsync()
                state.awaiting_since = None  # no snapshot is coming until the retry
