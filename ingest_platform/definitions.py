"""The one place that assembles the code location's Definitions."""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetSelection,
    Definitions,
    EnvVar,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from ingest_platform import settings
from ingest_platform.assets import market, reference
from ingest_platform.assets.reference import ReferenceFiles
from ingest_platform.lake import ParquetLake
from ingest_platform.partitions import MARKET_TIMEZONE, market_day_partitions
from ingest_platform.resources import AlphaVantage, Polygon, YahooFinance

reference_job = define_asset_job(
    "reference_job",
    selection=AssetSelection.groups(reference.GROUP),
    description="Rebuild the instrument universe, trading sessions and exchange holidays.",
)

market_job = define_asset_job(
    "market_bars_job",
    selection=AssetSelection.groups(market.GROUP),
    description="Daily bars from every source, then the consolidated market_bars.",
)


@schedule(
    job=market_job,
    cron_schedule="30 1 * * 2-6",  # Tue-Sat 01:30 New York: after each weekday partition closes
    execution_timezone=MARKET_TIMEZONE,
    description="Fill the weekday that just ended (only what the lake is missing).",
)
def market_bars_daily(context: ScheduleEvaluationContext):
    key = market_day_partitions.get_last_partition_key(
        current_time=context.scheduled_execution_time
    )
    if key is None:
        return SkipReason("no market partition has closed yet")
    return RunRequest(run_key=f"market_bars_daily:{key}", partition_key=key)


def source_resources(sandbox_url: str | None = None) -> dict[str, Any]:
    """Source resources: the real providers, or every provider on a sandbox at `sandbox_url`.

    Keys always come from the environment through EnvVar, also for the sandbox (which accepts
    any non-empty key), so the demo exercises the same path as production.
    """
    if sandbox_url is None:
        return {
            "yahoo": YahooFinance(),
            "alpha_vantage": AlphaVantage(api_key=EnvVar("ALPHA_VANTAGE_API_KEY")),
            "polygon": Polygon(api_key=EnvVar("POLYGON_API_KEY")),
        }
    # The sandbox imposes no provider limits, so the local ones are lifted too and the
    # secondary sources reconcile the whole universe.
    return {
        "yahoo": YahooFinance(base_url=f"{sandbox_url}/yahoo"),
        "alpha_vantage": AlphaVantage(
            api_key=EnvVar("ALPHA_VANTAGE_API_KEY"),
            base_url=f"{sandbox_url}/alphavantage",
            calls_per_minute=100_000,
            daily_call_limit=100_000,
            sample_size=10_000,
            outputsize="full",
        ),
        "polygon": Polygon(
            api_key=EnvVar("POLYGON_API_KEY"),
            base_url=f"{sandbox_url}/polygon",
            calls_per_minute=100_000,
            sample_size=10_000,
            threads=4,
        ),
    }


def build_definitions(sandbox_url: str | None = None) -> Definitions:
    """Definitions with resources for the configured data folders and sources.

    `sandbox_url` (default: $INGEST_PLATFORM_SANDBOX_URL) points every source at a local
    sandbox, so the UI and the CLI can run the real pipeline with no network and no keys.
    """
    sandbox_url = sandbox_url or settings.sandbox_url()
    return Definitions(
        assets=[
            reference.instruments,
            reference.trading_sessions,
            reference.exchange_holidays,
            *market.MARKET_ASSETS,
        ],
        jobs=[reference_job, market_job],
        schedules=[market_bars_daily],
        resources={
            "lake": ParquetLake(root=settings.lake_root()),
            "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
            **source_resources(sandbox_url),
        },
    )


defs = build_definitions()
