"""Requests out, answers in: request ids, the subscriptions' state machines, and what each
answer did to them.

Every request gets a ``req_id`` and is remembered until the connection ends, because an error
ack may name neither channel nor symbol. Requests are queued as text frames in
`Control.outgoing` for the driver to send; without a connection they go nowhere (a new
connection starts over from ``instrument``). `Control.answer` reads one answer (an ack, an
error or a pong), moves the `subscriptions` state machines and returns what happened as a
value (`Answer`); what that means for the books and their gaps is the protocol's business. A
resync is an unsubscribe whose ack asks for a resubscribe, so the book gets a fresh snapshot.
`Control` also knows since when each book's snapshot is due (`awaiting`, which liveness
times) and which books are resyncing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings
from ingest_platform.streaming.kraken.protocol.subscriptions import Key, Subscriptions

Request = tuple[str, str, tuple[str, ...]]
"""What a request id was for: ``(method, channel, symbols)``."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to our ping ``req_id``."""

    req_id: int


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A subscription was acknowledged; ``live`` when that made it ACTIVE (trade and ohlc: its
    gap closes now; a book goes live only once its snapshot verifies)."""

    channel: str
    symbol: str
    live: bool


@dataclass(frozen=True, slots=True)
class AlreadySubscribed:
    """The exchange says the configured ``symbols`` were subscribed already: its view wins,
    they are ACTIVE (a book resyncs, since nothing says its book is current)."""

    channel: str
    symbols: tuple[str, ...]
    error: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """An error ack. Configured ``symbols`` of a known ``channel`` are REJECTED with a retry
    scheduled; ``symbols`` may name others, and ``channel`` may be unknown."""

    channel: str | None
    symbols: tuple[Any, ...]
    error: str


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """An unsubscribe was acknowledged (``success`` False: refused); ``resubscribe`` when it
    ended a book's resync, which now needs its subscribe."""

    symbol: Any
    resubscribe: bool
    success: bool


@dataclass(frozen=True, slots=True)
class ServerError:
    """Any other error answer; ``detail`` names the method and the error."""

    detail: str


@dataclass(frozen=True, slots=True)
class Unrecognized:
    """A message with a ``method`` that is none of the above."""


Answer = (
    Pong | Subscribed | AlreadySubscribed | Rejected | Unsubscribed | ServerError | Unrecognized
)


def _text(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Control:
    """Request ids and frames out, acks in, for one protocol across its connections; and since
    when each configured book's snapshot is due."""

    def __init__(self, settings: ProtocolSettings, rng: random.Random) -> None:
        self.depth = settings.depth
        self.ohlc_interval = settings.ohlc_interval
        self.pairs = frozenset(settings.pairs)
        self.subscriptions = Subscriptions(settings.backoff_base, settings.backoff_cap, rng)
        self.connected = False
        self.outgoing: list[str] = []
        """Text frames to send, oldest first (one list for good: the driver may hold it)."""
        self._requests: dict[int, Request] = {}
        self._next_req_id = 1
        self._since: dict[str, int | None] = dict.fromkeys(settings.pairs)
        """Per configured book: monotonic ns since when its snapshot is due (None: none is)."""
        self._resyncing: set[str] = set()

    def connection_made(self) -> None:
        """Forget the last connection's requests and subscribe to ``instrument`` first."""
        self.connected = True
        self._requests.clear()
        self.outgoing.clear()
        self._send(
            {"method": "subscribe", "params": {"channel": "instrument", "snapshot": True}},
            ("subscribe", "instrument", ()),
        )

    def connection_lost(self) -> None:
        """Nothing more goes out, and every subscription is gone with the connection."""
        self.connected = False
        self.outgoing.clear()
        self.subscriptions.clear()
        for symbol in self._since:
            self._since[symbol] = None
        self._resyncing.clear()

    def awaiting(self) -> Iterable[tuple[str, int | None]]:
        """``(symbol, monotonic ns since its snapshot is due or None)`` per configured book."""
        return self._since.items()

    def snapshot_verified(self, symbol: str) -> bool:
        """A book's snapshot verified: nothing is due any more. False when the snapshot belongs
        to a subscription being replaced (its resubscribe's snapshot is still to come)."""
        self._resyncing.discard(symbol)
        self._since[symbol] = None
        return self.subscriptions.snapshot_verified(symbol)

    def maintenance_over(self, now_ns: int) -> None:
        """Snapshots held back by exchange maintenance are due afresh from ``now_ns``."""
        for symbol, since in self._since.items():
            if since is not None:
                self._since[symbol] = now_ns

    # -- requests ----------------------------------------------------------------------------

    def _send(self, message: dict[str, Any], request: Request) -> int:
        req_id = self._next_req_id
        self._next_req_id += 1
        message["req_id"] = req_id
        self._requests[req_id] = request
        if self.connected:
            self.outgoing.append(_text(message))
        return req_id

    def ping(self) -> int:
        """Send an application ping; returns its ``req_id`` (the pong answers it)."""
        return self._send({"method": "ping"}, ("ping", "", ()))

    def subscribe(self, channel: str, symbols: list[str], now_ns: int) -> None:
        """Subscribe ``symbols`` to ``channel`` in one request (none without symbols or a
        connection); a book's snapshot is due from ``now_ns``."""
        if not symbols or not self.connected:
            return
        params: dict[str, Any] = {"channel": channel, "symbol": symbols, "snapshot": True}
        if channel == "book":
            params["depth"] = self.depth
        elif channel == "ohlc":
            params["interval"] = self.ohlc_interval
        for symbol in symbols:
            self.subscriptions.requested(channel, symbol)
            if channel == "book":
                self._since[symbol] = now_ns
        self._send(
            {"method": "subscribe", "params": params}, ("subscribe", channel, tuple(symbols))
        )

    def resync(self, symbol: str, now_ns: int) -> bool:
        """Start a book's resync with an unsubscribe (its ack resubscribes); False when none went
        out (no connection, a snapshot already on its way, a retry scheduled, or this resync
        already unsubscribing)."""
        resyncing = symbol in self._resyncing
        if not self.connected or not self.subscriptions.start_unsubscribe(symbol, resyncing):
            return False
        self._resyncing.add(symbol)
        self._since[symbol] = now_ns
        params = {"channel": "book", "symbol": [symbol], "depth": self.depth}
        self._send({"method": "unsubscribe", "params": params}, ("unsubscribe", "book", (symbol,)))
        return True

    def due(self, now_ns: int) -> list[Key]:
        """Rejected subscriptions whose retry time has come."""
        return self.subscriptions.due(now_ns)

    # -- answers -----------------------------------------------------------------------------

    def answer(self, msg: dict[str, Any], now_ns: int) -> Answer | None:
        """What a message with a ``method`` says; None when it needs nothing (an ack of the
        ``instrument`` subscription, a pong without a request id)."""
        method = msg.get("method")
        req_id = msg.get("req_id")
        if type(req_id) is not int:
            req_id = None
        if method == "pong":
            if req_id is None:
                return None
            self._requests.pop(req_id, None)
            return Pong(req_id)
        request = self._requests.get(req_id) if req_id is not None else None
        success = msg.get("success")
        result = msg.get("result")
        result = result if isinstance(result, dict) else {}
        channel = result.get("channel") or (request[1] if request else None)
        symbol = result.get("symbol") or msg.get("symbol")
        if method == "subscribe":
            if not success:
                return self._rejected(channel, symbol, request, str(msg.get("error")), now_ns)
            if channel is None or symbol is None:
                return None  # the instrument ack
            return Subscribed(channel, symbol, self.subscriptions.acked(channel, symbol))
        if method == "unsubscribe":
            resubscribe = (
                channel == "book"
                and isinstance(symbol, str)
                and symbol in self.pairs
                and self.subscriptions.unsubscribed(symbol)
            )
            return Unsubscribed(symbol, resubscribe, bool(success))
        if success is False or "error" in msg:
            return ServerError(f"{method}: {msg.get('error')}")
        return Unrecognized()

    def _rejected(
        self,
        channel: str | None,
        symbol: Any,
        request: Request | None,
        error: str,
        now_ns: int,
    ) -> AlreadySubscribed | Rejected:
        symbols = (symbol,) if symbol else request[2] if request else ()
        if "already subscribed" in error.lower() and channel is not None:
            # Our state and the server's disagree: the server's view wins.
            configured = tuple(s for s in symbols if s in self.pairs)
            for sym in configured:
                self.subscriptions.already_subscribed(channel, sym)
            return AlreadySubscribed(channel, configured, error)
        if channel is not None:
            for sym in symbols:
                if sym in self.pairs:
                    self.subscriptions.rejected(channel, sym, now_ns)
                    if channel == "book":
                        self._since[sym] = None  # no snapshot is coming until the retry
        return Rejected(channel, symbols, error)
