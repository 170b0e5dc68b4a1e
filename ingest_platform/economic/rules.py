"""Rules for economic indicators, as plain functions: when a value became known, and how
vintages become immutable monthly partitions."""

from __future__ import annotations

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
        same = (
            new.loc[common, VALUE_COLUMNS].astype(object).fillna("<na>")
            == old.loc[common, VALUE_COLUMNS].astype(object).fillna("<na>")
        ).all(axis=1)
        unchanged = same[same].index
        new.loc[unchanged, "ingested_at"] = old.loc[unchanged, "ingested_at"]
    return new.reset_index()[COLUMNS]
