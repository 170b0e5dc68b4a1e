"""`variable_series` refreshes every morning, after the market and economic runs."""

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

from ingest_platform.variables.schema import VARIABLE_SERIES

variable_series_job = define_asset_job(
    "variable_series_job",
    selection=AssetSelection.assets(VARIABLE_SERIES.name),
    description="The registry's variables as one point-in-time table.",
)


@schedule(
    job=variable_series_job,
    cron_schedule="30 7 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The month of yesterday (on the 1st: the month that just ended, completed).",
)
def variable_series_daily(context: ScheduleEvaluationContext) -> RunRequest:
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    yesterday = (now - dt.timedelta(days=1)).date()
    key = yesterday.replace(day=1).isoformat()
    return RunRequest(run_key=f"variable_series_daily:{now.date()}", partition_key=key)
