"""Coverage against each date's index members, known gaps apart (`quality.bars.membership`)."""

from __future__ import annotations

import pandas as pd

from ingest_platform.core import calendars
from ingest_platform.quality.bars.membership import (
    member_sessions,
    split_known_gaps,
    universe_coverage,
)
from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.thresholds import UniverseCoverageThresholds

T = pd.Timestamp
UNIVERSE_ERROR_BELOW = UniverseCoverageThresholds().error_below
# 100 members all month; OLD leaves on 2024-06-17 (ticker OLD until 2024-06-10, then NEWNAME);
# LATE joins on 2024-06-20.
STEADY = [f"S{i:03d}" for i in range(98)]
INTERVALS = pd.DataFrame(
    {
        "instrument_id": [f"{s}@2018-01-01" for s in STEADY] + ["OLD@2018-01-01"] * 2 + ["LATE"],
        "symbol": [*STEADY, "OLD", "NEWNAME", "LATE"],
        "added": [T("2018-01-01")] * 98 + [T("2018-01-01"), T("2024-06-10"), T("2024-06-20")],
        "removed": [pd.NaT] * 98 + [T("2024-06-10"), T("2024-06-17"), pd.NaT],
    }
)
START, END = "2024-06-03", "2024-06-28"
SESSIONS = calendars.sessions(START, END)
NO_GAPS = pd.DataFrame(columns=["source", "instrument_id", "reason", "first_date", "last_date"])


def test_member_sessions_follow_joins_removals_and_renames():
    members = member_sessions(INTERVALS, START, END)
    old = members[members["instrument_id"] == "OLD@2018-01-01"].set_index("date")["symbol"]
    assert old[T("2024-06-07")] == "OLD" and old[T("2024-06-10")] == "NEWNAME"
    assert old.index.max() == T("2024-06-14")  # removed before the open of 2024-06-17
    late = members.loc[members["symbol"] == "LATE", "date"]
    assert late.min() == T("2024-06-20")  # effective before the open of its date
    assert len(members) == 98 * len(SESSIONS) + len(old) + len(late)


def _bars(members: pd.DataFrame, drop: set[str] = frozenset()) -> pd.DataFrame:
    return members.loc[~members["symbol"].isin(drop), ["symbol", "date"]]


def test_a_date_missing_too_many_members_fails_and_names_them():
    members = member_sessions(INTERVALS, START, END)
    bars = _bars(members)
    day = T("2024-06-12")
    gone = [f"S{i:03d}" for i in range(6)]  # 6 of 99 members missing on one day: 0.939
    bars = bars[~((bars["date"] == day) & bars["symbol"].isin(gone))]
    found = universe_coverage(bars, members, NO_GAPS.iloc[:0])
    assert found.status is Status.ERROR
    assert found.figures["dates_below_error"] == 1
    assert found.figures["share_min"] < UNIVERSE_ERROR_BELOW
    assert "2024-06-12" in found.summary and "S000" in found.summary
    assert found.offending["date"].tolist() == [day]
    # Complete: passes.
    assert universe_coverage(_bars(members), members, NO_GAPS.iloc[:0]).passed
    # The limits are the thresholds passed: looser ones turn the same day into a warning.
    looser = UniverseCoverageThresholds(warn_below=0.95, error_below=0.9)
    found = universe_coverage(bars, members, NO_GAPS.iloc[:0], thresholds=looser)
    assert found.status is Status.WARN
    assert found.figures["error_below"] == looser.error_below


def test_known_unavailable_members_are_counted_apart_not_as_failures():
    members = member_sessions(INTERVALS, START, END)
    gaps_record = pd.DataFrame(
        {
            "source": ["yahoo"] * 6,
            "instrument_id": [f"S{i:03d}@2018-01-01" for i in range(6)],
            "reason": ["No data found, symbol may be delisted"] * 6,
            "first_date": [T(START)] * 6,
            "last_date": [T(END)] * 6,
        }
    )
    expected, gaps = split_known_gaps(members, gaps_record)
    assert len(gaps) == 6 * len(SESSIONS) and set(gaps["source"]) == {"yahoo"}
    assert not expected["symbol"].isin([f"S{i:03d}" for i in range(6)]).any()
    bars = _bars(members, {f"S{i:03d}" for i in range(6)})  # the source has nothing for them
    found = universe_coverage(bars, expected, gaps)
    assert found.passed
    assert found.figures["known_unavailable_symbols"] == 6
    assert found.figures["share_with_gaps_min"] < UNIVERSE_ERROR_BELOW  # shown, not judged
    assert "6 members known unavailable" in found.summary
