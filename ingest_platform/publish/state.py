"""What the Dagster instance knows about each dataset: its last materialization, its checks'
latest results. Read-only, no network: the metadata asset and `ingest-platform status` share it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dagster import AssetCheckEvaluation, AssetCheckKey, AssetKey, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


@dataclass(frozen=True)
class Materialization:
    run_id: str
    timestamp: float
    partition: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "at": dt.datetime.fromtimestamp(self.timestamp, dt.UTC).isoformat(),
            "partition": self.partition,
        }


@dataclass(frozen=True)
class CheckResult:
    asset: str
    check: str
    passed: bool | None  # None: planned or running, no result yet
    severity: str | None
    description: str
    timestamp: float
    run_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "severity": self.severity,
            "description": self.description,
            "at": dt.datetime.fromtimestamp(self.timestamp, dt.UTC).isoformat(),
            "run_id": self.run_id,
        }

    @property
    def failing_error(self) -> bool:
        return self.passed is False and self.severity == "ERROR"


def last_materialization(instance: DagsterInstance, asset: str) -> Materialization | None:
    event = instance.get_latest_materialization_event(AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return None
    return Materialization(event.run_id, event.timestamp, event.asset_materialization.partition)


def latest_checks(
    instance: DagsterInstance, check_keys: Iterable[AssetCheckKey]
) -> list[CheckResult]:
    """The latest completed evaluation of each check (checks never run are left out)."""
    keys = list(check_keys)
    if not keys:
        return []
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    out = []
    for key, record in sorted(records.items(), key=lambda item: str(item[0])):
        if record.status == AssetCheckExecutionRecordStatus.PLANNED or record.event is None:
            continue
        event = record.event.dagster_event
        data = event.event_specific_data if event is not None else None
        if not isinstance(data, AssetCheckEvaluation):
            continue
        out.append(
            CheckResult(
                asset=key.asset_key.to_user_string(),
                check=key.name,
                passed=bool(data.passed),
                severity=data.severity.value if data.severity else None,
                description=(data.description or "")[:500],
                timestamp=record.create_timestamp,
                run_id=record.run_id,
            )
        )
    return out
