"""The gap ledger: every interval in which a book (or a trade/ohlc feed) was not known complete.

A gap opens on a disconnect, a resync, a malformed frame, exchange maintenance or a rejected
subscription, and closes with the next verified snapshot (or ack); the protocol writes each
closed gap as one ``gap`` row with reason, start, end and the book seqs around it. Replay and
the minute bars rely on these rows: a book restarted without a recorded gap is an integrity
error. The ledger only keeps the open gaps; it writes and counts nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest_platform.streaming.kraken.protocol.halts import MAX_DETAIL


@dataclass
class OpenGap:
    reason: str
    start_us: int
    last_book_seq: int | None
    details: list[str] = field(default_factory=list)

    def detail(self) -> str:
        """What the gap row's ``detail`` says: every reason noted, bounded."""
        return "; ".join(self.details)[:MAX_DETAIL]


class GapLedger:
    """Open gaps by (symbol, channel)."""

    def __init__(self) -> None:
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

    def close(self, symbol: str, channel: str) -> OpenGap | None:
        """The gap that was open (for the caller to write down), or None."""
        return self._open.pop((symbol, channel), None)

    def note_all(self, detail: str) -> list[tuple[str, str]]:
        """Add a note to every open gap; return their keys (to close them open-ended)."""
        for gap in self._open.values():
            gap.details.append(detail)
        return list(self._open)
