"""The reviewed S&P 500 history files: membership changes and symbol changes, read and written.

Both are versioned inputs in ``data/reference/`` (provenance in its README):

- ``sp500_membership_changes.csv``: Wikipedia's "Selected changes" table in one row per change,
  oldest first: ``date, added_ticker, added_security, removed_ticker, removed_security,
  reason``. Either side may be blank (a spin-off adds without removing).
- ``symbol_changes.csv``: ``date, old_symbol, new_symbol, security, note, source``. A ticker
  change of one company: the instrument keeps its id. The changes table often shows a rename as
  the new ticker added and the old one removed on the same day; such a row is read as the
  rename.

Reading refuses anything malformed with the file and line named, and loses nothing: a bad file
is never partly read. Consistency across rows (who is a member when) is `membership`'s job.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pandas as pd

from ingest_platform.core.metadata import shortlist
from ingest_platform.reference.errors import ReferenceDataError

CONSTITUENTS_FILE = "sp500_constituents.csv"
CHANGES_FILE = "sp500_membership_changes.csv"
SYMBOL_CHANGES_FILE = "symbol_changes.csv"
CHANGE_COLUMNS = [
    "date",
    "added_ticker",
    "added_security",
    "removed_ticker",
    "removed_security",
    "reason",
]
SYMBOL_CHANGE_COLUMNS = ["date", "old_symbol", "new_symbol", "security", "note", "source"]
#: The first day the shipped history vouches for: replaying the changes back to it gives every
#: day's members. Wikipedia's table goes back further but is "selected", not complete.
HISTORY_START = dt.date(2018, 1, 1)
#: A ticker as the S&P and Wikipedia write it: BRK.B, BF.B, a few letters.
TICKER = re.compile(r"^[A-Z][A-Z0-9]*(\.[A-Z])?$")


class MembershipFileError(ReferenceDataError):
    """A history file is malformed or inconsistent; the message names the file and line."""


@dataclass(frozen=True)
class MembershipChange:
    """One row of the changes table: effective before the open of `date`."""

    date: dt.date
    added: str | None
    added_security: str
    removed: str | None
    removed_security: str
    reason: str
    where: str  # file:line


@dataclass(frozen=True)
class SymbolChange:
    """A ticker change of one company, effective before the open of `date`."""

    date: dt.date
    old: str
    new: str
    security: str
    note: str
    where: str


def _rows(path: Path, columns: list[str]) -> list[tuple[str, dict[str, str]]]:
    if not path.is_file():
        raise MembershipFileError(f"reference file {path} does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise MembershipFileError(f"{path}: not a readable CSV file: {exc}") from None
    if list(frame.columns) != columns:
        raise MembershipFileError(
            f"{path}:1: header must be {','.join(columns)}, found {','.join(frame.columns)}"
        )
    return [
        (f"{path.name}:{i + 2}", {c: str(v).strip() for c, v in row.items()})
        for i, row in enumerate(frame.to_dict("records"))
    ]


def _date(text: str, where: str, column: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise MembershipFileError(f"{where}: {column} {text!r} is not a YYYY-MM-DD date") from None


def _ticker(text: str, where: str, column: str) -> str | None:
    if not text:
        return None
    if not TICKER.match(text):
        raise MembershipFileError(
            f"{where}: {column} {text!r} is not a ticker (capital letters and digits, "
            "an optional .X class suffix: BRK.B)"
        )
    return text


def _in_order(dates: list[tuple[dt.date, str]]) -> None:
    for (before, _), (after, where) in pairwise(dates):
        if after < before:
            raise MembershipFileError(
                f"{where}: date {after} is out of order (the line before is dated {before}); "
                "rows go oldest first"
            )


def parse_change(row: dict[str, str], where: str) -> MembershipChange:
    """One changes row, checked on its own (nothing about the other rows)."""
    day = _date(row["date"], where, "date")
    if day < HISTORY_START:
        raise MembershipFileError(
            f"{where}: date {day} is before the history's start {HISTORY_START}"
        )
    added = _ticker(row["added_ticker"], where, "added_ticker")
    removed = _ticker(row["removed_ticker"], where, "removed_ticker")
    if added is None and removed is None:
        raise MembershipFileError(f"{where}: the row adds and removes nothing")
    for ticker, security, side in (
        (added, row["added_security"], "added"),
        (removed, row["removed_security"], "removed"),
    ):
        if ticker is None and security:
            raise MembershipFileError(f"{where}: {side}_security {security!r} has no ticker")
    if added is not None and added == removed and not row["reason"]:
        raise MembershipFileError(
            f"{where}: {added} is added and removed on the same row without a reason "
            "(a ticker passing to another company must say so)"
        )
    return MembershipChange(
        day,
        added,
        row["added_security"],
        removed,
        row["removed_security"],
        row["reason"],
        where,
    )


def load_changes(path: Path) -> list[MembershipChange]:
    """The changes file, oldest first; refused whole at the first malformed row."""
    changes = [parse_change(row, where) for where, row in _rows(path, CHANGE_COLUMNS)]
    _in_order([(c.date, c.where) for c in changes])
    seen: dict[tuple[dt.date, str | None, str | None], str] = {}
    for c in changes:
        key = (c.date, c.added, c.removed)
        if key in seen:
            raise MembershipFileError(f"{c.where}: repeats the change on {seen[key]}")
        seen[key] = c.where
    return changes


def load_symbol_changes(path: Path) -> list[SymbolChange]:
    """The symbol changes file, oldest first; refused whole at the first malformed row."""
    out = []
    for where, row in _rows(path, SYMBOL_CHANGE_COLUMNS):
        day = _date(row["date"], where, "date")
        old = _ticker(row["old_symbol"], where, "old_symbol")
        new = _ticker(row["new_symbol"], where, "new_symbol")
        if old is None or new is None:
            raise MembershipFileError(f"{where}: old_symbol and new_symbol are both required")
        if old == new:
            raise MembershipFileError(f"{where}: old_symbol and new_symbol are both {old}")
        out.append(SymbolChange(day, old, new, row["security"], row["note"], where))
    _in_order([(c.date, c.where) for c in out])
    twice = [c for c in out if sum((d.date, d.old) == (c.date, c.old) for d in out) > 1]
    if twice:
        raise MembershipFileError(
            f"{path}: a symbol renamed twice on one day: "
            f"{shortlist([f'{c.old} ({c.where})' for c in twice])}"
        )
    return out


def changes_frame(changes: Iterable[MembershipChange]) -> pd.DataFrame:
    """Changes in the file's shape (for writing it back after a refresh)."""
    return pd.DataFrame(
        [
            (
                c.date.isoformat(),
                c.added or "",
                c.added_security,
                c.removed or "",
                c.removed_security,
                c.reason,
            )
            for c in changes
        ],
        columns=CHANGE_COLUMNS,
    )


def refresh_changes(
    shipped: Sequence[MembershipChange], page: pd.DataFrame, path: Path
) -> tuple[list[MembershipChange], list[str]]:
    """The shipped changes merged with the page's (`CHANGE_COLUMNS`, any order), and the diff.

    A page row replaces the shipped row of the same day, added and removed tickers (its
    securities and reason win); a shipped row the page lacks is kept (the page's table is
    "selected": rows from other sources must not vanish on a refresh); rows before
    `HISTORY_START` are left out. Lines are renumbered as `path` will hold them.
    """
    fetched = {}
    for i, row in enumerate(page[CHANGE_COLUMNS].to_dict("records"), start=1):
        if dt.date.fromisoformat(row["date"]) < HISTORY_START:
            continue
        clean = {c: str(v).strip() for c, v in row.items()}
        change = parse_change(clean, f"changes table row {i}")
        fetched[(change.date, change.added, change.removed)] = change
    known = {(c.date, c.added, c.removed): c for c in shipped}
    merged = {**known, **fetched}
    ordered = sorted(merged.values(), key=lambda c: c.date)  # stable: page order within a day
    lines = [f"+ {_describe(c)}" for k, c in fetched.items() if k not in known]
    lines += [
        f"~ {_describe(c)}: security or reason updated"
        for k, c in fetched.items()
        if k in known and _content(known[k]) != _content(c)
    ]
    lines += [
        f"= {_describe(c)}: kept, not on the page" for k, c in known.items() if k not in fetched
    ]
    renumbered = [
        MembershipChange(c.date, c.added, c.added_security, c.removed, c.removed_security,
                         c.reason, f"{path.name}:{i + 2}")
        for i, c in enumerate(ordered)
    ]  # fmt: skip
    return renumbered, lines


def _describe(c: MembershipChange) -> str:
    return f"{c.date} +{c.added or '-'} -{c.removed or '-'}"


def _content(c: MembershipChange) -> tuple[str, str, str]:
    return (c.added_security, c.removed_security, c.reason)


def write_changes(changes: Iterable[MembershipChange], path: Path) -> None:
    """Write the changes file atomically: a half-written history would break every run."""
    temp = path.with_name(f".{path.name}.tmp")
    changes_frame(changes).to_csv(temp, index=False, lineterminator="\n")
    temp.replace(path)
