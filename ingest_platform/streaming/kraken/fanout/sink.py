"""`FanoutSink`: the `RecordSink` the protocol writes to when the fan-out is on.

Every row still goes to the stream log first (the log is the record; the bus is a live copy).
Then each book item whose checksum verified, each trade and each bar is handed to the
publisher (`FanoutProcess`, or `FanoutPublisher` on the stream's loop); a book item that did
not verify ends its pair's epoch. The protocol does not change: it writes to one sink, and this
sink is the log plus the publisher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.fanout import message
from ingest_platform.streaming.kraken.fanout.process import StreamFanout
from ingest_platform.streaming.kraken.protocol.rows import RecordSink


class FanoutSink:
    """The log (``log``, may be None) plus the publisher; see the module docstring.

    ``books`` gives a pair's book when it is verified (None otherwise): the publisher makes
    its periodic and epoch-starting snapshots from it.
    """

    def __init__(
        self,
        log: RecordSink | None,
        publisher: StreamFanout,
        books: Callable[[str], KrakenBook | None],
    ) -> None:
        self.log = log
        self.publisher = publisher
        publisher.books = lambda pair: (
            message.BookSnapshot.of(book) if (book := books(pair)) is not None else None
        )
        publisher.log = log
        self._seq = 0

    @property
    def closed(self) -> bool:
        return self.log.closed if self.log is not None else False

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
    ) -> int:
        log = self.log
        if log is not None:
            seq = log.book(
                recv_us,
                exch_ts,
                symbol,
                kind,
                bids,
                asks,
                checksum,
                checksum_ok,
                depth,
                price_precision,
                qty_precision,
            )
        else:
            seq = self._seq
            self._seq += 1
        if checksum_ok:
            self.publisher.book(
                symbol,
                kind,
                bids,
                asks,
                checksum,
                depth,
                price_precision,
                qty_precision,
                exch_ts,
                recv_us,
            )
        else:
            self.publisher.book_rejected(symbol)
        return seq

    def book_top(
        self,
        recv_us: int,
        symbol: str,
        book_seq: int,
        checksum: int,
        bids: list[dict[str, str]],
        asks: list[dict[str, str]],
    ) -> int:
        if self.log is None:
            return -1
        return self.log.book_top(recv_us, symbol, book_seq, checksum, bids, asks)

    def trade(self, recv_us: int, kind: str, item: dict[str, Any]) -> int:
        seq = self.log.trade(recv_us, kind, item) if self.log is not None else -1
        self._feed("trade", kind, item, recv_us)
        return seq

    def ohlc(self, recv_us: int, kind: str, item: dict[str, Any]) -> int:
        seq = self.log.ohlc(recv_us, kind, item) if self.log is not None else -1
        self._feed("ohlc", kind, item, recv_us)
        return seq

    def _feed(self, channel: str, kind: str, item: dict[str, Any], recv_us: int) -> None:
        symbol = item.get("symbol")
        if isinstance(symbol, str) and symbol in self.publisher.pairs:
            self.publisher.feed(channel, symbol, kind, item, recv_us)

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
    ) -> int:
        if self.log is None:
            return -1
        return self.log.gap(
            recv_us,
            symbol,
            channel,
            reason,
            start_us,
            end_us,
            last_book_seq,
            resume_book_seq,
            detail,
        )
