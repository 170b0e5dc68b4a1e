"""When publishing happens by itself.

- ``dataset_metadata_daily`` (08:00 UTC): metadata.json and the lake's README, after the
  night's runs (market 01:45 UTC, stream minute bars 00:15, economic 07:00, variable series
  07:30);
- ``dataset_metadata_after_updates``: again whenever any dataset was materialized after the last
  metadata.json (backfills, daily runs, rebased history, repairs), so the description never
  lags the lake;
- ``warehouse_automation`` (the publish automation): the warehouse assets' automation condition
  (eager, blocked by failed checks upstream), evaluated every 30 s, so a dataset is published
  after each update it gets, partition by partition (a split rebasing older partitions records a
  materialization for each, and each is republished), never while a blocking check on it is
  failing (at WARN or ERROR).

All three ship running: a production user expects the published copies to stay fresh without
remembering to switch anything on.
"""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from ingest_platform.publish.assets import GROUP, METADATA_GROUP
from ingest_platform.publish.catalogue import DATASETS

METADATA_ASSET = "dataset_metadata"
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]

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


def latest_storage_id(instance: DagsterInstance, asset: str) -> int:
    """The storage id of `asset`'s newest materialization (any partition), 0 if none."""
    records = instance.fetch_materializations(AssetKey(asset), limit=1).records
    return records[0].storage_id if records else 0


@sensor(
    job=dataset_metadata_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Describe the lake again whenever a dataset was materialized after the last "
    "metadata.json (a backfill, a daily run, a split rebasing history, a repair).",
)
def dataset_metadata_after_updates(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    """Compares storage ids, not ticks: "a dataset is newer than metadata.json" holds however
    many runs finish between two evaluations. (An automation condition's ``since_last_handled``
    misses an update that lands between the same two ticks as the metadata run itself.)"""
    described = latest_storage_id(context.instance, METADATA_ASSET)
    newest = max(latest_storage_id(context.instance, d.name) for d in DATASETS)
    if newest <= described:
        return SkipReason("metadata.json was written after the newest dataset materialization")
    running = context.instance.get_run_records(
        RunsFilter(job_name=dataset_metadata_job.name, statuses=IN_PROGRESS), limit=1
    )
    if running:
        return SkipReason("a dataset_metadata run is already in progress")
    return RunRequest(run_key=f"dataset_metadata_after:{newest}")


warehouse_automation = AutomationConditionSensorDefinition(
    "warehouse_automation",
    target=AssetSelection.groups(GROUP),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Publishes each changed partition of a dataset to the warehouse after it is "
    "updated, unless a blocking check on it is failing (WARN or ERROR).",
)
