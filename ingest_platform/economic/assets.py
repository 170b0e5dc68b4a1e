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
from ingest_platform.core.dataset_assets import (
    asset_kwargs,
    content_metadata,
    record_partitions,
    record_run,
)
from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.metadata import markdown_table
from ingest_platform.economic.indicators import economic_mappings, ingest_indicators
from ingest_platform.economic.resources import Fred, WorldBank
from ingest_platform.economic.schema import ECONOMIC_INDICATORS, ECONOMIC_RELEASE_CALENDAR
from ingest_platform.quality.shared.factory import failure_rate_result
from ingest_platform.registry.schema import VARIABLE_MAPPINGS

FAILURE_CHECK = "fetch_failure_rate"
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


@asset(
    **asset_kwargs(
        ECONOMIC_INDICATORS,
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
    mappings = economic_mappings(lake, config.variables)
    run = ingest_indicators(
        lake,
        mappings,
        list(context.partition_keys),
        fred.source(),
        fred.threads,
        worldbank.source(),
        worldbank.threads,
        context.log,
    )
    keys, write, failures = run.keys, run.write, run.failures
    record_partitions(context, write, _partition_figures(write.partitions))
    record_run(
        context,
        ECONOMIC_INDICATORS.name,
        {
            "run_partitions": MetadataValue.text(f"{keys[0]}..{keys[-1]} ({len(keys)})"),
            "series_requested": MetadataValue.int(len(mappings)),
            "series_failed": MetadataValue.int(len(failures)),
            "fred_requests": MetadataValue.int(run.fred_requests),
            "worldbank_requests": MetadataValue.int(run.worldbank_requests),
            "rows_fetched": MetadataValue.int(run.rows_fetched),
            "rows_not_yet_known": MetadataValue.int(run.rows_not_yet_known),
            "partitions_written": MetadataValue.int(write.rewritten),
            "partitions_unchanged": MetadataValue.int(write.unchanged),
            "failed": markdown_table(
                [{"series": k, "error": v} for k, v in sorted(failures.items())]
            ),
        },
    )
    return MaterializeResult(
        check_results=[
            failure_rate_result(
                ECONOMIC_INDICATORS.name,
                FAILURE_CHECK,
                failures,
                run.requested,
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


@asset(**asset_kwargs(ECONOMIC_RELEASE_CALENDAR, deps=[VARIABLE_MAPPINGS.name], pool="fred"))
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
            **content_metadata(part),
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
