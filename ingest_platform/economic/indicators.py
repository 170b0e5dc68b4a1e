"""The `economic_indicators` flow: fetch every mapped series, seal, merge and write by month.

Plain functions that know no Dagster: `ingest_indicators` takes the run's partition keys, the
sources and a standard logger, and returns a typed report (`IndicatorsIngest`); the asset in
`economic.assets` turns it into metadata and the failure-rate check.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd

from ingest_platform.core import settings
from ingest_platform.core.dataset import DatasetWrite
from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.core.metadata import shortlist
from ingest_platform.economic import rules
from ingest_platform.economic.schema import ECONOMIC_INDICATORS
from ingest_platform.economic.sources.batch import EconomicFetch, fetch_each
from ingest_platform.economic.sources.fred import FredSource
from ingest_platform.economic.sources.worldbank import WorldBankSource
from ingest_platform.registry.schema import VARIABLE_MAPPINGS

#: Observations from this date on are kept (every vintage of each): five years of history
#: before the first partition, for models that need a lookback.
OBSERVATION_START = dt.date(2018, 1, 1)


def economic_mappings(lake: ParquetLake, variables: list[str]) -> pd.DataFrame:
    """The mapped FRED and World Bank variables, from the `variable_mappings` dataset."""
    try:
        mappings = VARIABLE_MAPPINGS.read(lake)
    except LakeError as exc:
        raise LakeError(f"{exc}; materialize the `variable_mappings` asset first") from exc
    economic = mappings[mappings["source"].isin(["fred", "worldbank"])]
    if variables:
        unknown = sorted(set(variables) - set(economic["variable"]))
        if unknown:
            raise ValueError(f"not mapped to FRED or the World Bank: {shortlist(unknown)}")
        economic = economic[economic["variable"].isin(variables)]
    return economic.reset_index(drop=True)


def fetch_fred(
    source: FredSource,
    threads: int,
    mappings: pd.DataFrame,
    realtime_start: dt.date,
    now: pd.Timestamp,
) -> EconomicFetch:
    """Every mapped FRED series: its vintages, or its values on a publication lag."""
    rows = mappings[mappings["source"] == "fred"].set_index("series_id")

    def fetch_one(series_id: str) -> pd.DataFrame:
        row = rows.loc[series_id]
        if row["knowledge_basis"] == "vintages":
            observations = source.observations(
                series_id, start=OBSERVATION_START, realtime_start=realtime_start
            )
            return rules.from_vintages(observations, row["variable"], now)
        observations = source.observations(series_id, start=OBSERVATION_START, vintages=False)
        return rules.from_publication_lag(
            observations, row["variable"], "fred", series_id, row["frequency"],
            int(row["lag_days"]), now,
        )  # fmt: skip

    return fetch_each(
        "fred", list(rows.index), fetch_one, _empty, threads, redact=source.http.redact
    )


def fetch_worldbank(
    source: WorldBankSource, threads: int, mappings: pd.DataFrame, now: pd.Timestamp
) -> EconomicFetch:
    """Every mapped World Bank indicator and country, on its publication lag."""
    rows = mappings[mappings["source"] == "worldbank"].set_index("series_id")

    def fetch_one(series_id: str) -> pd.DataFrame:
        row = rows.loc[series_id]
        indicator, country = series_id.split("/", 1)
        frame = source.indicator(indicator, country, OBSERVATION_START.year, now.year)
        return rules.from_publication_lag(
            frame, row["variable"], "worldbank", series_id, row["frequency"],
            int(row["lag_days"]), now,
        )  # fmt: skip

    return fetch_each("worldbank", list(rows.index), fetch_one, _empty, threads, source.http.redact)


def _empty() -> pd.DataFrame:
    return ECONOMIC_INDICATORS.empty_frame()


@dataclass(frozen=True)
class IndicatorsIngest:
    """What one run of `economic_indicators` did: the report `ingest_indicators` returns."""

    #: The run's partition keys (months), sorted.
    keys: list[str]
    write: DatasetWrite
    #: Series that failed, with their (redacted) error.
    failures: dict[str, str]
    #: Series asked for, from FRED and the World Bank together.
    requested: int
    fred_requests: int
    worldbank_requests: int
    #: Rows kept from the answers, and rows dropped as not yet known at the run's clock.
    rows_fetched: int
    rows_not_yet_known: int


def ingest_indicators(
    lake: ParquetLake,
    mappings: pd.DataFrame,
    keys: list[str],
    fred: FredSource,
    fred_threads: int,
    worldbank: WorldBankSource,
    worldbank_threads: int,
    log: logging.Logger,
) -> IndicatorsIngest:
    """One request per mapped series, then each month's partition gets what became known in it.

    Failures are told to `log` (a standard logger: the asset passes its Dagster one) and named
    in the report; the series that arrived are written.
    """
    keys = sorted(keys)
    now = settings.now()
    # FRED returns every vintage whose real-time period overlaps the requested one, with its
    # start clipped to the requested start. Asking from the day before the first month makes
    # every clipped row fall on that day: it belongs to the month before (not this run's), or,
    # for the first partition, is what was already known when the dataset starts.
    realtime_start = dt.date.fromisoformat(keys[0]) - dt.timedelta(days=1)
    fred_fetch = fetch_fred(fred, fred_threads, mappings, realtime_start, now)
    wb_fetch = fetch_worldbank(worldbank, worldbank_threads, mappings, now)
    fetched = pd.concat(
        [f.frame for f in (fred_fetch, wb_fetch) if len(f.frame)], ignore_index=True
    )
    failures = {**fred_fetch.failure_messages(), **wb_fetch.failure_messages()}
    for key, message in sorted(failures.items()):
        log.warning("%s: %s", key, message)
    if fetched.empty:
        fetched = _empty()
    # A value a declared publication lag puts in the future is not known yet: it lands with
    # the run of the month it becomes known in.
    not_yet = fetched["known_at"] > now
    fetched = fetched[~not_yet]
    partition_of = ECONOMIC_INDICATORS.partition_keys_of(fetched["known_at"])
    fetched = rules.seal(fetched, partition_of)
    existing = ECONOMIC_INDICATORS.read_partitions(lake, keys)
    fresh = ECONOMIC_INDICATORS.split(fetched, keys)
    fetched_series = set(mappings["series_id"]) - set(failures)
    contents = {k: rules.merge_month(existing.get(k), fresh[k], fetched_series) for k in keys}
    write = ECONOMIC_INDICATORS.write(lake, contents, existing)
    return IndicatorsIngest(
        keys=keys,
        write=write,
        failures=failures,
        requested=len(fred_fetch.requested) + len(wb_fetch.requested),
        fred_requests=int(fred.http.stats.as_dict()["requests"]),
        worldbank_requests=int(worldbank.http.stats.as_dict()["requests"]),
        rows_fetched=len(fetched),
        rows_not_yet_known=int(not_yet.sum()),
    )
