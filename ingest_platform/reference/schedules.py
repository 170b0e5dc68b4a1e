"""When the reference data refreshes by itself.

``reference_weekly`` (Monday 04:00 UTC) rebuilds the instrument universe, the trading sessions
and the exchange holidays from the shipped snapshots and exchange-calendars. Nothing in it
calls the network, so it ships running: the datasets' freshness policy fails after 14 days,
and sessions must be rebuilt at least yearly as calendars roll forward, so leaving it to a
person would make `ingest-platform status` fail two weeks after the last manual run.
"""

from __future__ import annotations

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    schedule,
)

from ingest_platform.core import settings
from ingest_platform.reference.jobs import reference_job


@schedule(
    job=reference_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Instruments, sessions and holidays from the shipped snapshots, weekly.",
)
def reference_weekly(context: ScheduleEvaluationContext) -> RunRequest:
    moment = context.scheduled_execution_time or settings.now()
    return RunRequest(run_key=f"reference_weekly:{moment.date().isoformat()}")
