"""Rebuild the Kraken books from the stream log and re-verify every checksum.

For each writer session, ``book`` rows are applied in seq order to a fresh `KrakenBook` per
symbol (with the depth and precisions the live book used), exactly as the client applied them:

- a ``snapshot`` row restarts that symbol's book (after a gap this is how the book resumes);
- every row's checksum is recomputed and compared with what the exchange sent *and* with the
  live verdict recorded in the row (``checksum_ok``): both agreeing is ``verified``; a row the
  live client already rejected (and resynced after) that replay also rejects is a
  ``rejected_live`` row, expected and not an error; any disagreement is a ``mismatch``;
- after a rejected row the book is out of sync until the next snapshot: an update in between
  means rows went missing;
- seqs are consecutive per session, so a deleted row is a ``seq_hole``;
- every ``book_top`` row is compared with the rebuilt book's top levels at the seq it names;
- each snapshot that restarts a book that was in sync must close a recorded gap.

`run_replay` is what ``ingest-platform kraken-replay`` runs (the options live in ``cli.py``):
it prints a summary and exits `EXIT_PROBLEMS` on any mismatch or integrity error, and
`EXIT_CANNOT_RUN` when there is nothing it can judge (a day without a log, no book rows, an
unreadable segment).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ingest_platform.core import settings
from ingest_platform.core.object_store import Root, path_or_url
from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.log.segments import (
    LogReadError,
    iter_batches,
    list_segments,
    read_kind,
)
from ingest_platform.streaming.kraken.protocol.rows import top_levels

_BOOK_COLUMNS = [
    "session",
    "seq",
    "recv_ts",
    "symbol",
    "type",
    "bids",
    "asks",
    "checksum",
    "checksum_ok",
    "depth",
    "price_precision",
    "qty_precision",
]
_MAX_PROBLEMS = 50

EXIT_OK = 0
"""Every checksum, seq and top-of-book row verified."""
EXIT_PROBLEMS = 1
"""The log is readable and does not verify (see `ReplayReport.ok`)."""
EXIT_CANNOT_RUN = 2
"""Nothing could be judged: bad arguments, a day without a log, an unreadable segment."""


def default_log_root() -> str | Path:
    """Where the stream writes by default: $INGEST_PLATFORM_STREAM_ROOT (a directory, or an
    fsspec URL returned as is), else ``<data dir>/stream/kraken``."""
    return path_or_url(settings.stream_root())


@dataclass
class ReplayReport:
    """What replay found; `ok` is False on any mismatch or integrity problem."""

    rows: int = 0
    snapshots: int = 0
    verified: int = 0
    rejected_live: int = 0
    mismatches: int = 0
    unverifiable: int = 0
    updates_out_of_sync: int = 0
    seq_holes: int = 0
    unrecorded_restarts: int = 0
    tops_checked: int = 0
    tops_mismatched: int = 0
    gaps: int = 0
    gaps_by_reason: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    segments: int = 0
    symbols: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.mismatches
            or self.updates_out_of_sync
            or self.seq_holes
            or self.unrecorded_restarts
            or self.tops_mismatched
        )

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        lines = [
            f"book rows     {self.rows} in {self.segments} segment(s), "
            f"{self.sessions} session(s), symbols {self.symbols}",
            f"verified      {self.verified} (snapshots {self.snapshots})",
            f"mismatches    {self.mismatches}",
            f"rejected live {self.rejected_live} (checksum failures the live client resynced)",
            f"gaps          {self.gaps} {self.gaps_by_reason}",
            f"top-of-book   {self.tops_checked} checked, {self.tops_mismatched} mismatched",
            f"integrity     seq holes {self.seq_holes}, updates out of sync "
            f"{self.updates_out_of_sync}, restarts without a gap {self.unrecorded_restarts}, "
            f"unverifiable before first snapshot {self.unverifiable}",
            f"result        {'OK' if self.ok else 'FAILED'}",
        ]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass
class _SymbolReplay:
    book: KrakenBook | None = None
    synced: bool = False
    ever_synced: bool = False


OnVerified = Callable[[dict[str, Any], KrakenBook], None]
"""Called with the row and the rebuilt book after every row that verified (live and replay)."""


def replay(
    root: Root,
    days: Iterable[str] | None = None,
    symbols: Iterable[str] | None = None,
    on_verified: OnVerified | None = None,
) -> ReplayReport:
    """Replay the book log under ``root`` (optionally some UTC days / symbols); see module doc.

    ``on_verified`` sees the book after each verified row: the minute bars take the top of
    book from there, so they only ever describe a book whose checksum matched.
    """
    days = list(days) if days is not None else None
    wanted = set(symbols) if symbols is not None else None
    report = ReplayReport()

    gaps = read_kind(root, "gap", days).to_pylist()
    gap_resumes: set[tuple[str, int]] = set()
    for gap in gaps:
        if wanted is not None and gap["symbol"] not in wanted:
            continue
        report.gaps += 1
        report.gaps_by_reason[gap["reason"]] = report.gaps_by_reason.get(gap["reason"], 0) + 1
        if gap["channel"] == "book" and gap["resume_book_seq"] is not None:
            gap_resumes.add((gap["session"], gap["resume_book_seq"]))

    tops: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for top in read_kind(root, "book_top", days).to_pylist():
        if wanted is None or top["symbol"] in wanted:
            tops[(top["session"], top["book_seq"], top["symbol"])].append(top)

    books: dict[tuple[str, str], _SymbolReplay] = defaultdict(_SymbolReplay)
    last_seq: dict[str, int] = {}
    report.segments = len(list_segments(root, "book", days))
    for _, batch in iter_batches(root, "book", days, _BOOK_COLUMNS):
        for row in batch.to_pylist():
            session, seq = row["session"], row["seq"]
            previous = last_seq.get(session)
            if previous is not None and seq != previous + 1:
                report.seq_holes += 1
                report.problem(f"session {session}: seq {previous} -> {seq} (rows missing)")
            last_seq[session] = seq
            symbol = row["symbol"]
            if wanted is not None and symbol not in wanted:
                continue
            state = books[(session, symbol)]
            if _replay_row(report, state, row, gap_resumes, tops) and on_verified is not None:
                on_verified(row, state.book)  # type: ignore[arg-type]
    report.sessions = len(last_seq)
    return report


def _replay_row(
    report: ReplayReport,
    state: _SymbolReplay,
    row: dict[str, Any],
    gap_resumes: set[tuple[str, int]],
    tops: dict[tuple[str, int, str], list[dict[str, Any]]],
) -> bool:
    """Apply one row; True when it verified (live and in replay)."""
    session, seq, symbol, kind = row["session"], row["seq"], row["symbol"], row["type"]
    report.rows += 1
    report.symbols[symbol] = report.symbols.get(symbol, 0) + 1
    where = f"{symbol} session {session} seq {seq}"
    item = {"symbol": symbol, "bids": row["bids"], "asks": row["asks"]}
    item["checksum"] = row["checksum"]
    if kind == "snapshot":
        report.snapshots += 1
        if state.synced and (session, seq) not in gap_resumes and row["checksum_ok"]:
            report.unrecorded_restarts += 1
            report.problem(f"{where}: book restarted by a snapshot but no gap was recorded")
        pp, qp, depth = row["price_precision"], row["qty_precision"], row["depth"]
        if pp < 0 or qp < 0:
            ok = False  # the live client could not even build this book
        else:
            book = state.book
            if book is None or (book.depth, book.price_precision, book.qty_precision) != (
                depth,
                pp,
                qp,
            ):
                book = state.book = KrakenBook(symbol, depth, pp, qp)
            ok = _apply(book.apply_snapshot, item)
    elif kind == "update":
        if state.book is None or not state.ever_synced:
            report.unverifiable += 1  # the session's snapshot is before the replayed days
            return False
        if not state.synced:
            report.updates_out_of_sync += 1
            report.problem(f"{where}: update while the book was out of sync (rows missing)")
            return False
        ok = _apply(state.book.apply_update, item)
    else:
        report.mismatches += 1
        report.problem(f"{where}: unknown book row type {kind!r}")
        return False

    live_ok = row["checksum_ok"]
    if ok and live_ok:
        report.verified += 1
        state.synced = state.ever_synced = True
    elif not ok and not live_ok:
        report.rejected_live += 1
        state.synced = False
    else:
        report.mismatches += 1
        state.synced = False
        verdict = "verifies" if ok else "does not verify"
        report.problem(f"{where}: checksum {verdict} in replay but the live client said {live_ok}")
    if state.synced and state.book is not None:
        for top in tops.get((session, seq, symbol), ()):
            report.tops_checked += 1
            bids, asks = top_levels(state.book, len(top["bids"]) or len(top["asks"]) or 10)
            if (
                bids[: len(top["bids"])] != top["bids"]
                or asks[: len(top["asks"])] != top["asks"]
                or state.book.checksum() != top["checksum"]
            ):
                report.tops_mismatched += 1
                report.problem(f"{where}: book_top row differs from the rebuilt book")
    return ok and live_ok


def _apply(apply: Any, item: dict[str, Any]) -> bool:
    try:
        return bool(apply(item))
    except (ValueError, TypeError, KeyError):
        return False


def missing_days(root: Root, days: Iterable[str]) -> list[str]:
    """The given UTC days for which the log under ``root`` has no book segment."""
    return [day for day in days if not list_segments(root, "book", [day])]


def run_replay(
    root: Root,
    days: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """``ingest-platform kraken-replay``: replay, print a summary, return the exit code.

    `EXIT_OK` when everything verifies, `EXIT_PROBLEMS` when the log is readable but does not
    verify, `EXIT_CANNOT_RUN` when there is nothing to judge: a day without a log, no book rows
    at all, or a segment that cannot be read. Those are one line on stderr, never a summary
    (a summary of nothing would read "OK").
    """
    out = out or sys.stdout

    def cannot_run(reason: str) -> int:
        print(f"kraken-replay: {reason}", file=sys.stderr)
        return EXIT_CANNOT_RUN

    if days:
        missing = missing_days(root, days)
        if missing:
            return cannot_run(f"no stream log for {', '.join(missing)} under {root}")
    elif not list_segments(root, "book"):
        return cannot_run(f"no stream log under {root} (has the stream run?)")
    try:
        report = replay(root, days, symbols)
    except LogReadError as exc:
        return cannot_run(str(exc))
    if report.rows == 0:
        which = f" for {', '.join(symbols)}" if symbols else ""
        when = f" on {', '.join(days)}" if days else ""
        return cannot_run(f"no book rows{which}{when} under {root}")
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True), file=out)
    else:
        print(f"Kraken stream log: {root}", file=out)
        print(report.summary(), file=out)
    return EXIT_OK if report.ok else EXIT_PROBLEMS
