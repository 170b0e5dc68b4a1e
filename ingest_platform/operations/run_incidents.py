"""Incidents from failed runs: what the alert says, and which later run ends the incident.

A failed run is an event, not a state, so its incident lives on the run itself: the run failure
sensor tags the run (``ingest_platform/alert: open``, with the channels that failed to take it
in ``ingest_platform/alert_pending``) and the recovery sensor finds the open ones by that tag,
retries the pending channels, and resolves each incident when a later run of the same job over
the same partitions succeeded (``ingest_platform/alert: resolved``). The tags are in the
instance and show in the UI's run page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster_shared.error import SerializableErrorInfo

from ingest_platform.operations.alerts import Alert, first_line

ALERT_TAG = "ingest_platform/alert"
DELIVERY_TAG = "ingest_platform/alert_delivery"
#: Channels that have not taken the firing alert yet (comma-separated; empty: all took it).
PENDING_TAG = "ingest_platform/alert_pending"
TRIES_TAG = "ingest_platform/alert_tries"
OPEN, RESOLVED = "open", "resolved"
PARTITION_TAG = "dagster/partition"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
#: Assets named in an alert (the rest are counted).
ASSETS_LISTED = 5


def run_incident_key(run_id: str) -> str:
    return f"run:{run_id}"


def partition_of(run: DagsterRun) -> str | None:
    """The run's partition, or its range as ``first...last``."""
    tags = run.tags
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    if tags.get(RANGE_START) and tags.get(RANGE_END):
        return f"{tags[RANGE_START]}...{tags[RANGE_END]}"
    return None


def run_window(instance: DagsterInstance, run_id: str) -> str | None:
    run = instance.get_run_by_id(run_id)
    return partition_of(run) if run is not None else None


def run_assets(instance: DagsterInstance, run: DagsterRun) -> list[str]:
    """The assets the run was to materialize: its selection, else (a job that selects all of
    its assets) those it planned to materialize."""
    if run.asset_selection:
        return sorted(k.to_user_string() for k in run.asset_selection)
    planned = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    keys = {e.dagster_event.asset_key for e in planned if e.dagster_event is not None}
    return sorted(k.to_user_string() for k in keys if k is not None)


def _listed(keys: Sequence[str]) -> str | None:
    if not keys:
        return None
    more = len(keys) - ASSETS_LISTED
    return ", ".join(keys[:ASSETS_LISTED]) + (f" (+{more} more)" if more > 0 else "")


_MODULE_PATH = re.compile(r"^(?:[A-Za-z_][\w]*\.)+(?=[A-Za-z_]\w*: )")


def error_text(error: SerializableErrorInfo) -> str:
    """The error a person wants: the user's exception under Dagster's step wrapper, as
    ``Class: message`` (module paths dropped)."""
    while error.cause is not None and error.cls_name in WRAPPERS:
        error = error.cause
    return _MODULE_PATH.sub("", error.message.strip())


#: Dagster's wrappers around the user code's own exception.
WRAPPERS = ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError")


def failure_reason(step_failures: Sequence[DagsterEvent], run_failure: DagsterEvent | None) -> str:
    """The first step failure's error (what went wrong), else the run failure's message."""
    for event in step_failures:
        data = event.step_failure_data
        if data is not None and data.error is not None:
            return f"step {event.step_key}: {error_text(data.error)}"
    return (run_failure.message if run_failure is not None else None) or "the run failed"


def step_failures_of(instance: DagsterInstance, run_id: str) -> list[DagsterEvent]:
    entries = instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    return [e.dagster_event for e in entries if e.dagster_event is not None]


def run_failure_event(instance: DagsterInstance, run_id: str) -> DagsterEvent | None:
    entries = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return entries[-1].dagster_event if entries else None


def run_failure_alert(
    run: DagsterRun,
    assets_planned: Sequence[str],
    step_failures: Sequence[DagsterEvent],
    run_failure: DagsterEvent | None,
    link: Callable[[str | None], str | None],
) -> Alert:
    where = {"job": run.job_name}
    assets = _listed(assets_planned)
    if assets:
        where["assets"] = assets
    partition = partition_of(run)
    if partition:
        where["partition"] = partition
    where["run"] = run.run_id
    return Alert(
        key=run_incident_key(run.run_id),
        kind="run_failure",
        summary=f"run of {run.job_name} failed",
        where=where,
        reason=first_line(failure_reason(step_failures, run_failure)),
        link=link(run.run_id),
    )


def _same_window(failed: DagsterRun) -> dict[str, str]:
    return {k: v for k, v in failed.tags.items() if k in (PARTITION_TAG, RANGE_START, RANGE_END)}


def recovery_of(instance: DagsterInstance, failed: DagsterRun) -> DagsterRun | None:
    """A run created after ``failed`` that succeeded: same job, same partition tags, and (for
    an asset run) every asset the failed run selected."""
    record = instance.get_run_record_by_id(failed.run_id)
    if record is None:
        return None
    later = instance.get_runs(
        filters=RunsFilter(
            job_name=failed.job_name,
            statuses=[DagsterRunStatus.SUCCESS],
            tags=_same_window(failed),
            created_after=record.create_timestamp,
        ),
        limit=25,
    )
    wanted = set(failed.asset_selection or ())
    for run in later:
        if run.run_id != failed.run_id and wanted <= set(run.asset_selection or wanted):
            return run
    return None


def open_incident_runs(instance: DagsterInstance, limit: int = 100) -> list[DagsterRun]:
    """Failed runs whose incident is open (delivered or still pending)."""
    return list(
        instance.get_runs(
            filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={ALERT_TAG: OPEN}),
            limit=limit,
        )
    )
