"""Pandera models of the economic datasets: indicators by vintage, and the release calendar.

`economic_indicators` is partitioned by *when a value became known* (the month of
``known_at``), not by the observation date: a revision published in May lands in May's
partition next to May's first releases, and no finished month is ever rewritten by a later
revision. The first partition also holds what was already known when the dataset starts.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pandera.pandas as pa
from dagster import FreshnessPolicy
from pandera.typing import Series

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.partitions import KNOWN_MONTHS
from ingest_platform.core.schema import UTC, DatasetModel

GROUP = "economic"
KNOWLEDGE_BASES = ("vintages", "publication_lag")
ECONOMIC_SOURCES = ("fred", "worldbank")


class EconomicIndicators(DatasetModel):
    """One row per (series, observation date, vintage): a value as published on a day."""

    variable: Series[str] = pa.Field(description="Registry variable the series is mapped to.")
    series_id: Series[str] = pa.Field(
        description="FRED series id, or World Bank INDICATOR/COUNTRY."
    )
    source: Series[str] = pa.Field(isin=list(ECONOMIC_SOURCES), description="fred or worldbank.")
    date: Series[pd.Timestamp] = pa.Field(description="Observation date (start of its period).")
    value: Series[float] = pa.Field(
        nullable=True, description="The value; null when the vintage says missing (FRED '.')."
    )
    realtime_start: Series[pd.Timestamp] = pa.Field(
        description="First day this value was the published one (FRED's real-time start)."
    )
    realtime_end: Series[pd.Timestamp] = pa.Field(
        nullable=True,
        description="Last day it was the published one, when superseded within its partition's "
        "month; null while still current then (a later revision lands in a later partition).",
    )
    known_at: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs=UTC,
        description="When the value became known (UTC): the start of its real-time period, or "
        "period end + the registry's publication lag. Never the ingestion time.",
    )
    knowledge_basis: Series[str] = pa.Field(
        isin=list(KNOWLEDGE_BASES), description="vintages or publication_lag."
    )
    ingested_at: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs=UTC, description="When the platform fetched the row (UTC)."
    )

    @pa.dataframe_check(description="(series_id, date, realtime_start) is unique")
    def one_row_per_vintage(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["series_id", "date", "realtime_start"]).any()

    @pa.dataframe_check(description="realtime_end >= realtime_start")
    def periods_are_ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["realtime_end"].isna() | (df["realtime_end"] >= df["realtime_start"])


class EconomicReleaseCalendar(DatasetModel):
    """Past and scheduled release dates of every mapped FRED series' release."""

    release_id: Series[int] = pa.Field(description="FRED release id.")
    release_name: Series[str] = pa.Field(description="FRED release name.")
    date: Series[pd.Timestamp] = pa.Field(description="Release date.")
    series_id: Series[str] = pa.Field(description="A mapped series published by the release.")
    scheduled: Series[bool] = pa.Field(description="True for a date after the fetch day.")

    @pa.dataframe_check(description="(release_id, date, series_id) is unique")
    def one_row_per_release_date(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["release_id", "date", "series_id"]).any()


ECONOMIC_INDICATORS = Dataset(
    name="economic_indicators",
    model=EconomicIndicators,
    group=GROUP,
    key=("series_id", "date", "realtime_start"),
    partitioning=KNOWN_MONTHS,
    # Refreshed every morning (releases land the day they are published).
    freshness=FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=30)
    ),
    description="Every mapped FRED series (every vintage, by real-time period) and World Bank "
    "indicator, in long format under the registry's variable names, partitioned by the month "
    "each value became known (known_at), so revisions land where they were published.",
)

ECONOMIC_RELEASE_CALENDAR = Dataset(
    name="economic_release_calendar",
    model=EconomicReleaseCalendar,
    group=GROUP,
    key=("release_id", "date", "series_id"),
    freshness=FreshnessPolicy.time_window(
        fail_window=dt.timedelta(days=14), warn_window=dt.timedelta(days=8)
    ),
    description="Past and scheduled release dates of every mapped FRED series' release (FRED "
    "release/dates with the dates that have no data yet): what makes staleness release-aware.",
)
