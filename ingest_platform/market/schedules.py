"""The market job and its schedule: each weekday partition is filled once it has closed."""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from ingest_platform.core.partitions import MARKET_TIMEZONE, market_day_partitions
from ingest_platform.market.schema import GROUP

market_bars_job = define_asset_job(
    "market_bars_job",
    selection=AssetSelection.groups(GROUP),
    description="Daily bars from every source, then the consolidated market_bars.",
)


def latest_closed_market_day(now: dt.datetime) -> str | None:
    """The newest weekday partition that has ended by `now` (None before the first one)."""
    keys = market_day_partitions.get_partition_keys(current_time=now)
    return keys[-1] if keys else None


@schedule(
    job=market_bars_job,
    cron_schedule="30 1 * * 2-6",  # Tue-Sat 01:30 New York: after each weekday partition ends
    execution_timezone=MARKET_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Fill the weekday that just ended (only what the lake is missing). A holiday "
    "is filled too: FX trades on it, and the partition records the market as closed.",
)
def market_bars_daily(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    key = latest_closed_market_day(now)
    if key is None:
        return SkipReason("no market partition has ended yet")
    return RunRequest(run_key=f"market_bars_daily:{key}", partition_key=key)
