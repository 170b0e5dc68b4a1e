"""The gap ledger: every interval in which a book (or a trade/ohlc feed) was not known complete.

A gap opens on a disconnect, a resync, a malformed frame, exchange maintenance or a rejected
subscription, and closes with the next verified snapshot (or ack); closing writes one ``gap``
row to the log with reason, start, end and the book seqs around it. Replay and the minute bars
rely on these rows: a book restarted without a recorded gap is an integrity error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ingest_platform.streaming.kraken.protocol.halts import MAX_DETAIL
from ingest_platform.streaming.kraken.protocol.rows import RecordSink
from ingest_platform.streaming.kraken.protocol.stats import StreamStats


@dataclass
class OpenGap:
    reason: str
    start_us: int
    last_book_seq: int | None
    details: list[str] = field(default_factory=list)


class GapLedger:
    """Open gaps by (symbol, channel); closing one writes it to the sink and counts it."""

    def __init__(
        self, sink: RecordSink | None, stats: StreamStats, now_us: Callable[[], int]
    ) -> None:
        self.sink = sink
        self.stats = stats
        self._now_us = now_us
        self._open: dict[tuple[str, str], OpenGap] = {}

    def __len__(self) -> int:
        return len(self._open)

    def reasons(self) -> dict[tuple[str, str], str]:
        """``{(symbol, channel): reason}`` of every open gap."""
        return {key: gap.reason for key, gap in self._open.items()}

    def open(
        self,
        symbol: str,
        channel: str,
        reason: str,
        start_us: int,
        last_book_seq: int | None,
        detail: str = "",
    ) -> None:
        """Open a gap, or note one more reason on the gap already open."""
        gap = self._open.get((symbol, channel))
        if gap is None:
            self._open[(symbol, channel)] = OpenGap(
                reason, start_us, last_book_seq, [detail] if detail else []
            )
        elif detail:
            gap.details.append(f"{reason}: {detail}")

    def close(self, symbol: str, channel: str, end_us: int | None, resume_seq: int | None) -> None:
        """Close and log the gap, if one is open (``end_us`` None: open-ended at shutdown).

        Raises `SinkError` from the sink: the caller decides what a lost gap row means.
        """
        gap = self._open.pop((symbol, channel), None)
        if gap is None:
            return
        self.stats.gaps += 1
        if end_us is not None:
            self.stats.gap_seconds += max(0, end_us - gap.start_us) / 1e6
        sink = self.sink
        if sink is not None and not sink.closed:
            sink.gap(
                end_us if end_us is not None else self._now_us(),
                symbol,
                channel,
                gap.reason,
                gap.start_us,
                end_us,
                gap.last_book_seq,
                resume_seq,
                "; ".join(gap.details)[:MAX_DETAIL],
            )

    def note_all(self, detail: str) -> list[tuple[str, str]]:
        """Add a note to every open gap; return their keys (to close them open-ended)."""
        for gap in self._open.values():
            gap.details.append(detail)
        return list(self._open)
