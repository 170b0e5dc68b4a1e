"""Economic indicators (every vintage of every mapped series) and the release calendar.

`economic_indicators` runs over a range of monthly partitions in one run: one request per FRED
series (every vintage whose real-time period starts in or after the range's first month) and
one per World Bank indicator and country, then each month's partition holds what became known
in that month. The series come from `variable_mappings`: what the registry maps is what is
ingested, under the registry's names.
"""

import datetime as dt
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.core.dataset import record_partitions, record_run
from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.core.metadata import markdown_table, shortlist
from ingest_platform.economic import rules
from ingest_platform.economic.resources import Fred, WorldBank
from ingest_platform.economic.schema import ECONOMIC_INDICATORS, ECONOMIC_RELEASE_CALENDAR
from ingest_platform.economic.sources.batch import EconomicFetch, fetch_each
from ingest_platform.quality.factory import failure_rate_result
from ingest_platform.registry.schema import VARIABLE_MAPPINGS

FAILURE_CHECK = "fetch_failure_rate"
#: Observations from this date on are kept (every vintage of each): five years of history
#: before the first partition, for models that need a lookback.
OBSERVATION_START = dt.date(2018, 1, 1)
#: The release calendar starts here (past dates) and runs to FRED's scheduled future dates.
CALENDAR_START = dt.date(2022, 1, 1)


class EconomicConfig(Config):
    """Run configuration of `economic_indicators` (set it in the launchpad)."""

    variables: list[str] = Field(
        default=[],
        description="Registry variables to ingest; default: every FRED and World "
        "Bank variable the registry maps.",
    )
    max_failure_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Fraction of series allowed to fail before the run's check fails (0..1).",
    )


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


def _fred(
    fred: Fred, mappings: pd.DataFrame, realtime_start: dt.date, now: pd.Timestamp
) -> tuple[EconomicFetch, dict[str, Any]]:
    source = fred.source()
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

    result = fetch_each(
        "fred", list(rows.index), fetch_one, _empty, fred.threads, redact=source.http.redact
    )
    return result, source.http.stats.as_dict()


def _worldbank(
    worldbank: WorldBank, mappings: pd.DataFrame, now: pd.Timestamp
) -> tuple[EconomicFetch, dict[str, Any]]:
    source = worldbank.source()
    rows = mappings[mappings["source"] == "worldbank"].set_index("series_id")

    def fetch_one(series_id: str) -> pd.DataFrame:
        row = rows.loc[series_id]
        indicator, country = series_id.split("/", 1)
        frame = source.indicator(indicator, country, OBSERVATION_START.year, now.year)
        return rules.from_publication_lag(
            frame, row["variable"], "worldbank", series_id, row["frequency"],
            int(row["lag_days"]), now,
        )  # fmt: skip

    result = fetch_each(
        "worldbank", list(rows.index), fetch_one, _empty, worldbank.threads, source.http.redact
    )
    return result, source.http.stats.as_dict()


def _empty() -> pd.DataFrame:
    return ECONOMIC_INDICATORS.empty_frame()


@asset(
    **ECONOMIC_INDICATORS.asset_kwargs(
        deps=[VARIABLE_MAPPINGS.name],
        pool="fred",
        check_specs=[
            AssetCheckSpec(
                FAILURE_CHECK,
                asset=ECONOMIC_INDICATORS.name,
                blocking=True,
                description="Share of series FRED or the World Bank failed to deliver, against "
                "the run's max_failure_rate (default 0: every mapped series must arrive).",
            )
        ],
    )
)
def economic_indicators(
    context: AssetExecutionContext,
    config: EconomicConfig,
    lake: ParquetLake,
    fred: Fred,
    worldbank: WorldBank,
) -> MaterializeResult:
    keys = sorted(context.partition_keys)
    now = settings.now()
    mappings = economic_mappings(lake, config.variables)
    # FRED returns every vintage whose real-time period overlaps the requested one, with its
    # start clipped to the requested start. Asking from the day before the first month makes
    # every clipped row fall on that day: it belongs to the month before (not this run's), or,
    # for the first partition, is what was already known when the dataset starts.
    realtime_start = dt.date.fromisoformat(keys[0]) - dt.timedelta(days=1)
    fred_fetch, fred_http = _fred(fred, mappings, realtime_start, now)
    wb_fetch, wb_http = _worldbank(worldbank, mappings, now)
    fetched = pd.concat(
        [f.frame for f in (fred_fetch, wb_fetch) if len(f.frame)], ignore_index=True
    )
    failures = {**fred_fetch.failure_messages(), **wb_fetch.failure_messages()}
    for key, message in sorted(failures.items()):
        context.log.warning("%s: %s", key, message)
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
    record_partitions(context, write, _partition_figures(write.partitions))
    record_run(
        context,
        ECONOMIC_INDICATORS.name,
        {
            "run_partitions": MetadataValue.text(f"{keys[0]}..{keys[-1]} ({len(keys)})"),
            "series_requested": MetadataValue.int(len(mappings)),
            "series_failed": MetadataValue.int(len(failures)),
            "fred_requests": MetadataValue.int(int(fred_http["requests"])),
            "worldbank_requests": MetadataValue.int(int(wb_http["requests"])),
            "rows_fetched": MetadataValue.int(len(fetched)),
            "rows_not_yet_known": MetadataValue.int(int(not_yet.sum())),
            "partitions_written": MetadataValue.int(write.rewritten),
            "partitions_unchanged": MetadataValue.int(write.unchanged),
            "failed": markdown_table(
                [{"series": k, "error": v} for k, v in sorted(failures.items())]
            ),
        },
    )
    requested = len(fred_fetch.requested) + len(wb_fetch.requested)
    return MaterializeResult(
        check_results=[
            failure_rate_result(
                ECONOMIC_INDICATORS.name,
                FAILURE_CHECK,
                failures,
                requested,
                config.max_failure_rate,
                what="series",
            )
        ]
    )


def _partition_figures(partitions: dict) -> dict[str, dict[str, Any]]:
    """Per month: how many values were first releases and how many revised an earlier one."""
    out: dict[str, dict[str, Any]] = {}
    for key, part in partitions.items():
        rows = part.rows
        vintages = rows[rows["knowledge_basis"] == "vintages"] if len(rows) else rows
        first_seen = (
            vintages.groupby(["series_id", "date"])["realtime_start"].transform("min")
            if len(vintages)
            else pd.Series(dtype="datetime64[ns]")
        )
        revisions = int((vintages["realtime_start"] > first_seen).sum()) if len(vintages) else 0
        out[key] = {
            "series": MetadataValue.int(int(rows["series_id"].nunique()) if len(rows) else 0),
            "variables": MetadataValue.int(int(rows["variable"].nunique()) if len(rows) else 0),
            "revisions_in_month": MetadataValue.int(revisions),
            "missing_values": MetadataValue.int(
                int(rows["value"].isna().sum()) if len(rows) else 0
            ),
        }
    return out


@asset(**ECONOMIC_RELEASE_CALENDAR.asset_kwargs(deps=[VARIABLE_MAPPINGS.name], pool="fred"))
def economic_release_calendar(
    context: AssetExecutionContext, lake: ParquetLake, fred: Fred
) -> MaterializeResult:
    """One ``series/release`` request per mapped FRED series and one ``release/dates`` request
    per release they belong to, scheduled future dates included."""
    mappings = economic_mappings(lake, [])
    series = sorted(mappings.loc[mappings["source"] == "fred", "series_id"])
    source = fred.source()
    today = settings.now().date()
    calendar = source.release_calendar(series, CALENDAR_START, today)
    write = ECONOMIC_RELEASE_CALENDAR.write_all(lake, calendar)
    (part,) = write.partitions.values()
    upcoming = calendar[calendar["scheduled"]].drop_duplicates(["release_id", "date"])
    context.log.info("%d releases, next: %s", calendar["release_id"].nunique(), upcoming.head(3))
    return MaterializeResult(
        metadata={
            **part.metadata(),
            "releases": MetadataValue.int(int(calendar["release_id"].nunique())),
            "series": MetadataValue.int(len(series)),
            "scheduled_dates": MetadataValue.int(len(upcoming)),
            "fred_requests": MetadataValue.int(int(source.http.stats.as_dict()["requests"])),
            "next_releases": markdown_table(
                upcoming[["date", "release_name"]]
                .head(10)
                .assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d"))
            ),
        }
    )


ECONOMIC_ASSETS = [economic_indicators, economic_release_calendar]
