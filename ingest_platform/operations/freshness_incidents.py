"""Incidents from freshness: a dataset past its freshness policy.

Judged exactly as ``ingest-platform status`` judges it (`publish.status.freshness`, from the
dataset's Dagster freshness policy and its last materialization), so an alert and the status
table never disagree. A dataset never materialized is not alerted on: ``never`` is a new
install, not a dataset going stale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from dagster import DagsterInstance, FreshnessPolicy
from dagster._core.definitions.freshness import CronFreshnessPolicy, TimeWindowFreshnessPolicy

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.dataset_assets import freshness_policy
from ingest_platform.operations.alerts import Alert
from ingest_platform.publish import state
from ingest_platform.publish.status import freshness


def describe_policy(policy: FreshnessPolicy) -> str:
    if isinstance(policy, TimeWindowFreshnessPolicy):
        return f"fails after {policy.fail_window.to_timedelta()} without a materialization"
    if isinstance(policy, CronFreshnessPolicy):
        return (
            f"expects an update by each '{policy.deadline_cron}' ({policy.timezone}), within "
            f"{policy.lower_bound_delta} before it"
        )
    return type(policy).__name__


def stale_datasets(
    instance: DagsterInstance,
    datasets: Sequence[Dataset],
    now: float,
    link: Callable[[str | None], str | None],
) -> dict[str, Alert]:
    """An alert for each dataset whose freshness is ``stale`` now."""
    alerts: dict[str, Alert] = {}
    for dataset in datasets:
        policy = freshness_policy(dataset)
        if policy is None:
            continue
        last = state.last_materialization(instance, dataset.name)
        if last is None or freshness(policy, last.timestamp, now) != "stale":
            continue
        at = dt.datetime.fromtimestamp(last.timestamp, dt.UTC)
        age = dt.timedelta(seconds=round(now - last.timestamp))
        where = {"dataset": dataset.name}
        if last.partition:
            where["partition"] = last.partition
        where["run"] = last.run_id
        key = f"freshness:{dataset.name}"
        alerts[key] = Alert(
            key=key,
            kind="freshness",
            summary=f"{dataset.name} is past its freshness policy",
            where=where,
            reason=(
                f"last materialized {at.isoformat(timespec='seconds')} ({age} ago); the policy "
                f"{describe_policy(policy)}"
            ),
            link=link(last.run_id),
        )
    return alerts
