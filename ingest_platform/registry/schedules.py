"""When `variable_mappings` refreshes by itself.

The registry ships with the code, so the mapping changes with a deploy or with the instrument
universe it is checked against (weekly, `reference_weekly` at 04:00 UTC). ``variable_mappings_
weekly`` re-maps half an hour after that, so a variable that lost its instrument is reported
within the week rather than when someone remembers to click Materialize.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from ingest_platform.core import settings
from ingest_platform.registry.schema import VARIABLE_MAPPINGS

variable_mappings_job = define_asset_job(
    "variable_mappings_job",
    selection=AssetSelection.assets(VARIABLE_MAPPINGS.name),
    description="Map the registry's variables to the sources and instruments that carry them.",
)


@schedule(
    job=variable_mappings_job,
    cron_schedule="30 4 * * 1",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Re-map the registry weekly, after the reference data refreshes.",
)
def variable_mappings_weekly(context: ScheduleEvaluationContext) -> RunRequest:
    moment = context.scheduled_execution_time or settings.now()
    return RunRequest(run_key=f"variable_mappings_weekly:{moment.date().isoformat()}")
