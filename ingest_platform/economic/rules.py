"""Rules for economic indicators, as plain functions: when a value became known, and how
vintages become immutable monthly partitions."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ingest_platform.economic.schema import EconomicIndicators

COLUMNS = list(EconomicIndicators.to_schema().columns)
#: The values a change of which is a change of the row (ingested_at is not).
VALUE_COLUMNS = ["variable", "source", "value", "realtime_end", "known_at", "knowledge_basis"]


def period_end(dates: pd.Series, frequency: str) -> pd.Series:
    """The last day of the period each observation date starts (FRED and World Bank date an
    observation by the first day of its period)."""
    dates = pd.to_datetime(dates)
    if frequency == "annual":
        return dates + pd.offsets.YearEnd(0)
    if frequency == "quarterly":
        return dates + pd.offsets.QuarterEnd(0)
    if frequency == "monthly":
        return dates + pd.offsets.MonthEnd(0)
    if frequency == "weekly":
        return dates + pd.Timedelta(days=6)
    if frequency == "daily":
        return dates
    raise ValueError(f"unknown frequency {frequency!r}")


def from_vintages(
    observations: pd.DataFrame, variable: str, ingested_at: pd.Timestamp
) -> pd.DataFrame:
    """FRED rows (series_id, date, value, realtime_start, realtime_end) with exact knowledge:
    a value is known from the first day of its real-time period (ALFRED's convention: FRED
    dates its periods, it does not time them)."""
    frame = observations.assign(
        variable=variable,
        source="fred",
        known_at=pd.to_datetime(observations["realtime_start"]).dt.tz_localize("UTC"),
        knowledge_basis="vintages",
        ingested_at=ingested_at,
    )
    return frame[COLUMNS]


def from_publication_lag(
    observations: pd.DataFrame,
    variable: str,
    source: str,
    series_id: str,
    frequency: str,
    lag_days: int,
    ingested_at: pd.Timestamp,
) -> pd.DataFrame:
    """Rows of a source that keeps no vintages (World Bank, some FRED series): a value counts
    as known `lag_days` after its period ends, as the registry declares. One value per
    observation: what the source says today (its revisions are not tracked)."""
    known = period_end(observations["date"], frequency) + pd.Timedelta(days=lag_days)
    frame = pd.DataFrame(
        {
            "variable": variable,
            "series_id": series_id,
            "source": source,
            "date": pd.to_datetime(observations["date"]),
            "value": observations["value"].astype(float),
            "realtime_start": known.dt.normalize(),
            "realtime_end": pd.NaT,
            "known_at": known.dt.tz_localize("UTC"),
            "knowledge_basis": "publication_lag",
            "ingested_at": ingested_at,
        }
    )
    return frame[COLUMNS]


def seal(rows: pd.DataFrame, partition_of: pd.Series) -> pd.DataFrame:
    """Each row as its partition states it: a real-time end after the partition's month is
    not yet known at its end, so it is left open (null).

    This is what keeps a finished month immutable: a revision published later supersedes a
    value by being a newer row in a later partition, never by editing this one.
    """
    month_end = pd.to_datetime(partition_of) + pd.offsets.MonthEnd(0)
    later = rows["realtime_end"].notna() & (pd.to_datetime(rows["realtime_end"]) > month_end)
    return rows.assign(realtime_end=rows["realtime_end"].where(~later, pd.NaT))


def merge_month(
    existing: pd.DataFrame | None, fresh: pd.DataFrame, fetched_series: set[str]
) -> pd.DataFrame:
    """A month's new content: the fetched series exactly as the sources say now, every other
    series as it was (a series that failed this run keeps its rows). An unchanged row keeps
    its original ingested_at, so a re-run leaves the partition byte-for-byte unchanged."""
    if existing is None or existing.empty:
        return fresh
    kept = existing[~existing["series_id"].isin(fetched_series)]
    merged = pd.concat([p for p in (kept, fresh) if len(p)], ignore_index=True)
    if merged.empty:
        return fresh
    key = ["series_id", "date", "realtime_start"]
    old = existing.set_index(key)
    new = merged.set_index(key)
    common = new.index.intersection(old.index)
    if len(common):
        left, right = new.loc[common, VALUE_COLUMNS], old.loc[common, VALUE_COLUMNS]
        same = (left.eq(right) | (left.isna() & right.isna())).all(axis=1)  # null equals null
        unchanged = same[same].index
        new.loc[unchanged, "ingested_at"] = old.loc[unchanged, "ingested_at"]
    return new.reset_index()[COLUMNS]


def period_grid(
    first: pd.Timestamp, last: pd.Timestamp, frequency: str, weekends: bool = False
) -> pd.DatetimeIndex:
    """Observation dates (period starts) of `frequency` from `first` through `last`; a daily
    series has business days, or every day when it publishes `weekends` (FRED's DFF)."""
    if last < first:
        return pd.DatetimeIndex([])
    if frequency == "daily":
        return pd.date_range(first, last, freq="D") if weekends else pd.bdate_range(first, last)
    if frequency == "weekly":
        return pd.date_range(first, last, freq="7D")
    if frequency == "monthly":
        return pd.date_range(first, last, freq="MS")
    if frequency == "quarterly":
        return pd.date_range(first, last, freq="QS")
    if frequency == "annual":
        return pd.date_range(first, last, freq="YS")
    raise ValueError(f"unknown frequency {frequency!r}")


def expected_publications(
    rows: pd.DataFrame,
    frequencies: Mapping[str, str],
    calendar: pd.DataFrame,
    now: pd.Timestamp,
    lags: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """When each variable's observations should have been published: ``variable``, ``date``
    (observation period), ``release_date``.

    A series' lag from period end to first release is learned from its own vintages (a low
    quantile), or taken from the registry's declared lag (`lags`, publication_lag variables).
    Each period from the variable's first observation on is due on the first date of its
    release calendar on or after period end + lag (a release publishes on its own days, not
    on a lag's exact day), or at period end + lag when it has no calendar. Periods not due
    by `now` are not expected yet.
    """
    out = []
    today = now.tz_convert("UTC").tz_localize(None)
    for variable, own in rows.groupby("variable"):
        frequency = frequencies.get(str(variable))
        if frequency is None:
            continue
        first_release = own.groupby("date")["realtime_start"].min()
        ends = period_end(pd.Series(first_release.index), frequency)
        if lags and variable in lags:
            lag = pd.Timedelta(days=int(lags[str(variable)]))
        else:
            # Only observations whose first release the data can have seen: those whose period
            # ended after the data's earliest real-time start (an older one may have been
            # published before it, and shows a later vintage here).
            seen = (ends >= first_release.min()).to_numpy()
            released = pd.to_datetime(first_release.to_numpy()[seen])
            # A low quantile, not the median: the release calendar then picks the actual day,
            # and a period is never expected before its release could have happened.
            lag = (released - pd.to_datetime(ends.to_numpy()[seen])).to_series().quantile(0.1)
            if pd.isna(lag):
                continue
        weekends = bool((pd.DatetimeIndex(first_release.index).dayofweek >= 5).any())
        periods = period_grid(first_release.index.min(), today, frequency, weekends)
        due_after = period_end(pd.Series(periods), frequency) + lag
        # A release date somewhat before end + lag still counts: lags vary by a few days.
        slack = min(lag * 0.25, pd.Timedelta(days=5)) if lag > pd.Timedelta(0) else pd.Timedelta(0)
        dates = calendar.loc[calendar["variable"] == variable, "date"].sort_values().to_numpy()
        earliest = (due_after - slack).to_numpy()
        at = dates.searchsorted(earliest) if len(dates) else None
        if at is not None:
            release = pd.Series(
                [dates[i] if i < len(dates) else pd.NaT for i in at], dtype="datetime64[ns]"
            )
            release = release.fillna(due_after)
        else:
            release = due_after
        frame = pd.DataFrame({"variable": variable, "date": periods, "release_date": release})
        out.append(frame[frame["release_date"] <= today])
    if not out:
        return pd.DataFrame(columns=["variable", "date", "release_date"])
    return pd.concat(out, ignore_index=True)
