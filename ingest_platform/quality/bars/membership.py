"""Coverage against the index membership of each date, with known gaps reported apart.

Bars are expected for each index member on the sessions it was a member, under the ticker in
force that day (`index_membership`'s intervals), and for every other instrument on its own
calendar's sessions (`expected.expected_sessions`). A member a source has recorded as
unavailable (`market.unavailable`: a delisted ticker Yahoo has no history for) is a *known
gap*: its member days are taken out of what is expected and counted on their own, so they
neither hide among failures nor pass as present.

`universe_coverage` asks the survivorship question per date: of the companies in the index
that day, what share has a bar? It fails (ERROR) or warns below the bands of
`shared.thresholds.UniverseCoverageThresholds` (with the rationale). The share counts the members
not known to be unavailable; the share of all members, known gaps included, is a figure beside
it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest_platform.core import calendars, settlement
from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    status_of,
    status_where,
)
from ingest_platform.quality.shared.frames import DayLike, as_day, day_to_date, require_columns
from ingest_platform.quality.shared.thresholds import UniverseCoverageThresholds


def member_sessions(
    intervals: pd.DataFrame,
    start: DayLike,
    end: DayLike,
    *,
    settled_by: pd.Timestamp | None = None,
    calendar: str = calendars.PRIMARY_CALENDAR,
) -> pd.DataFrame:
    """(instrument_id, symbol, date): every member on every session of `calendar` in
    [start, end] it was a member, under the ticker in force that day (settled by
    `settled_by` when given)."""
    require_columns(intervals, ["instrument_id", "symbol", "added", "removed"], "intervals")
    first, last = day_to_date(as_day(start)), day_to_date(as_day(end))
    frame = calendars.sessions_frame(first, last, calendar)
    if settled_by is not None:
        frame = frame[frame["close_utc"] + settlement.SETTLE <= settled_by]
    days = pd.DatetimeIndex(frame["date"]).to_numpy(dtype="datetime64[ns]")
    added = intervals["added"].to_numpy(dtype="datetime64[ns]")
    removed = intervals["removed"].fillna(pd.Timestamp.max).to_numpy(dtype="datetime64[ns]")
    inside = (days[None, :] >= added[:, None]) & (days[None, :] < removed[:, None])
    rows, cols = np.nonzero(inside)
    return pd.DataFrame(
        {
            "instrument_id": intervals["instrument_id"].to_numpy(dtype=object)[rows],
            "symbol": intervals["symbol"].to_numpy(dtype=object)[rows],
            "date": pd.DatetimeIndex(days[cols]),
        }
    )


def split_known_gaps(
    members: pd.DataFrame, unavailable: pd.DataFrame, observed: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`members` without the days a source recorded as unavailable, and those days apart
    (with the source and its reason). A day `observed` holds a bar for (``symbol``, ``date``:
    another source filled it) stays expected: it is no gap."""
    require_columns(
        unavailable, ["source", "instrument_id", "reason", "first_date", "last_date"], "gaps"
    )
    if unavailable.empty or members.empty:
        return members, members.iloc[:0].assign(source=[], reason=[])
    joined = members.reset_index().merge(
        unavailable[["source", "instrument_id", "reason", "first_date", "last_date"]],
        on="instrument_id",
    )
    within = (joined["date"] >= joined["first_date"]) & (joined["date"] <= joined["last_date"])
    gaps = joined[within].drop_duplicates("index")
    if observed is not None and len(observed) and len(gaps):
        seen = pd.MultiIndex.from_frame(observed[["symbol", "date"]])
        gaps = gaps[~pd.MultiIndex.from_frame(gaps[["symbol", "date"]]).isin(seen)]
    kept = members.drop(index=gaps["index"])
    return kept, gaps[["instrument_id", "symbol", "date", "source", "reason"]].reset_index(
        drop=True
    )


def universe_coverage(
    bars: pd.DataFrame,
    members: pd.DataFrame,
    gaps: pd.DataFrame,
    *,
    thresholds: UniverseCoverageThresholds = UniverseCoverageThresholds(),  # noqa: B008 - frozen
) -> Finding:
    """Per date: the share of that date's members (known gaps aside) with a bar.

    Args:
        bars: ``symbol``, ``date`` (any instruments; only members count).
        members: ``symbol``, ``date`` of the members to expect (`split_known_gaps`'s first).
        gaps: the known-unavailable member days (its second), counted apart.
    """
    require_columns(bars, ["symbol", "date"], "bars")
    require_columns(members, ["symbol", "date"], "members")
    warn_below, error_below = thresholds.warn_below, thresholds.error_below
    held = members.merge(bars[["symbol", "date"]].drop_duplicates(), on=["symbol", "date"],
                         how="left", indicator=True)  # fmt: skip
    held["present"] = held["_merge"] == "both"
    per_day = held.groupby("date").agg(members=("symbol", "size"), present=("present", "sum"))
    known = gaps.groupby("date").size() if len(gaps) else pd.Series(dtype="int64")
    per_day["known_unavailable"] = known.reindex(per_day.index, fill_value=0).astype(int)
    per_day["share"] = per_day["present"] / per_day["members"]
    per_day["share_with_gaps"] = per_day["present"] / (
        per_day["members"] + per_day["known_unavailable"]
    )
    missing_of = held[~held["present"]].groupby("date")["symbol"].agg(lambda s: sorted(s))
    per_day["missing"] = missing_of.reindex(per_day.index)
    per_day = per_day.reset_index()
    labels = status_where(per_day["share"].to_numpy(), warn_below, error_below, below=True)
    bad = per_day[labels != "PASS"].assign(status=labels[labels != "PASS"]).sort_values("share")
    figures: dict[str, float | int] = {
        "dates": len(per_day),
        "member_days": int(per_day["members"].sum()),
        "present": int(per_day["present"].sum()),
        "known_unavailable_days": len(gaps),
        "known_unavailable_symbols": int(gaps["symbol"].nunique()) if len(gaps) else 0,
        "dates_below_warn": int((per_day["share"] < warn_below).sum()),
        "dates_below_error": int((per_day["share"] < error_below).sum()),
        "warn_below": warn_below,
        "error_below": error_below,
    }
    if len(per_day):
        figures["share_min"] = float(per_day["share"].min())
        figures["share_with_gaps_min"] = float(per_day["share_with_gaps"].min())
    offending = pd.DataFrame(
        {
            "date": bad["date"],
            "share": bad["share"],
            "members": bad["members"],
            "present": bad["present"],
            "known_unavailable": bad["known_unavailable"],
            "missing_symbols": [", ".join(m[:10]) for m in bad["missing"]],
            "status": bad["status"],
        }
    ).head(MAX_OFFENDING_ROWS)
    gapped = wording.plural(int(figures["known_unavailable_symbols"]), "member")
    gap_note = (
        f"; {gapped} known unavailable from a source "
        f"({wording.plural(len(gaps), 'member day')}, reported apart)"
        if len(gaps)
        else ""
    )
    if len(bad):
        worst = bad.iloc[0]
        summary = (
            f"{wording.plural(len(bad), 'date')} below {wording.number(warn_below)} of its "
            f"members with a bar: worst {worst['date']:%Y-%m-%d} "
            f"{wording.number(float(worst['share']))} ({int(worst['members'] - worst['present'])}"
            f" missing: {', '.join(worst['missing'][:5])}){gap_note}"
        )
    elif len(per_day):
        summary = (
            f"every date has >= {wording.number(warn_below)} of its members with a bar (min "
            f"{wording.number(figures['share_min'])} over {wording.plural(len(per_day), 'date')})"
            f"{gap_note}"
        )
    else:
        summary = "no member sessions in the window"
    return Finding("universe_coverage", status_of(labels), figures, offending, summary)
