"""`ingest-platform status`: what an operator wants at a glance, from the instance and the lake
only (no network).

- each dataset: its newest partition, the partitions missing in its default window, its
  checks' latest results, and whether it is fresh by its freshness policy;
- each schedule and sensor: running or stopped, and a schedule's next tick;
- each source's call budget today;
- the Kraken stream: its heartbeat's age and state, and its active run.

It exits 1 when an ERROR check is failing or a dataset is stale beyond its freshness policy,
so a cron job or a monitor can act on it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from dagster import (
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    FreshnessPolicy,
    ScheduleDefinition,
)
from dagster._core.definitions.freshness import CronFreshnessPolicy, TimeWindowFreshnessPolicy
from dagster._core.scheduler.instigation import InstigatorStatus
from dagster._utils.schedules import cron_string_iterator, reverse_cron_string_iterator

from ingest_platform.core import settings
from ingest_platform.core.dataset import Dataset
from ingest_platform.core.dataset_assets import freshness_policy
from ingest_platform.core.http import CallBudget
from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.source_resources import budget_store
from ingest_platform.publish import state
from ingest_platform.publish.catalogue import DATASETS
from ingest_platform.streaming.kraken.heartbeat import HeartbeatUnreadable, load_heartbeat
from ingest_platform.streaming.kraken.resources import KrakenStream
from ingest_platform.streaming.kraken.sensor import active_stream_runs

#: The window in which a dataset's missing partitions are counted, by partition grain.
WINDOW = {"day": 20, "month": 3}


@dataclass
class DatasetStatus:
    name: str
    latest_partition: str | None
    last_materialized: str | None
    missing: list[str]
    fresh: str  # fresh, warn, stale, never, unknown
    checks_failing_error: list[str] = field(default_factory=list)
    checks_failing_warn: list[str] = field(default_factory=list)


@dataclass
class InstigatorStatusRow:
    name: str
    kind: str
    state: str
    next_tick: str | None


@dataclass
class Status:
    now: str
    datasets: list[DatasetStatus]
    automation: list[InstigatorStatusRow]
    budgets: dict[str, dict[str, Any]]
    stream: dict[str, Any]

    @property
    def problems(self) -> list[str]:
        out = []
        for d in self.datasets:
            out += [f"{d.name}: ERROR check failing: {c}" for c in d.checks_failing_error]
            if d.fresh == "stale":
                out.append(f"{d.name}: stale beyond its freshness policy")
        return out


def freshness(policy: FreshnessPolicy | None, last: float | None, now: float) -> str:
    """fresh / warn / stale by the policy, from the last materialization's time; "no policy"
    for datasets that change only with a deploy (the registry) or with the stream's days."""
    if policy is None:
        return "no policy"
    if last is None:
        return "never"
    age = dt.timedelta(seconds=now - last)
    if isinstance(policy, TimeWindowFreshnessPolicy):
        fail = policy.fail_window.to_timedelta()
        warn = policy.warn_window.to_timedelta() if policy.warn_window else None
        if age > fail:
            return "stale"
        return "warn" if warn is not None and age > warn else "fresh"
    if not isinstance(policy, CronFreshnessPolicy):
        return "unknown"
    deadline = next(reverse_cron_string_iterator(now, policy.deadline_cron, policy.timezone))
    lower = deadline.timestamp() - policy.lower_bound_delta.total_seconds()
    return "fresh" if last >= lower else "stale"


def _window(dataset: Dataset, present: list[str], now: dt.datetime) -> list[str]:
    if dataset.partitioning is None:
        return []
    keys = dataset.partitioning.closed_keys(now)
    recent = keys[-WINDOW[dataset.partitioning.grain] :]
    if present:
        recent = [k for k in recent if k >= present[0]]
    have = set(present)
    return [k for k in recent if k not in have]


def dataset_status(
    dataset: Dataset,
    lake: ParquetLake,
    instance: DagsterInstance,
    checks: Sequence[state.CheckResult],
    now: dt.datetime,
) -> DatasetStatus:
    present = lake.partition_keys(dataset.name)
    last = state.last_materialization(instance, dataset.name)
    mine = [c for c in checks if c.asset == dataset.name and c.passed is False]
    return DatasetStatus(
        name=dataset.name,
        latest_partition=present[-1] if dataset.partitioned and present else None,
        last_materialized=last.as_dict()["at"] if last else None,
        missing=_window(dataset, present, now),
        fresh=freshness(
            freshness_policy(dataset), last.timestamp if last else None, now.timestamp()
        ),
        checks_failing_error=[c.check for c in mine if c.severity == "ERROR"],
        checks_failing_warn=[c.check for c in mine if c.severity != "ERROR"],
    )


def automation_status(
    defs: Definitions, instance: DagsterInstance, now: dt.datetime
) -> list[InstigatorStatusRow]:
    """Each schedule's and sensor's state (as stored by the UI or the daemon, else its default)
    and a schedule's next tick."""
    stored = (
        {s.instigator_name: s.status for s in instance.all_instigator_state()}
        if instance.schedule_storage is not None
        else {}  # an ephemeral instance: every instigator at its default
    )
    rows = []
    for schedule in defs.schedules or []:
        if not isinstance(schedule, ScheduleDefinition):
            continue  # resolved by Definitions; never the case once built
        default = schedule.default_status == DefaultScheduleStatus.RUNNING
        running = _running(stored.get(schedule.name), default)
        ticks = cron_string_iterator(
            now.timestamp(), str(schedule.cron_schedule), schedule.execution_timezone or "UTC"
        )
        upcoming = next(ticks)
        rows.append(
            InstigatorStatusRow(
                schedule.name,
                "schedule",
                "running" if running else "stopped",
                upcoming.isoformat() if running else None,
            )
        )
    for sensor in defs.sensors or []:
        default = sensor.default_status == DefaultSensorStatus.RUNNING
        running = _running(stored.get(sensor.name), default)
        rows.append(
            InstigatorStatusRow(sensor.name, "sensor", "running" if running else "stopped", None)
        )
    return rows


def _running(stored: InstigatorStatus | None, default: bool) -> bool:
    if stored in (InstigatorStatus.RUNNING, InstigatorStatus.DECLARED_IN_CODE):
        return True
    if stored == InstigatorStatus.STOPPED:
        return False
    return default


def budget_status(defs: Definitions, instance: DagsterInstance) -> dict[str, dict[str, Any]]:
    """Each budgeted source's calls today against its limit (limits from the resources)."""
    out = {}
    for name, resource in sorted((defs.resources or {}).items()):
        budget_of = getattr(resource, "budget", None)
        if not callable(budget_of):
            continue
        limit = budget_of().daily_limit  # the resource's own limit, the profile's default
        report = CallBudget(budget_of().source, budget_store(instance), limit).report()
        out[name] = {
            "calls": report.calls,
            "limit": report.limit,
            "remaining": report.remaining,
            "exhausted": report.exhausted,
        }
    return out


def stream_status(defs: Definitions, instance: DagsterInstance, now: float) -> dict[str, Any]:
    resource = (defs.resources or {}).get("kraken_stream")
    root = resource.log_path() if isinstance(resource, KrakenStream) else None
    beats = resource.heartbeat_path() if isinstance(resource, KrakenStream) else None
    runs = active_stream_runs(instance)
    out: dict[str, Any] = {
        "log_root": str(root) if root else None,
        "heartbeat_age_seconds": None,
        "state": None,
        "run": runs[0].run_id if runs else None,
        "run_status": runs[0].status if runs else None,
    }
    if beats is None:
        return out
    try:
        beat = load_heartbeat(beats)
    except HeartbeatUnreadable as exc:
        out["state"] = f"unreadable: {exc}"
        return out
    if beat is not None:
        out["heartbeat_age_seconds"] = round(now - beat.updated_at, 1)
        out["state"] = beat.state
        out["bus"] = beat.bus.summary() if beat.bus is not None else "fan-out off"
    return out


def collect(
    defs: Definitions,
    instance: DagsterInstance,
    lake: ParquetLake,
    now: dt.datetime | None = None,
    datasets: Sequence[Dataset] = DATASETS,
) -> Status:
    now = now or settings.now().to_pydatetime()
    check_keys = defs.resolve_asset_graph().asset_check_keys
    checks = state.latest_checks(instance, check_keys)
    return Status(
        now=now.isoformat(),
        datasets=[dataset_status(d, lake, instance, checks, now) for d in datasets],
        automation=automation_status(defs, instance, now),
        budgets=budget_status(defs, instance),
        stream=stream_status(defs, instance, now.timestamp()),
    )


def render(status: Status, out: TextIO) -> None:
    """Plain tables for a terminal."""

    def table(header: list[str], rows: list[list[Any]]) -> None:
        cells = [header, *[["-" if v is None else str(v) for v in r] for r in rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        for i, row in enumerate(cells):
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), file=out)
            if i == 0:
                print("  ".join("-" * w for w in widths), file=out)
        print(file=out)

    print(f"ingest_platform status at {status.now}\n", file=out)
    table(
        ["dataset", "latest partition", "last materialized", "missing (window)", "fresh", "checks"],
        [
            [
                d.name,
                d.latest_partition,
                d.last_materialized[:19] if d.last_materialized else None,
                (", ".join(d.missing[:3]) + (" …" if len(d.missing) > 3 else ""))
                if d.missing
                else "0",
                d.fresh,
                _checks_cell(d),
            ]
            for d in status.datasets
        ],
    )
    table(
        ["schedule / sensor", "kind", "state", "next tick"],
        [[a.name, a.kind, a.state, a.next_tick] for a in status.automation],
    )
    table(
        ["source", "calls today", "limit", "remaining"],
        [[k, v["calls"], v["limit"], v["remaining"]] for k, v in status.budgets.items()],
    )
    stream = status.stream
    print(
        f"kraken stream: heartbeat {stream['heartbeat_age_seconds']} s ago, state "
        f"{stream['state']}, run {stream['run'] or 'none'} ({stream['run_status'] or '-'})"
        + (f"; {stream['bus']}" if stream.get("bus") else ""),
        file=out,
    )
    for problem in status.problems:
        print(f"PROBLEM {problem}", file=out)


def _checks_cell(d: DatasetStatus) -> str:
    if d.checks_failing_error:
        return "ERROR: " + ", ".join(d.checks_failing_error)
    if d.checks_failing_warn:
        return "WARN: " + ", ".join(d.checks_failing_warn)
    return "ok"


def as_json(status: Status) -> str:
    return json.dumps({**asdict(status), "problems": status.problems}, indent=2, default=str)


def main(
    defs: Definitions, instance: DagsterInstance, lake: ParquetLake, json_out: bool, out: TextIO
) -> int:
    """Print the status; 1 when something needs a person (see `Status.problems`), else 0."""
    started = time.monotonic()
    status = collect(defs, instance, lake)
    if json_out:
        print(as_json(status), file=out)
    else:
        render(status, out)
        print(f"({time.monotonic() - started:.1f} s)", file=out)
    return 1 if status.problems else 0
