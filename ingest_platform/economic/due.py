"""Which economic periods are due, from what the lake holds: the registry's frequencies and
declared lags, and the release calendar. The checks and the lake's metadata both judge
coverage by this one rule, so the two can never disagree on what "missing" means."""

from __future__ import annotations

import pandas as pd

from ingest_platform.core.lake import ParquetLake
from ingest_platform.economic import rules
from ingest_platform.economic.schema import ECONOMIC_RELEASE_CALENDAR
from ingest_platform.registry.schema import VARIABLE_MAPPINGS

#: The sources whose variables `economic_indicators` holds.
ECONOMIC_SOURCES = ("fred", "worldbank")


def expected_publications(lake: ParquetLake, rows: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """`rules.expected_publications` for `rows` (economic_indicators rows with ``variable``,
    ``series_id``, ``date``, ``realtime_start``) at `now`, with the registry and the release
    calendar read from the lake (a lake without a calendar judges by the lags alone)."""
    mappings = VARIABLE_MAPPINGS.read(lake)
    economic = mappings[mappings["source"].isin(ECONOMIC_SOURCES)]
    frequencies = dict(zip(economic["variable"], economic["frequency"], strict=True))
    declared = economic[economic["knowledge_basis"] == "publication_lag"]
    lags = dict(zip(declared["variable"], declared["lag_days"].astype(int), strict=True))
    calendar = (
        ECONOMIC_RELEASE_CALENDAR.read(lake, columns=["series_id", "date"])
        if lake.has_partition(ECONOMIC_RELEASE_CALENDAR.name)
        else pd.DataFrame(columns=["series_id", "date"])
    )
    variable_of = dict(zip(economic["series_id"], economic["variable"], strict=True))
    calendar = calendar.assign(variable=calendar["series_id"].map(variable_of)).dropna()
    return rules.expected_publications(rows, frequencies, calendar, now, lags)
