"""Staleness: the newest observation against the latest one that should exist by `now`.

- bars: the last *completed* session of each symbol's own calendar (a session completes
  ``settle_hours`` after its close), counted in sessions behind;
- indicators: the oldest release that is due (release time + grace) but whose observation is
  not in the frame, counted in hours late.

(The Kraken stream's staleness, hours since its heartbeat, is in `stream.staleness`.)

Every function takes `now` as an argument and never reads the clock, so a check re-run over
old data, or a test, gets the same answer.

Each ``*_by_*`` table also carries ``freshness`` in 0..1 (see `shared.freshness`), which the quality
score multiplies in.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ingest_platform.core import calendars
from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    severity_order,
    status_of,
    status_where,
)
from ingest_platform.quality.shared.frames import (
    as_day,
    day_numbers,
    day_to_date,
    encode,
    require_columns,
    to_dates,
    utc_timestamp,
)
from ingest_platform.quality.shared.freshness import (
    HOUR,
    Instant,
    freshness,
    lag_figures,
    lag_labels,
    now_text,
    worst_first,
)
from ingest_platform.quality.shared.thresholds import (
    BarStalenessThresholds,
    IndicatorStalenessThresholds,
)

_NAT = np.iinfo(np.int64).min


# ---- bars ------------------------------------------------------------------------------------


def bar_staleness_by_symbol(
    bars: pd.DataFrame,
    instruments: pd.DataFrame,
    now: Instant,
    *,
    listings: pd.DataFrame | None = None,
    thresholds: BarStalenessThresholds = BarStalenessThresholds(),  # noqa: B008 - frozen
) -> pd.DataFrame:
    """Per instrument: ``last_date`` (newest bar), ``expected_date`` (last completed session of
    its calendar as of `now`, or its last listing day if earlier), ``lag_sessions``,
    ``freshness``, ``status``; most behind first.

    Args:
        bars: ``symbol``, ``date``; symbols outside `instruments` are ignored.
        instruments: ``symbol``, ``calendar``.
        now: timezone-aware.
        listings: optional ``symbol``, ``first_date``, ``last_date``; a symbol not yet listed
            by the expected date is left out, a delisted one is expected up to its last day.
    """
    require_columns(bars, ["symbol", "date"], "bars")
    require_columns(instruments, ["symbol", "calendar"], "instruments")
    now = utc_timestamp(now, "now")
    t = thresholds
    universe = instruments.drop_duplicates("symbol", keep="last").reset_index(drop=True)
    names = pd.Index(universe["symbol"])
    codes, _ = encode(bars["symbol"], names)
    days = day_numbers(bars["date"])
    known = (codes < len(names)) & (days != _NAT)
    last = pd.Series(days[known]).groupby(codes[known]).max()
    last_day = np.full(len(names), _NAT)
    last_day[last.index.to_numpy()] = last.to_numpy()

    first, final = _listing_days(names, listings)
    expected_day = np.full(len(names), _NAT)
    lag = np.full(len(names), np.nan)
    calendar_of = universe["calendar"].astype(str).to_numpy()
    settle = pd.Timedelta(hours=t.settle_hours)
    for calendar in np.unique(calendar_of):
        rows = np.flatnonzero(calendar_of == calendar)
        bounds = np.concatenate(([as_day(now) - 14], last_day[rows], final[rows]))
        since = int(bounds[bounds != _NAT].min()) - 7
        tomorrow = now.date() + dt.timedelta(days=1)
        frame = calendars.sessions_frame(day_to_date(since), tomorrow, calendar)
        sessions = day_numbers(frame.loc[frame["close_utc"] + settle <= now, "date"])
        if len(sessions) == 0:
            continue
        # The last completed session, or the last session on or before a delisting.
        cap = np.where(final[rows] == _NAT, sessions[-1], np.minimum(final[rows], sessions[-1]))
        expected_day[rows] = sessions[np.maximum(np.searchsorted(sessions, cap, "right") - 1, 0)]
        lag[rows] = _sessions_between(sessions, last_day[rows], expected_day[rows])
    not_yet_listed = (first != _NAT) & (first > expected_day)

    table = pd.DataFrame(
        {
            "symbol": names.to_numpy(dtype=object),
            "calendar": calendar_of,
            "last_date": to_dates(last_day),
            "expected_date": to_dates(expected_day),
            "lag_sessions": lag,
            "freshness": freshness(lag, t.warn_after_sessions, t.error_after_sessions),
            "status": lag_labels(lag, t.warn_after_sessions, t.error_after_sessions),
        }
    )
    table = table[(expected_day != _NAT) & ~not_yet_listed]
    return worst_first(table, "lag_sessions", "symbol")


def _sessions_between(sessions: np.ndarray, last: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Sessions after `last` up to `expected` (0 when `last` is at or after it; NaN if never)."""
    behind = np.searchsorted(sessions, expected, "right") - np.searchsorted(sessions, last, "right")
    lag = np.maximum(behind, 0).astype(float)
    return np.where(last == _NAT, np.nan, lag)


def _listing_days(names: pd.Index, listings: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """First and last listing day per name (NaT-int where open or not given)."""
    if listings is None:
        return np.full(len(names), _NAT), np.full(len(names), _NAT)
    require_columns(listings, ["symbol", "first_date", "last_date"], "listings")
    by_symbol = listings.drop_duplicates("symbol", keep="last").set_index("symbol")
    row = by_symbol.index.get_indexer(names)
    first = day_numbers(by_symbol["first_date"])
    final = day_numbers(by_symbol["last_date"])
    pick = np.maximum(row, 0)
    return np.where(row >= 0, first[pick], _NAT), np.where(row >= 0, final[pick], _NAT)


def bar_staleness(
    bars: pd.DataFrame,
    instruments: pd.DataFrame,
    now: Instant,
    *,
    listings: pd.DataFrame | None = None,
    thresholds: BarStalenessThresholds = BarStalenessThresholds(),  # noqa: B008
) -> Finding:
    """WARN when a symbol is more than ``warn_after_sessions`` behind its calendar's last
    completed session, ERROR beyond ``error_after_sessions`` or when it has no bar at all."""
    t = thresholds
    table = bar_staleness_by_symbol(bars, instruments, now, listings=listings, thresholds=t)
    lag = table["lag_sessions"].to_numpy()
    stale = table[table["status"] != "PASS"].head(MAX_OFFENDING_ROWS)
    offending = pd.DataFrame(
        {
            "symbol": stale["symbol"],
            "date": stale["last_date"],
            "expected_date": stale["expected_date"],
            "lag_sessions": stale["lag_sessions"],
            "threshold": np.where(
                stale["lag_sessions"].fillna(np.inf) > t.error_after_sessions,
                t.error_after_sessions,
                t.warn_after_sessions,
            ),
            "calendar": stale["calendar"],
            "status": stale["status"],
        }
    ).reset_index(drop=True)
    figures = lag_figures(table, lag, t.warn_after_sessions, t.error_after_sessions, "sessions")
    named = [
        f"{s} (never)" if pd.isna(d) else f"{s} ({wording.day(d)}, {int(n)} behind)"
        for s, d, n in zip(
            offending["symbol"], offending["date"], offending["lag_sessions"].fillna(0), strict=True
        )
    ]
    as_of = now_text(now)
    if named:
        n = int((table["status"] != "PASS").sum())
        summary = (
            f"{wording.plural(n, 'symbol')} more than {t.warn_after_sessions} session(s) behind "
            f"as of {as_of}: {wording.listing(named, n)}"
        )
    else:
        summary = (
            f"all {wording.plural(len(table), 'symbol')} up to their last completed session "
            f"as of {as_of}"
        )
    return Finding("bar_staleness", status_of(table["status"]), figures, offending, summary)


# ---- indicators ------------------------------------------------------------------------------


def indicator_staleness_by_variable(
    observations: pd.DataFrame,
    releases: pd.DataFrame,
    now: Instant,
    *,
    value_column: str | None = "value",
    thresholds: IndicatorStalenessThresholds = IndicatorStalenessThresholds(),  # noqa: B008
) -> pd.DataFrame:
    """Per variable in `releases`: ``last_date`` (newest observation with a value),
    ``expected_date`` (newest observation date a due release publishes), ``due_at`` (when the
    oldest unmet release fell due), ``late_hours``, ``freshness``, ``status``; latest first.

    Args:
        observations: ``variable``, ``date`` (observation date), and `value_column` (null =
            not observed).
        releases: the release calendar: ``variable``, ``date`` (the observation date a release
            publishes), ``release_date`` (naive = midnight UTC, or timezone-aware).
        now: timezone-aware.
    """
    require_columns(observations, ["variable", "date"], "observations")
    require_columns(releases, ["variable", "date", "release_date"], "releases")
    now = utc_timestamp(now, "now")
    t = thresholds
    seen = observations
    if value_column:
        require_columns(observations, [value_column], "observations")
        seen = observations[observations[value_column].notna()]
    newest = pd.to_datetime(seen["date"]).groupby(seen["variable"]).max()
    released = pd.to_datetime(releases["release_date"])
    if not isinstance(released.dtype, pd.DatetimeTZDtype):
        released = released.dt.tz_localize("UTC")
    due_at = released.dt.tz_convert("UTC") + pd.Timedelta(hours=t.grace_hours)
    due = releases.assign(due_at=due_at, date=pd.to_datetime(releases["date"]))[due_at <= now]
    variables = pd.Index(releases["variable"].unique())
    last = pd.to_datetime(newest.reindex(variables))
    unmet = due[due["date"] > due["variable"].map(newest).fillna(pd.Timestamp.min)]
    oldest_unmet = unmet.groupby("variable")["due_at"].min().reindex(variables)
    expected = due.groupby("variable")["date"].max().reindex(variables)
    late = ((now - oldest_unmet) / HOUR).fillna(0.0).to_numpy(dtype=float)
    table = pd.DataFrame(
        {
            "variable": variables.to_numpy(dtype=object),
            "last_date": last.to_numpy(),
            "expected_date": expected.to_numpy(),
            "due_at": oldest_unmet.to_numpy(),
            "late_hours": late,
            "freshness": freshness(late, t.warn_after_hours, t.error_after_hours),
            "status": status_where(late, t.warn_after_hours, t.error_after_hours),
        }
    )
    return severity_order(table, "late_hours", "variable", ascending=[False, True])


def indicator_staleness(
    observations: pd.DataFrame,
    releases: pd.DataFrame,
    now: Instant,
    *,
    value_column: str | None = "value",
    thresholds: IndicatorStalenessThresholds = IndicatorStalenessThresholds(),  # noqa: B008
) -> Finding:
    """WARN when a due release's observation is more than ``warn_after_hours`` late, ERROR
    beyond ``error_after_hours``."""
    t = thresholds
    table = indicator_staleness_by_variable(
        observations, releases, now, value_column=value_column, thresholds=t
    )
    late = table[table["status"] != "PASS"].head(MAX_OFFENDING_ROWS)
    offending = pd.DataFrame(
        {
            "variable": late["variable"],
            "date": late["last_date"],
            "expected_date": late["expected_date"],
            "due_at": late["due_at"],
            "late_hours": late["late_hours"],
            "threshold": np.where(
                late["late_hours"] > t.error_after_hours, t.error_after_hours, t.warn_after_hours
            ),
            "status": late["status"],
        }
    ).reset_index(drop=True)
    hours = table["late_hours"].to_numpy()
    figures = lag_figures(table, hours, t.warn_after_hours, t.error_after_hours, "hours")
    figures.pop("never_observed")
    named = [
        f"{v} ({wording.day(e)} due, last {'none' if pd.isna(d) else wording.day(d)}, "
        f"{wording.number(h)} h late)"
        for v, d, e, h in zip(
            offending["variable"], offending["date"], offending["expected_date"],
            offending["late_hours"], strict=True,
        )
    ]  # fmt: skip
    as_of = now_text(now)
    if named:
        n = int((table["status"] != "PASS").sum())
        summary = f"{wording.plural(n, 'variable')} late as of {as_of}: {wording.listing(named, n)}"
    else:
        summary = (
            f"all {wording.plural(len(table), 'variable')} have every due release as of {as_of}"
        )
    return Finding("indicator_staleness", status_of(table["status"]), figures, offending, summary)
