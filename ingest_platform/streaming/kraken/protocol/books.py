"""Book routing: each ``book`` item to its pair's `KrakenBook`, logged, with its verdict.

Items are routed by ``channel == "book"`` and the item's ``symbol`` only: nothing else ever
reaches a book. Every item of a subscribed pair is written to the log exactly as received,
with whether the live book matched its checksum; updates that arrive while a book is out of
sync are dropped (and counted), because the gap row already covers them. What a verdict means
for the connection (resubscribe, close a gap, halt) is the session's business, told through
`BookEvents`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.protocol.halts import Halt
from ingest_platform.streaming.kraken.protocol.rows import RecordSink, level_pairs, top_levels
from ingest_platform.streaming.kraken.protocol.stats import StreamStats, SymbolStats

_BOOK_ERRORS = (ValueError, TypeError, KeyError, AttributeError)


class BookState:
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
        self.awaiting_since: int | None = None  # monotonic ns when a snapshot became due
        self.last_seq: int | None = None
        self.stats = stats

    def unsync(self) -> None:
        self.synced = False
        self.stats.synced = False


class BookEvents(Protocol):
    """What the router tells the session (and asks it: has the stream halted?)."""

    halt: Halt | None

    def snapshot_verified(self, state: BookState, recv_us: int, seq: int) -> None: ...

    def book_rejected(
        self, state: BookState, kind: str, recv_us: int, seq: int, error: Exception | None
    ) -> None: ...

    def critical(self, kind: str, detail: str) -> None: ...


class BookRouter:
    """The configured pairs' books; `apply` takes one ``book`` message."""

    def __init__(
        self,
        pairs: Iterable[str],
        depth: int,
        sink: RecordSink | None,
        stats: StreamStats,
        events: BookEvents,
    ) -> None:
        self.depth = depth
        self.sink = sink
        self.stats = stats
        self.events = events
        self.states: dict[str, BookState] = {}
        for symbol in pairs:
            stats.symbols[symbol] = SymbolStats()
            self.states[symbol] = BookState(symbol, stats.symbols[symbol])
        self._seq = 0  # book row numbers when there is no sink

    def apply(self, msg: dict[str, Any], recv_us: int) -> None:
        """Apply, log and judge every item of a ``book`` message (hot path)."""
        kind = msg.get("type")
        data = msg.get("data")
        events = self.events
        if kind not in ("snapshot", "update") or type(data) is not list:
            events.critical("malformed_book", f"book message type={kind!r}")
            return
        states = self.states
        stats = self.stats
        sink = self.sink
        depth = self.depth
        for item in data:
            symbol = item.get("symbol") if type(item) is dict else None
            state = states.get(symbol) if type(symbol) is str else None
            if state is None:
                stats.errors["book_unknown_symbol"] += 1
                continue
            stats.book_messages += 1
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
                        book = state.book = KrakenBook(state.symbol, depth, pp, qp)
                    ok = book.apply_snapshot(item)
                elif book is None:
                    raise ValueError(f"update for {symbol} before any snapshot")
                else:
                    ok = book.apply_update(item)
            except _BOOK_ERRORS as exc:
                ok, error = False, exc
            if sink is not None:
                checksum = item.get("checksum")
                seq = sink.book(
                    recv_us,
                    item.get("timestamp"),
                    state.symbol,
                    kind,
                    level_pairs(item.get("bids")),
                    level_pairs(item.get("asks")),
                    checksum if type(checksum) is int else -1,
                    ok,
                    depth,
                    book.price_precision if book else -1,
                    book.qty_precision if book else -1,
                )
            else:
                seq = self._seq
                self._seq += 1
            if ok:
                if kind == "snapshot":
                    events.snapshot_verified(state, recv_us, seq)
                else:
                    state.stats.updates_verified += 1
                    state.stats.verified_since_snapshot += 1
                state.last_seq = seq
            else:
                events.book_rejected(state, kind, recv_us, seq, error)
            if events.halt is not None:
                return

    def log_tops(self, recv_us: int, levels: int) -> None:
        """A ``book_top`` row for every verified book (a second, independent replay check)."""
        sink = self.sink
        if sink is None:
            return
        for state in self.states.values():
            if not state.synced or state.book is None or state.last_seq is None:
                continue
            bids, asks = top_levels(state.book, levels)
            sink.book_top(recv_us, state.symbol, state.last_seq, state.book.checksum(), bids, asks)
