"""The configured pairs' books, their gaps, and the records the protocol writes: `Books`.

Items are routed by ``channel == "book"`` and the item's ``symbol`` only: nothing else ever
reaches a book. Every item of a subscribed pair is written to the sink exactly as received,
with whether the live book matched its checksum; updates that arrive while a book is out of
sync are dropped (and counted), because the gap row already covers them. `Books.apply` hands
back every item that needs a decision (a verified snapshot, a rejected item) as a `Verdict`;
what it means for the connection (resubscribe, close a gap, halt) is the protocol's business.
`Books` never calls the protocol: it only answers. It also writes the trade and OHLC rows
(counted per pair, never near a book) and the gap rows, so it is the one writer to the sink.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.protocol.gaps import GapLedger
from ingest_platform.streaming.kraken.protocol.rows import RecordSink, level_pairs, top_levels
from ingest_platform.streaming.kraken.protocol.stats import StreamStats, SymbolStats

_SYMBOL_IN_TEXT = re.compile(r'"symbol"\s*:\s*"([^"]+)"')
_OTHER_CHANNEL = re.compile(r'"channel":"(trade|ohlc|heartbeat|status|instrument)"')
_BOOK_ERRORS = (ValueError, TypeError, KeyError, AttributeError)
"""What a malformed book item raises inside `KrakenBook`: a verdict, never a crash."""


class BookState:
    """One configured pair's book and its sync state."""

    __slots__ = (
        "book",
        "last_seq",
        "precision",
        "stats",
        "symbol",
        "synced",
    )

    def __init__(self, symbol: str, stats: SymbolStats) -> None:
        self.symbol = symbol
        self.book: KrakenBook | None = None
        self.precision: tuple[int, int] | None = None
        self.synced = False
        self.last_seq: int | None = None  # the sink's row of its last verified message
        self.stats = stats

    def unsync(self) -> None:
        self.synced = False
        self.stats.synced = False


@dataclass(frozen=True, slots=True)
class InstrumentNews:
    """What an ``instrument`` message said about the configured pairs (their precisions are
    set): the pairs it ``listed``; ``changed`` ``(symbol, detail)`` for books in sync whose
    precision changed (they must resync); ``malformed`` details of unusable entries."""

    listed: frozenset[str]
    changed: tuple[tuple[str, str], ...]
    malformed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A book item that needs a decision: a verified snapshot (``ok``), or an item that did not
    verify (``error`` None: a checksum mismatch; else why it could not be applied at all).
    ``index`` is the item's place in its message (`Books.apply` resumes after it)."""

    state: BookState
    kind: str
    seq: int
    ok: bool
    error: Exception | None
    index: int


class Books:
    """The configured pairs' `BookState`s and open gaps, and the sink their rows go to."""

    def __init__(
        self, pairs: Iterable[str], depth: int, sink: RecordSink | None, stats: StreamStats
    ) -> None:
        self.depth = depth
        self.sink = sink
        self.stats = stats
        self.gaps = GapLedger()
        self.states: dict[str, BookState] = {}
        for symbol in pairs:
            stats.symbols[symbol] = SymbolStats()
            self.states[symbol] = BookState(symbol, stats.symbols[symbol])
        self._seq = 0  # book row numbers when there is no sink

    @property
    def all_synced(self) -> bool:
        return all(state.synced for state in self.states.values())

    def apply(self, kind: str, data: list[Any], recv_us: int, start: int = 0) -> Verdict | None:
        """Apply and log the items of a ``book`` message from ``data[start]`` on (hot path).

        Returns at the first item that needs a decision, already applied and logged: the
        caller decides, then calls again from ``index + 1`` unless the stream halted. None when
        the rest of the message needed nothing (verified updates, dropped or unknown items).
        """
        states = self.states
        stats = self.stats
        sink = self.sink
        depth = self.depth
        for index, item in enumerate(data[start:] if start else data, start):
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
            if not ok:
                state.unsync()
                return Verdict(state, kind, seq, False, error, index)
            state.last_seq = seq
            if kind == "snapshot":
                state.synced = True
                state.stats.synced = True
                state.stats.snapshots += 1
                state.stats.verified_since_snapshot = 0
                return Verdict(state, kind, seq, True, None, index)
            state.stats.updates_verified += 1
            state.stats.verified_since_snapshot += 1
        return None

    def rows(self, msg: dict[str, Any], recv_us: int, channel: str) -> None:
        """Trade or OHLC items: counted per symbol and logged; never near a book."""
        kind = msg.get("type", "update")
        sink = self.sink
        write = None if sink is None else sink.trade if channel == "trade" else sink.ohlc
        stats = self.stats
        symbols = stats.symbols
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

    def read_instruments(self, data: Any) -> InstrumentNews | None:
        """Set each configured pair's precisions from an ``instrument`` message's ``data``
        (a book's checksum needs them); None when it lists no pairs at all."""
        pairs = data.get("pairs") if isinstance(data, dict) else None
        if not isinstance(pairs, list):
            return None
        listed: set[str] = set()
        changed: list[tuple[str, str]] = []
        malformed: list[str] = []
        for pair in pairs:
            symbol = pair.get("symbol") if isinstance(pair, dict) else None
            state = self.states.get(symbol) if isinstance(symbol, str) else None
            if state is None:
                continue
            listed.add(state.symbol)
            pp, qp = pair.get("price_precision"), pair.get("qty_precision")
            if type(pp) is not int or type(qp) is not int:
                malformed.append(f"{symbol}: precisions {pp!r}/{qp!r}")
                continue
            if state.precision is not None and state.precision != (pp, qp) and state.synced:
                changed.append((state.symbol, f"now {pp}/{qp}"))
            state.precision = (pp, qp)
        return InstrumentNews(frozenset(listed), tuple(changed), tuple(malformed))

    def hit_by_malformed(self, text: str) -> list[str]:
        """The books in sync that a frame which is not JSON may have held an update for (they
        must resync): none when it visibly belongs to another channel, the pair it names, else
        every book."""
        compact = text.replace(" ", "")
        if '"channel":"book"' not in compact and _OTHER_CHANNEL.search(compact):
            return []  # visibly not a book message: no book can have lost an update
        match = _SYMBOL_IN_TEXT.search(text)
        states = self.states
        named = match.group(1) if match else None
        affected = [named] if named in states else list(states)
        return [symbol for symbol in affected if states[symbol].synced]

    # -- gaps --------------------------------------------------------------------------------

    def pause(self, reason: str, start_us: int, detail: str = "") -> None:
        """Every book goes out of sync; each one that was in sync gets a gap from ``start_us``
        (a lost connection, exchange maintenance)."""
        for state in self.states.values():
            if state.synced:
                self.open_gap(state.symbol, "book", reason, start_us, detail)
            state.unsync()

    def subscription_rejected(
        self, channel: str, symbols: Iterable[Any], now_us: int, error: str
    ) -> None:
        """Each configured pair of a refused subscription has a gap until its retry succeeds;
        a refused book is out of sync."""
        for symbol in symbols:
            state = self.states.get(symbol)
            if state is None:
                continue
            self.open_gap(symbol, channel, "subscription_rejected", now_us, error)
            if channel == "book":
                state.unsync()

    def open_gap(
        self, symbol: str, channel: str, reason: str, start_us: int, detail: str = ""
    ) -> None:
        """Open a gap from ``start_us`` (a book's names its last verified row), or note one
        more reason on the gap already open."""
        last = self.states[symbol].last_seq if channel == "book" else None
        self.gaps.open(symbol, channel, reason, start_us, last, detail)

    def close_gap(
        self, symbol: str, channel: str, end_us: int | None, resume_seq: int | None, at_us: int
    ) -> None:
        """Close the gap, if one is open: count it and write its row at ``at_us`` (``end_us``
        None: open-ended, at shutdown). Raises `SinkError` when the row cannot be kept."""
        gap = self.gaps.close(symbol, channel)
        if gap is None:
            return
        self.stats.gaps += 1
        state = self.states.get(symbol)
        if state is not None:
            state.stats.gaps += 1
        if end_us is not None:
            self.stats.gap_seconds += max(0, end_us - gap.start_us) / 1e6
        sink = self.sink
        if sink is not None and not sink.closed:
            sink.gap(
                at_us,
                symbol,
                channel,
                gap.reason,
                gap.start_us,
                end_us,
                gap.last_book_seq,
                resume_seq,
                gap.detail(),
            )

    # -- periodic ----------------------------------------------------------------------------

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
