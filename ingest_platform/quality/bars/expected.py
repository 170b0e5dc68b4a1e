"""What a dataset is expected to hold: (key, date) pairs the coverage check counts against.

- bars: every session of each instrument's own calendar (XNYS for equities and ETFs, ``24/5``
  for FX: a US holiday is a normal FX day), between its first and last listing day when those
  are given (`expected_sessions`);
- the Kraken stream: every UTC day of each subscription (`expected_stream_days`);
- indicators: the release calendar's observation dates, a frame the caller gives.

Pairs are built as integer codes into a sorted vocabulary (`ExpectedPairs`): 545 symbols x 783
sessions is a cross product, and 427k repeated strings would cost more to build and hash than
the coverage computed from them. The frames are for callers who want to look.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest_platform.core import calendars, settlement
from ingest_platform.quality.shared.frames import (
    DayLike,
    as_day,
    day_numbers,
    day_to_date,
    encode,
    require_columns,
    to_dates,
)

_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class ExpectedPairs:
    """Expected (key, day) pairs as integer codes into `names`."""

    names: pd.Index
    codes: np.ndarray
    days: np.ndarray

    @classmethod
    def of(cls, expected: pd.DataFrame, key: str) -> ExpectedPairs:
        require_columns(expected, [key, "date"], "expected")
        codes, names = encode(expected[key])
        return cls(names, codes, day_numbers(expected["date"]))


def listing_bounds(
    names: pd.Index, listings: pd.DataFrame | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each name's first and last listed day (open ends as the int64 extremes)."""
    lo = np.full(len(names), np.iinfo(np.int64).min)
    hi = np.full(len(names), np.iinfo(np.int64).max)
    if listings is None:
        return lo, hi
    require_columns(listings, ["symbol", "first_date", "last_date"], what)
    by_symbol = listings.drop_duplicates("symbol", keep="last").set_index("symbol")
    row = by_symbol.index.get_indexer(names)
    known = row >= 0
    first = day_numbers(by_symbol["first_date"])[row[known]]
    last = day_numbers(by_symbol["last_date"])[row[known]]
    lo[known] = first  # NaT is the int64 minimum already: open
    hi[known] = np.where(last == _NAT, np.iinfo(np.int64).max, last)
    return lo, hi


def _cross(
    codes: np.ndarray, days: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (code, day) pair within the code's [lo, hi]."""
    all_codes = np.repeat(codes, len(days))
    all_days = np.tile(days, len(codes))
    keep = (all_days >= lo[all_codes]) & (all_days <= hi[all_codes])
    return all_codes[keep], all_days[keep]


def expected_session_pairs(
    instruments: pd.DataFrame,
    start: DayLike,
    end: DayLike,
    listings: pd.DataFrame | None,
    settled_by: pd.Timestamp | None = None,
) -> ExpectedPairs:
    require_columns(instruments, ["symbol", "calendar"], "instruments")
    universe = instruments.drop_duplicates("symbol", keep="last")
    codes, names = encode(universe["symbol"])
    lo, hi = listing_bounds(names, listings, "listings")
    window = day_to_date(as_day(start)), day_to_date(as_day(end))
    calendar_of = universe["calendar"].astype(str).to_numpy()
    parts = []
    for calendar in np.unique(calendar_of):
        sessions = _sessions(window, calendar, settled_by)
        mine = codes[calendar_of == calendar]
        parts.append(_cross(mine, sessions.astype(np.int64), lo, hi))
    all_codes = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    all_days = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    return ExpectedPairs(names, all_codes, all_days)


def _sessions(
    window: tuple[dt.date, dt.date], calendar: str, settled_by: pd.Timestamp | None
) -> np.ndarray:
    """The calendar's sessions in the window, as day numbers; with `settled_by`, only those
    that have closed and settled by then (`core.settlement`, the rule the ingest stores by)."""
    start, end = window
    if settled_by is None:
        return np.array(calendars.sessions(start, end, calendar), dtype="datetime64[D]")
    frame = calendars.sessions_frame(start, end, calendar)
    done = frame[frame["close_utc"] + settlement.SETTLE <= settled_by]
    return done["date"].to_numpy(dtype="datetime64[D]")


def expected_sessions(
    instruments: pd.DataFrame,
    start: DayLike,
    end: DayLike,
    *,
    listings: pd.DataFrame | None = None,
    settled_by: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """(symbol, date) for every session of each instrument's calendar in [start, end].

    Args:
        instruments: ``symbol`` and ``calendar`` (exchange-calendars name, e.g. XNYS, 24/5).
        listings: optional ``symbol``, ``first_date``, ``last_date`` (null = open): a symbol is
            expected only between its own first and last listing day.
        settled_by: the evaluation clock: a session not yet closed and settled then is not
            expected (an FX bar at 21:00 UTC in summer is not missing; it does not exist yet).
    """
    pairs = expected_session_pairs(instruments, start, end, listings, settled_by)
    return pd.DataFrame(
        {
            "symbol": pairs.names.to_numpy(dtype=object)[pairs.codes],
            "date": to_dates(pairs.days),
        }
    )


def expected_stream_days(subscriptions: pd.DataFrame, start: DayLike, end: DayLike) -> pd.DataFrame:
    """(symbol, date) for every UTC day in [start, end] of each subscription.

    `subscriptions`: ``symbol`` and, optionally, ``first_date`` / ``last_date`` (null = open)
    bounding the days the symbol was subscribed.
    """
    require_columns(subscriptions, ["symbol"], "subscriptions")
    days = np.arange(as_day(start), as_day(end) + 1, dtype=np.int64)
    codes, names = encode(subscriptions["symbol"].drop_duplicates())
    has_bounds = {"first_date", "last_date"} <= set(subscriptions.columns)
    lo, hi = listing_bounds(names, subscriptions if has_bounds else None, "subscriptions")
    all_codes, all_days = _cross(codes, days, lo, hi)
    return pd.DataFrame(
        {"symbol": names.to_numpy(dtype=object)[all_codes], "date": to_dates(all_days)}
    )
