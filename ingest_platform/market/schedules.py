"""The market job and its schedule: each weekday partition is filled once its sessions have
closed and settled."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from ingest_platform.core import calendars
from ingest_platform.core.partitions import MARKET_TIMEZONE, market_day_partitions
from ingest_platform.market import rules
from ingest_platform.market.schema import GROUP

market_bars_job = define_asset_job(
    "market_bars_job",
    selection=AssetSelection.groups(GROUP),
    description="Daily bars from every source, then the consolidated market_bars.",
)


def latest_settled_market_day(now: dt.datetime) -> str | None:
    """The newest weekday partition whose sessions (NYSE and FX alike) have all closed and
    settled by `now`; None before the first one."""
    stamp = pd.Timestamp(now).tz_convert("UTC") if now.tzinfo else pd.Timestamp(now, tz="UTC")
    every = set(calendars.CALENDARS)
    for key in reversed(market_day_partitions.get_partition_keys(current_time=now)):
        if rules.settled_calendars(key, every, stamp, rules.SETTLE) == every:
            return key
    return None


@schedule(
    job=market_bars_job,
    # 20:45 New York, Monday to Friday: after the NYSE close (16:00) and the FX session's end
    # (00:00 UTC), each plus the settle delay, so the day's bars are final.
    cron_schedule="45 20 * * 1-5",
    execution_timezone=MARKET_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Fill the weekday whose sessions just closed (only what the lake is missing). "
    "A holiday is filled too: FX trades on it, and the partition records the market as "
    "closed.",
)
def market_bars_daily(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    key = latest_settled_market_day(now)
    if key is None:
        return SkipReason("no market partition has closed and settled yet")
    return RunRequest(run_key=f"market_bars_daily:{key}", partition_key=key)
