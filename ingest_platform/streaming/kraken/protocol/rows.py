"""What the protocol writes, and how: the `RecordSink` protocol, its `SinkError`, and book
levels as rows.

The protocol writes every record (book items with their checksum verdict, trades, bars, gaps,
periodic tops) into one `RecordSink`, so it does no I/O itself and tests can hand it any sink.
In production that is the `StreamLog` (``log/``), which buffers rows and writes Parquet
segments on its own thread. Another consumer of the verified records (a bus publisher) is one
more class implementing `RecordSink`, put beside the log by the driver; the protocol does not
change. `top_levels` is shared by the protocol (writing ``book_top`` rows) and replay (checking
them).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from ingest_platform.streaming.kraken.book import KrakenBook


class SinkError(RuntimeError):
    """A sink could not keep what it was given: the stream can no longer promise a complete
    record. The protocol halts on it (``log_write_failed``); sinks raise it or a subclass."""


class RecordSink(Protocol):
    """Where the protocol puts what it saw; each method returns the row's seq.

    A method that cannot keep its row raises `SinkError`.
    """

    @property
    def closed(self) -> bool: ...

    def book(
        self,
        recv_us: int,
        exch_ts: str | None,
        symbol: str,
        kind: str,
        bids: Sequence[Any],
        asks: Sequence[Any],
        checksum: int,
        checksum_ok: bool,
        depth: int,
        price_precision: int,
        qty_precision: int,
    ) -> int: ...

    def book_top(
        self,
        recv_us: int,
        symbol: str,
        book_seq: int,
        checksum: int,
        bids: list[dict[str, str]],
        asks: list[dict[str, str]],
    ) -> int: ...

    def trade(self, recv_us: int, kind: str, item: dict[str, Any]) -> int: ...

    def ohlc(self, recv_us: int, kind: str, item: dict[str, Any]) -> int: ...

    def gap(
        self,
        recv_us: int,
        symbol: str,
        channel: str,
        reason: str,
        start_us: int,
        end_us: int | None,
        last_book_seq: int | None,
        resume_book_seq: int | None,
        detail: str = "",
    ) -> int: ...


def level_pairs(levels: Any) -> tuple[tuple[Any, Any], ...]:
    """A message's levels as a tuple of ``(price, qty)`` (the JSON number text).

    Tuples of strings, unlike lists of dicts, are untracked by Python's cyclic GC after one
    young collection, so a full log buffer adds nothing to the full collections that would
    otherwise pause the event loop for tens of milliseconds.
    """
    if not levels:
        return ()
    try:
        return tuple([(level["price"], level["qty"]) for level in levels])
    except (TypeError, KeyError):  # malformed levels: keep what there is, for the record
        return tuple(
            (level.get("price"), level.get("qty")) if isinstance(level, dict) else (level, None)
            for level in levels
        )


def top_levels(book: KrakenBook, n: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The best ``n`` bids and asks as ``{"price", "qty"}`` fixed-point text (never ``1E-8``).

    The same function writes ``book_top`` rows and checks them in replay.
    """
    top = book.top(n)
    return (
        [{"price": f"{Decimal(p):f}", "qty": f"{Decimal(q):f}"} for p, q in top["bids"]],
        [{"price": f"{Decimal(p):f}", "qty": f"{Decimal(q):f}"} for p, q in top["asks"]],
    )
