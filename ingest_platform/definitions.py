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
from ingest_platform.streaming.kraken.job import (
    STREAM_ASSETS,
    STREAM_JOBS,
    STREAM_SENSORS,
    stream_resources,
)

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
    # The sandbox imposes no limits, so the local ones are lifted (nobody waits) and its calls
    # are counted in a budget file of its own, never against a real key's. The secondary
    # sources keep free-tier-sized rotating samples; Alpha Vantage serves full histories, as
    # its premium tier does, so a backfill has something to reconcile.
    budgets = str(settings.data_dir() / "budgets" / "sandbox_call_budgets.sqlite")
    return {
        "yahoo": YahooFinance(base_url=f"{sandbox_url}/yahoo"),
        "alpha_vantage": AlphaVantage(
            api_key=EnvVar("ALPHA_VANTAGE_API_KEY"),
            base_url=f"{sandbox_url}/alphavantage",
            calls_per_minute=100_000,
            daily_call_limit=None,
            budget_path=budgets,
            outputsize="full",
        ),
        "polygon": Polygon(
            api_key=EnvVar("POLYGON_API_KEY"),
            base_url=f"{sandbox_url}/polygon",
            calls_per_minute=100_000,
            budget_path=budgets,
            sample_size=25,
        ),
    }


def build_definitions(sandbox_url: str | None = None) -> Definitions:
    """Definitions with resources for the configured data folders and sources.

    `sandbox_url` (default: $INGEST_PLATFORM_SANDBOX_URL) points every source at a local
    sandbox, so the UI and the CLI can run the real pipeline with no network and no keys.
    """
    sandbox_url = sandbox_url or settings.sandbox_url()
    kraken_url = settings.sandbox_kraken_url()
    return Definitions(
        assets=[
            reference.instruments,
            reference.trading_sessions,
            reference.exchange_holidays,
            *market.MARKET_ASSETS,
            *STREAM_ASSETS,
        ],
        jobs=[reference_job, market_job, *STREAM_JOBS],
        schedules=[market_bars_daily],
        sensors=[*STREAM_SENSORS],
        resources={
            "lake": ParquetLake(root=settings.lake_root()),
            "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
            **source_resources(sandbox_url),
            # Against the sandbox, top-of-book rows every 2 s so a short demo logs some too.
            **(
                stream_resources(url=kraken_url, top_interval=2.0)
                if kraken_url
                else stream_resources()
            ),
        },
    )


defs = build_definitions()
