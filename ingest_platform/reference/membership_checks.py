"""Checks of the `index_membership` dataset: plain functions over frames, returning `Finding`s.

The reconciliation already refuses an inconsistent history before anything is written; these
checks re-prove the written dataset, so a hand-edited lake file or a future writer that skips
`reconcile` is caught where the data is read:

- `member_counts`: every day's member count is within `COUNT_BAND` (ERROR).
- `one_instrument_per_ticker`: a ticker is in force for at most one instrument at a time, and
  an instrument has at most one ticker at a time (ERROR).
- `members_match_instruments`: today's members are exactly the active S&P 500 equities of
  `instruments`, with the same ids (ERROR): the universe the market assets fetch and the
  membership a backtest reads cannot disagree.
"""

from __future__ import annotations

import pandas as pd

from ingest_platform.core.metadata import shortlist
from ingest_platform.quality.shared.finding import MAX_OFFENDING_ROWS, Figures, Finding, Status
from ingest_platform.reference.membership import COUNT_BAND


def _changes(intervals: pd.DataFrame) -> pd.DataFrame:
    """Member count on each day the membership changes (+1 per start, -1 per end)."""
    starts = intervals.groupby("added").size()
    ends = intervals.dropna(subset=["removed"]).groupby("removed").size()
    delta = starts.sub(ends, fill_value=0).sort_index()
    return pd.DataFrame({"date": delta.index, "members": delta.cumsum().astype(int).to_numpy()})


def member_counts(intervals: pd.DataFrame) -> Finding:
    """Each day's count of members within `COUNT_BAND` (counts only change on change days)."""
    counts = _changes(intervals)
    low, high = COUNT_BAND
    bad = counts[(counts["members"] < low) | (counts["members"] > high)]
    figures: Figures = {
        "min_members": int(counts["members"].min()) if len(counts) else 0,
        "max_members": int(counts["members"].max()) if len(counts) else 0,
        "days_outside_band": len(bad),
    }
    if bad.empty and len(counts):
        summary = f"{figures['min_members']}..{figures['max_members']} members every day"
        return Finding("member_counts", Status.PASS, figures, bad, summary)
    days = [f"{d:%Y-%m-%d} ({n})" for d, n in zip(bad["date"], bad["members"], strict=True)]
    summary = (
        f"member count outside {low}..{high} on {shortlist(days)}"
        if days
        else "no membership intervals"
    )
    return Finding("member_counts", Status.ERROR, figures, bad.head(MAX_OFFENDING_ROWS), summary)


def _overlaps(intervals: pd.DataFrame, key: str) -> pd.DataFrame:
    """Pairs of intervals sharing `key` whose days overlap."""
    far = pd.Timestamp.max.normalize()
    frame = intervals.assign(_end=intervals["removed"].fillna(far)).sort_values([key, "added"])
    previous_end = frame.groupby(key)["_end"].shift()
    clash = frame[previous_end.notna() & (frame["added"] < previous_end)]
    return clash.drop(columns="_end")[["instrument_id", "symbol", "added", "removed"]]


def one_instrument_per_ticker(intervals: pd.DataFrame) -> Finding:
    """No ticker held by two instruments at once; no instrument under two tickers at once."""
    by_symbol, by_id = _overlaps(intervals, "symbol"), _overlaps(intervals, "instrument_id")
    bad = pd.concat([by_symbol, by_id], ignore_index=True)
    figures: Figures = {
        "shared_tickers": len(by_symbol),
        "instruments_with_two_tickers": len(by_id),
    }
    if bad.empty:
        return Finding(
            "one_instrument_per_ticker",
            Status.PASS,
            figures,
            bad,
            f"{intervals['instrument_id'].nunique()} instruments, one ticker each at a time",
        )
    shown = shortlist([f"{s} ({i}, from {a:%Y-%m-%d})" for i, s, a, _ in bad.itertuples(False)])
    return Finding(
        "one_instrument_per_ticker",
        Status.ERROR,
        figures,
        bad.head(MAX_OFFENDING_ROWS),
        f"overlapping intervals: {shown}",
    )


def members_match_instruments(intervals: pd.DataFrame, instruments: pd.DataFrame) -> Finding:
    """Today's members (removed null) against `instruments`' active S&P 500 equities."""
    members = intervals[intervals["removed"].isna()]
    listed = instruments[
        instruments["active"].astype(bool) & (instruments["index_member"] == "S&P 500")
    ]
    ours = set(zip(members["instrument_id"], members["symbol"], strict=True))
    theirs = set(zip(listed["instrument_id"], listed["symbol"], strict=True))
    only_members, only_listed = sorted(ours - theirs), sorted(theirs - ours)
    figures: Figures = {
        "members_today": len(ours),
        "only_in_membership": len(only_members),
        "only_in_instruments": len(only_listed),
    }
    offending = pd.DataFrame(
        [(i, s, "index_membership") for i, s in only_members]
        + [(i, s, "instruments") for i, s in only_listed],
        columns=["instrument_id", "symbol", "only_in"],
    )
    if offending.empty:
        summary = f"{len(ours)} members today, the same ids and tickers in instruments"
        return Finding("members_match_instruments", Status.PASS, figures, offending, summary)
    summary = (
        f"today's members differ from instruments: only in index_membership "
        f"{shortlist([s for _, s in only_members]) or 'none'}; only in instruments "
        f"{shortlist([s for _, s in only_listed]) or 'none'}"
    )
    return Finding(
        "members_match_instruments",
        Status.ERROR,
        figures,
        offending.head(MAX_OFFENDING_ROWS),
        summary,
    )
