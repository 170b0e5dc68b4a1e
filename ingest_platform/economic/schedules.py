"""When the economic datasets refresh by themselves.

- ``economic_indicators_daily`` (07:00 UTC): the month in progress, so a release lands the
  morning after it is published and staleness stays within its grace period;
- ``economic_indicators_monthly`` (the 2nd, 06:00 UTC): the month just ended and the two
  before it, again. FRED sometimes adds or corrects vintages of recent months after the fact
  (ALFRED back-fills); re-reading three months catches them, and months whose content did not
  change are not rewritten;
- ``economic_release_calendar_weekly`` (Mondays 05:00 UTC): past and scheduled release dates.
"""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from ingest_platform.economic.schema import ECONOMIC_INDICATORS, ECONOMIC_RELEASE_CALENDAR

economic_indicators_job = define_asset_job(
    "economic_indicators_job",
    selection=AssetSelection.assets(ECONOMIC_INDICATORS.name),
    description="Every vintage of every mapped FRED and World Bank series, by month known.",
)
economic_release_calendar_job = define_asset_job(
    "economic_release_calendar_job",
    selection=AssetSelection.assets(ECONOMIC_RELEASE_CALENDAR.name),
    description="Past and scheduled release dates of the mapped FRED releases.",
)


def month_key(day: dt.date) -> str:
    return day.replace(day=1).isoformat()


def months_back(day: dt.date, count: int) -> str:
    """The first day of the month `count` months before `day`'s month."""
    month = day.year * 12 + day.month - 1 - count
    return dt.date(month // 12, month % 12 + 1, 1).isoformat()


def _now(context: ScheduleEvaluationContext) -> dt.datetime:
    return context.scheduled_execution_time or dt.datetime.now(dt.UTC)


@schedule(
    job=economic_indicators_job,
    cron_schedule="0 7 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The month in progress, every morning: releases land the day after.",
)
def economic_indicators_daily(context: ScheduleEvaluationContext) -> RunRequest:
    today = _now(context).date()
    key = month_key(today)
    return RunRequest(run_key=f"economic_indicators_daily:{today}", partition_key=key)


@schedule(
    job=economic_indicators_job,
    cron_schedule="0 6 2 * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The month just ended, with the two before it re-read for late vintages.",
)
def economic_indicators_monthly(context: ScheduleEvaluationContext) -> RunRequest:
    today = _now(context).date()
    first, last = months_back(today, 3), months_back(today, 1)
    first = max(first, ECONOMIC_INDICATORS.first_key or first)
    return RunRequest(
        run_key=f"economic_indicators_monthly:{last}",
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
    )


@schedule(
    job=economic_release_calendar_job,
    cron_schedule="0 5 * * 1",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Past and scheduled release dates, weekly.",
)
def economic_release_calendar_weekly(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(run_key=f"economic_release_calendar:{_now(context).date()}")


ECONOMIC_JOBS = [economic_indicators_job, economic_release_calendar_job]
ECONOMIC_SCHEDULES = [
    economic_indicators_daily,
    economic_indicators_monthly,
    economic_release_calendar_weekly,
]
