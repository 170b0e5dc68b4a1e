"""When publishing happens by itself.

- ``dataset_metadata_daily`` (08:00 UTC): metadata.json and the lake's README, after the
  night's runs (market 01:45 UTC, stream minute bars 00:15, economic 07:00, variable series
  07:30);
- ``dataset_metadata_after_backfill``: again after every successful backfill run, so the
  description never lags a big change by a day;
- ``warehouse_automation``: the warehouse assets' automation condition (eager, blocked by
  failed checks upstream) evaluated every 30 s, so a dataset is published after each update
  it gets, and never while a blocking check on it is failing (at WARN or ERROR).

All three ship running: a production user expects the published copies to stay fresh without
remembering to switch anything on.
"""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    run_status_sensor,
    schedule,
)

from ingest_platform.publish.assets import GROUP, METADATA_GROUP

BACKFILL_TAG = "dagster/backfill"

dataset_metadata_job = define_asset_job(
    "dataset_metadata_job",
    selection=AssetSelection.groups(METADATA_GROUP),
    description="metadata.json and README.md at the lake root.",
)


@schedule(
    job=dataset_metadata_job,
    cron_schedule="0 8 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Describe the lake every night, after the nightly runs.",
)
def dataset_metadata_daily(context: ScheduleEvaluationContext) -> RunRequest:
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    return RunRequest(run_key=f"dataset_metadata_daily:{now.date()}")


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    request_job=dataset_metadata_job,
    default_status=DefaultSensorStatus.RUNNING,
    description="Describe the lake again after each successful backfill run.",
    monitor_all_code_locations=False,
)
def dataset_metadata_after_backfill(context: RunStatusSensorContext) -> RunRequest | SkipReason:
    run = context.dagster_run
    if BACKFILL_TAG not in run.tags:
        return SkipReason(f"run {run.run_id} is not part of a backfill")
    if run.job_name == dataset_metadata_job.name:
        return SkipReason("the metadata run itself")
    return RunRequest(run_key=f"dataset_metadata_after:{run.run_id}")


warehouse_automation = AutomationConditionSensorDefinition(
    "warehouse_automation",
    target=AssetSelection.groups(GROUP),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Publishes each dataset to the warehouse after it is updated, unless a blocking "
    "check on it is failing (WARN or ERROR).",
)
