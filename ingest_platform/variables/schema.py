"""Pandera model of `variable_series`.

Partitioned like `economic_indicators`, by the month a value became known: a market close is
known at its session's close, a crypto close at the end of its UTC day, an economic value at
its vintage (or publication lag). One partitioning for every variable means one as-of read for
all of them, and a finished month is never rewritten by a later revision.
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

GROUP = "registry"
BASES = ("vintages", "publication_lag", "market_close")


class VariableSeries(DatasetModel):
    """One row per (variable, observation date, vintage), under the registry's names."""

    variable: Series[str] = pa.Field(description="Registry variable.")
    source: Series[str] = pa.Field(
        isin=["fred", "worldbank", "market", "kraken"], description="Where it is read from."
    )
    series_id: Series[str] = pa.Field(description="Series, INDICATOR/COUNTRY, symbol or pair.")
    date: Series[pd.Timestamp] = pa.Field(description="Observation date (session, day, period).")
    value: Series[float] = pa.Field(nullable=True, description="The value; null if missing.")
    realtime_start: Series[pd.Timestamp] = pa.Field(description="First day it was published.")
    realtime_end: Series[pd.Timestamp] = pa.Field(
        nullable=True, description="Last day it was the published one (null: still current)."
    )
    known_at: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs=UTC, description="When the value became known (UTC)."
    )
    knowledge_basis: Series[str] = pa.Field(
        isin=list(BASES), description="vintages, publication_lag or market_close."
    )

    @pa.dataframe_check(description="(variable, date, realtime_start) is unique")
    def one_row_per_vintage(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["variable", "date", "realtime_start"]).any()


VARIABLE_SERIES = Dataset(
    name="variable_series",
    model=VariableSeries,
    group=GROUP,
    key=("variable", "date", "realtime_start"),
    partitioning=KNOWN_MONTHS,
    freshness=FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=30)
    ),
    description="Every mapped registry variable (economic, market, crypto) as one long "
    "point-in-time table under the registry's names, partitioned by the month each value "
    "became known: what a model trains on. Read it with ingest_platform.asof.",
)
