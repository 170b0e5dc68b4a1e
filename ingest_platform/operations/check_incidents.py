"""Incidents from the instance's check results: a blocking check whose latest evaluation failed
at ERROR (the ones that hold a publish back and fail the run)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dagster import AssetCheckEvaluation, AssetCheckKey, AssetCheckSeverity, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from ingest_platform.operations.alerts import Alert
from ingest_platform.operations.run_incidents import run_window


def check_incident_key(key: AssetCheckKey) -> str:
    return f"check:{key.asset_key.to_user_string()}:{key.name}"


def failing_blocking_checks(
    instance: DagsterInstance,
    check_keys: Iterable[AssetCheckKey],
    link: Callable[[str | None], str | None],
) -> tuple[dict[str, Alert], set[str]]:
    """The failing blocking ERROR checks as alerts, and the keys whose state is unknown now.

    A check being evaluated (its latest record is planned, no result yet) hides the previous
    result: it is unknown this tick, so an incident on it is neither opened nor resolved.
    """
    keys = list(check_keys)
    if not keys:
        return {}, set()
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    alerts: dict[str, Alert] = {}
    unknown: set[str] = set()
    for key, record in records.items():
        incident = check_incident_key(key)
        if record.status == AssetCheckExecutionRecordStatus.PLANNED or record.event is None:
            unknown.add(incident)
            continue
        event = record.event.dagster_event
        data = event.event_specific_data if event is not None else None
        if not isinstance(data, AssetCheckEvaluation):
            unknown.add(incident)
            continue
        if data.passed or data.severity != AssetCheckSeverity.ERROR or not data.blocking:
            continue
        run_id = record.run_id or None
        where = {"asset": key.asset_key.to_user_string(), "check": key.name}
        partition = data.partition or (run_window(instance, run_id) if run_id else None)
        if partition:
            where["partition"] = partition
        if run_id:
            where["run"] = run_id
        alerts[incident] = Alert(
            key=incident,
            kind="check_failure",
            summary=f"blocking check {key.name} on {key.asset_key.to_user_string()} failed (ERROR)",
            where=where,
            reason=data.description or "the check failed without a description",
            link=link(run_id),
        )
    return alerts, unknown
