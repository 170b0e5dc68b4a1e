"""Point-in-time S&P 500 membership: today's list replayed backwards through the reviewed history.

`reconcile` starts from today's constituents and undoes each day's changes, newest first, down
to `HISTORY_START`. On a day, changes apply in a fixed order before the open: removals, then
ticker changes, then additions (so a ticker can leave with one company and arrive with another
on the same day, as FOXA did on 2019-03-19). Undoing them checks every step, and any
inconsistency is refused with the file and line, never guessed:

- an addition of a ticker that is not a member afterwards (added twice, or removed later
  without a recorded removal);
- a removal of a ticker that is still a member afterwards (a non-member removed, or removed
  twice);
- a ticker change of a ticker that is not a member, or onto one that already is;
- a member count outside `COUNT_BAND` on any day.

Instrument ids. An instrument is one company's listing in the index across ticker changes; its
id is ``SYMBOL@YYYY-MM-DD``: the ticker it had and the day it was first a member, or, for one
already a member on `ID_EPOCH` (2018-01-01), its ticker on that day (``FB@2018-01-01`` is Meta
Platforms under every ticker it has had since). The epoch is fixed, so extending the history
backwards never renames an id, and a ticker reused by another company gets another id
(``FOXA@2018-01-01`` 21st Century Fox, ``FOXA@2019-03-19`` Fox Corporation). A company that
leaves and later rejoins gets a new id (the history carries no issuer key to link them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ingest_platform.core.metadata import shortlist
from ingest_platform.reference import membership_files as files
from ingest_platform.reference.membership_files import (
    HISTORY_START,
    MembershipChange,
    MembershipFileError,
    SymbolChange,
)

INDEX = "sp500"
#: Ids name an instrument by its ticker on this day when it was already a member (never moves).
ID_EPOCH = dt.date(2018, 1, 1)
#: Members on any day since 2018 (the S&P 500 counts share classes: GOOGL and GOOG, FOXA and
#: FOX, NWSA and NWS). The shipped history has 503..507 every day; a day outside 495..510 means a
#: change is missing or recorded twice.
COUNT_BAND = (495, 510)


@dataclass
class _Spell:
    """An instrument under one ticker, from `added` (inclusive) to `removed` (exclusive)."""

    symbol: str
    security: str
    added: dt.date | None = None  # None: already a member at the history's start
    removed: dt.date | None = None  # None: still a member
    added_via: str = "before_history"  # addition | rename | before_history
    removed_via: str | None = None  # removal | rename | None
    added_reason: str = ""
    removed_reason: str = ""


@dataclass
class _Instrument:
    spells: list[_Spell] = field(default_factory=list)  # newest first while replaying

    @property
    def earliest(self) -> _Spell:
        return self.spells[-1]


@dataclass(frozen=True)
class MembershipHistory:
    """Every spell of every instrument since `HISTORY_START`, ids assigned."""

    intervals: pd.DataFrame  # index, instrument_id, symbol, security, added, removed, ...
    start: dt.date

    def members_on(self, day: dt.date | str) -> set[tuple[str, str]]:
        """(instrument_id, symbol in force) of every member on `day`."""
        when = pd.Timestamp(day)
        if when.date() < self.start:
            raise ValueError(f"membership before {self.start} is not in the shipped history")
        frame = self.intervals
        on = (frame["added"] <= when) & (frame["removed"].isna() | (frame["removed"] > when))
        return set(zip(frame.loc[on, "instrument_id"], frame.loc[on, "symbol"], strict=True))

    def members_by_partition(self, keys: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
        """`members_on` for each partition key (a YYYY-MM-DD day): what a bar partition holds."""
        return {key: self.members_on(key) for key in keys}

    def instruments_since(self, day: dt.date | str) -> pd.DataFrame:
        """One row per instrument that was a member on or after `day`: its last spell."""
        frame = self.intervals
        kept = frame[frame["removed"].isna() | (frame["removed"] > pd.Timestamp(day))]
        last = kept.sort_values("added").drop_duplicates("instrument_id", keep="last")
        return last.reset_index(drop=True)


def _by_day(
    changes: Sequence[MembershipChange], renames: Sequence[SymbolChange]
) -> dict[dt.date, tuple[list[MembershipChange], list[MembershipChange], list[SymbolChange]]]:
    """Per day: (removals, additions, ticker changes); a changes row that shows a ticker change
    as the new ticker added and the old one removed is read as that ticker change."""
    days: dict = defaultdict(lambda: ([], [], []))
    pairs = {(r.date, r.old, r.new) for r in renames}
    for c in changes:
        removals, additions, _ = days[c.date]
        if (c.date, c.removed, c.added) in pairs:
            continue
        if c.removed:
            removals.append(c)
        if c.added:
            additions.append(c)
    for r in renames:
        days[r.date][2].append(r)
    return dict(days)


def _count(
    day: dt.date, members: int, lines: Iterable[str], when: str, band: tuple[int, int]
) -> None:
    low, high = band
    if not low <= members <= high:
        raise MembershipFileError(
            f"{shortlist(sorted(set(lines)))}: {members} members {when} {day}, outside "
            f"{low}..{high}: a change is missing or recorded twice"
        )


def reconcile(
    current: Mapping[str, str],
    changes: Sequence[MembershipChange],
    renames: Sequence[SymbolChange] = (),
    today: dt.date | None = None,
    band: tuple[int, int] = COUNT_BAND,
) -> MembershipHistory:
    """The history behind today's list: `current` maps each member's ticker to its security.
    `band` bounds every day's member count (another index, or a test's small one).

    Raises `MembershipFileError` naming the file and line of the first inconsistency found,
    walking back from today.
    """
    today = today or dt.date.today()
    dated: list[MembershipChange | SymbolChange] = [*changes, *renames]
    late = [c.where for c in dated if c.date > today]
    if late:
        raise MembershipFileError(f"{shortlist(late)}: dated after today's list ({today})")
    members = {s: _Instrument([_Spell(s, name)]) for s, name in current.items()}
    done: list[_Instrument] = []
    last_seen: dict[str, str] = {}  # ticker -> where it was last touched (for messages)
    days = _by_day(changes, renames)
    for day in sorted(days, reverse=True):
        removals, additions, tickers = days[day]
        lines = [x.where for x in removals + additions] + [r.where for r in tickers]
        _count(day, len(members), lines, "on", band)
        for c in additions:
            assert c.added is not None
            inst = members.pop(c.added, None)
            if inst is None:
                before = last_seen.get(c.added)
                raise MembershipFileError(
                    f"{c.where}: adds {c.added} on {day}, but {c.added} is not a member after "
                    + (
                        f"that day: it is added again at {before} with no removal between"
                        if before
                        else "that day and no later change removes it"
                    )
                )
            spell = inst.earliest
            spell.added, spell.added_via, spell.added_reason = day, "addition", c.reason
            spell.security = spell.security or c.added_security
            done.append(inst)
            last_seen[c.added] = c.where
        for r in tickers:
            inst = members.pop(r.new, None)
            if inst is None or r.old in members:
                problem = (
                    f"{r.new} is not a member after that day"
                    if inst is None
                    else f"{r.old} is a member then too"
                )
                raise MembershipFileError(f"{r.where}: {r.old} -> {r.new} on {day}, but {problem}")
            newer = inst.earliest
            newer.added, newer.added_via, newer.added_reason = day, "rename", r.note
            inst.spells.append(_Spell(r.old, newer.security, removed=day, removed_via="rename"))
            inst.earliest.removed_reason = r.note
            members[r.old] = inst
            last_seen[r.old] = last_seen[r.new] = r.where
        for c in removals:
            assert c.removed is not None
            if c.removed in members:
                after = last_seen.get(c.removed)
                raise MembershipFileError(
                    f"{c.where}: removes {c.removed} on {day}, but {c.removed} is still a member "
                    + (
                        f"after that day: it is removed again at {after} with no addition between"
                        if after
                        else "after that day and no later change adds it back: it was not a "
                        "member, or its removal is recorded twice"
                    )
                )
            spell = _Spell(
                c.removed,
                c.removed_security,
                removed=day,
                removed_via="removal",
                removed_reason=c.reason,
            )
            members[c.removed] = _Instrument([spell])
            last_seen[c.removed] = c.where
        _count(day, len(members), lines, "before", band)
    return MembershipHistory(_intervals([*members.values(), *done]), HISTORY_START)


def instrument_id(symbol: str, first_day: dt.date | None) -> str:
    """``SYMBOL@YYYY-MM-DD``: the instrument's first ticker and first day (see the module)."""
    day = ID_EPOCH if first_day is None or first_day <= ID_EPOCH else first_day
    return f"{symbol}@{day.isoformat()}"


def _intervals(instruments: Iterable[_Instrument]) -> pd.DataFrame:
    rows = []
    for inst in instruments:
        first = inst.earliest
        ident = instrument_id(first.symbol, first.added)
        for s in inst.spells:
            rows.append(
                {
                    "index": INDEX,
                    "instrument_id": ident,
                    "symbol": s.symbol,
                    "security": s.security or None,
                    "added": pd.Timestamp(s.added or HISTORY_START),
                    "removed": pd.Timestamp(s.removed) if s.removed else pd.NaT,
                    "added_via": s.added_via,
                    "removed_via": s.removed_via,
                    "added_reason": s.added_reason or None,
                    "removed_reason": s.removed_reason or None,
                }
            )
    frame = pd.DataFrame(rows)
    repeated = frame[frame.duplicated(["instrument_id", "added"], keep=False)]
    if len(repeated):  # two companies first seen under one ticker on one day: cannot happen
        raise MembershipFileError(f"instrument ids collide: {shortlist(list(repeated.symbol))}")
    return frame.sort_values(["instrument_id", "added"], ignore_index=True)


def load_history(directory: Path, today: dt.date | None = None) -> MembershipHistory:
    """The shipped history reconciled against the shipped constituents (all in `directory`)."""
    path = directory / files.CONSTITUENTS_FILE
    if not path.is_file():
        raise MembershipFileError(f"reference file {path} does not exist")
    snapshot = pd.read_csv(path, dtype=str, keep_default_na=False)
    current = dict(zip(snapshot["symbol"], snapshot["name"], strict=True))
    return reconcile(
        current,
        files.load_changes(directory / files.CHANGES_FILE),
        files.load_symbol_changes(directory / files.SYMBOL_CHANGES_FILE),
        today,
    )
